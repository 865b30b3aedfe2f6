package torchio

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// torchSaveScript writes, with real PyTorch, one state_dict of assorted
// dtypes and layouts in both torch.save formats, a training checkpoint
// that holds a tensor beside its nested state_dict, and a module's own
// state_dict (BatchNorm's int64 num_batches_tracked, _metadata); then
// want.json: each tensor as PyTorch converts it to float32, C order.
const torchSaveScript = `
import collections, json, struct, sys, torch
out = sys.argv[1]
g = torch.Generator().manual_seed(0)
sd = collections.OrderedDict()
sd["features.0.weight"] = torch.randn(4, 3, 3, 3, generator=g)
sd["features.0.bias"] = torch.randn(4, generator=g)
sd["half"] = torch.randn(5, generator=g).half()
sd["bf16"] = torch.randn(3, generator=g).bfloat16()
sd["double"] = torch.randn(2, 2, generator=g).double()
sd["int8"] = torch.tensor([-128, 127], dtype=torch.int8)
sd["long"] = torch.tensor(12345)
sd["transposed"] = torch.randn(3, 4, generator=g).t()
sd["slice"] = torch.arange(10, dtype=torch.float32)[3:7]
sd["expanded"] = torch.randn(3, generator=g).expand(2, 3)
torch.save(sd, out + "/zip.pth")
torch.save(sd, out + "/legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "best_acc1": torch.tensor(0.5), "state_dict": sd}, out + "/ckpt.pth")
m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
m.train()
m(torch.randn(2, 3, 5, 5, generator=g))
msd = m.state_dict()
torch.save(msd, out + "/module.pth")
def enc(d):
    return {k: {"shape": list(v.shape), "f32": struct.pack("<%df" % v.numel(), *v.float().contiguous().flatten().tolist()).hex()} for k, v in d.items()}
json.dump({"sd": enc(sd), "module": enc(msd)}, open(out + "/want.json", "w"))
`

// TestReadPTHFromRealTorch reads files torch.save itself wrote. Without a
// python3 that imports torch it skips locally and fails under CI, which
// installs Debian's python3-torch (the writer's byte-for-byte check against
// PyTorch's files, TestPTHWriterMatchesTorch, runs everywhere).
func TestReadPTHFromRealTorch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	py := requireTorch(t, ctx)
	dir := t.TempDir()
	if out, err := exec.CommandContext(ctx, py, "-c", torchSaveScript, dir).CombinedOutput(); err != nil {
		t.Fatalf("torch.save script: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Shape []int
		F32   string
	}
	var want map[string]map[string]entry
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, set string }{
		{"zip.pth", "sd"}, {"legacy.pth", "sd"}, {"ckpt.pth", "sd"}, {"module.pth", "module"},
	} {
		t.Run(c.file, func(t *testing.T) {
			ts, sum, err := Load(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(sum) != 64 {
				t.Errorf("sha256 %q", sum)
			}
			w := want[c.set]
			if len(ts) != len(w) {
				t.Errorf("%d tensors, want %d", len(ts), len(w))
			}
			for name, e := range w {
				got := ts[name]
				if got == nil {
					t.Errorf("%s: missing", name)
					continue
				}
				b, err := hex.DecodeString(e.F32)
				if err != nil {
					t.Fatal(err)
				}
				vals := make([]float32, len(b)/4)
				for i := range vals {
					vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
				}
				if !slices.Equal(got.Shape, e.Shape) || !bitsEqual(got.Data, vals) {
					t.Errorf("%s: %v %v, PyTorch %v %v", name, got.Shape, head(got.Data), e.Shape, head(vals))
				}
			}
		})
	}
}
