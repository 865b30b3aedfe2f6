package quant

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/quant/torchio"
)

// torchVGGScript builds, for each ARCH:SIZE:CLASSES:HIDDEN argument, a
// torchvision VGG with seeded random weights (the classifier's hidden
// width cut to HIDDEN unless 0, to keep the default run small; BatchNorm given trained-looking statistics and conv biases
// non-zero, so folding and biases are checked), saves its state_dict in
// every format vggedge reads, and runs torchvision's eval preprocessing
// (Resize(int(S/0.875)) + CenterCrop(S) + ToTensor + Normalize) and the
// model on real photos. It writes into OUT/ARCH the normalised inputs (inputs.f32), the
// cropped u8 pixels they came from (pixels.u8, CHW), pixels of further
// photos for calibration (calib.u8) and PyTorch's logits (logits.f32).
// Debian 12 has no python3-safetensors: the .safetensors file is written
// by the few lines below, from the tensors' own float32 bytes.
const torchVGGScript = `
import json, os, struct, sys, numpy, torch, torchvision
from torch import nn
import torchvision.transforms as T
from PIL import Image
out, images, calib = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
torch.set_num_threads(2)
print("torch", torch.__version__ + ", torchvision", torchvision.__version__)
def f32(t):
    return t.detach().float().contiguous().numpy().astype("<f4").tobytes()
for spec in sys.argv[4:]:
    arch, S, classes, hidden = spec.split(":")
    S, classes, hidden, d = int(S), int(classes), int(hidden), out + "/" + arch
    os.mkdir(d)
    crop = T.Compose([T.Resize(int(S / 0.875)), T.CenterCrop(S)])
    norm = T.Compose([T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    def load(paths):
        pix = [crop(Image.open(p).convert("RGB")) for p in paths]
        raw = b"".join(numpy.ascontiguousarray(numpy.asarray(p).transpose(2, 0, 1)).tobytes() for p in pix)
        return torch.stack([norm(p) for p in pix]), raw
    x, raw = load(images)
    open(d + "/inputs.f32", "wb").write(f32(x))
    open(d + "/pixels.u8", "wb").write(raw)
    open(d + "/calib.u8", "wb").write(load(calib)[1])
    torch.manual_seed(1)
    m = getattr(torchvision.models, arch)(num_classes=classes)
    if hidden:
        m.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(), nn.Linear(hidden, classes))
        for l in m.classifier:
            if isinstance(l, nn.Linear):  # torchvision's init
                nn.init.normal_(l.weight, 0, 0.01); nn.init.zeros_(l.bias)
    for l in m.modules():
        if isinstance(l, nn.Conv2d):
            nn.init.normal_(l.bias, 0, 0.05)
        if isinstance(l, nn.BatchNorm2d):
            nn.init.uniform_(l.weight, 0.5, 1.5); nn.init.normal_(l.bias, 0, 0.1)
            l.running_mean.normal_(0, 0.2); l.running_var.uniform_(0.5, 2); l.num_batches_tracked.fill_(1000)
    m.eval()
    with torch.no_grad():
        open(d + "/logits.f32", "wb").write(f32(m(x)))
    sd = m.state_dict()
    torch.save(sd, d + "/zip.pth")
    torch.save(sd, d + "/legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"epoch": 90, "arch": arch, "state_dict": sd, "best_acc1": torch.tensor(69.02)}, d + "/checkpoint.pth")
    hdr, off = {}, 0
    for k, v in sd.items():
        if v.is_floating_point():
            hdr[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + 4 * v.numel()]}
            off += 4 * v.numel()
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(d + "/model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for k in hdr: f.write(f32(sd[k]))
`

// realPhotos returns test and calibration photos: the camera pictures gocv
// (a dependency of the gocv build) ships in its module — a face, a space
// shuttle, a shop front, a fisheye view and a 78x61 thumbnail that the
// resize enlarges.
func realPhotos(t *testing.T, ctx context.Context) (test, calib []string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", "gocv.io/x/gocv").Output()
	var mod struct{ Dir string }
	if err == nil {
		err = json.Unmarshal(out, &mod)
	}
	if err != nil || mod.Dir == "" {
		t.Fatalf("gocv module (its photos) not available: go mod download: %v", err)
	}
	img := func(names ...string) []string {
		var ps []string
		for _, n := range names {
			ps = append(ps, filepath.Join(mod.Dir, "images", n))
		}
		return ps
	}
	return img("face.jpg", "space_shuttle.jpg", "distortion.jpg", "fisheye_sample.jpg", "toy.jpg"),
		img("face-detect.jpg", "distortion-correct.jpg", "simple.jpg")
}

// readF32 reads a file of little-endian float32s.
func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// torchvisionVGG is infer.VGG with the classifier's two hidden layers
// hidden wide (0: torchvision's 4096).
func torchvisionVGG(t *testing.T, arch string, size, classes, hidden int) *infer.Model {
	t.Helper()
	in := infer.Shape{C: 3, H: size, W: size}
	m, err := infer.VGG(arch, in, classes)
	if err != nil {
		t.Fatal(err)
	}
	if hidden > 0 {
		for i := range m.Layers {
			l := &m.Layers[i]
			if l.Name == "classifier.0" || l.Name == "classifier.3" {
				l.Out = hidden
			}
			if l.Kind == infer.Linear {
				l.In = 0
			}
		}
		if _, err := m.Resolve(); err != nil {
			t.Fatal(err)
		}
	}
	m.Meta.Spec = infer.ImageNetSpec()
	m.Meta.Spec.ResizeShorter = size * 8 / 7 // as vggedge quantize stores it
	return m
}

// maxRelErr is max |got−want| over max |want|: the error relative to the
// logits' scale (an element-wise ratio blows up at logits near 0).
func maxRelErr(got, want []float32) float64 {
	var d, s float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
		s = max(s, math.Abs(float64(want[i])))
	}
	return d / s
}

// top1Margin is (top-1 − top-2) / max |logit|: how far a top-1 agreement
// is from a tie.
func top1Margin(v []float32) float64 {
	a, b, s := math.Inf(-1), math.Inf(-1), 0.0
	for _, x := range v {
		f := float64(x)
		s = max(s, math.Abs(f))
		if f > a {
			a, b = f, a
		} else if f > b {
			b = f
		}
	}
	return (a - b) / s
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// TestVGGMatchesPyTorch is the end-to-end check against real PyTorch:
// torchvision's VGG11 and VGG11_bn at 64x64 (the features end at 2x2,
// which the adaptive average pool spreads to 7x7 as PyTorch's does; a
// 256-wide classifier and 10 classes: with 1000 random classes PyTorch's
// own top-1 margin is 0.5%; full VGG16 at 224 with VGGEDGE_VGG16=1) with seeded random weights, saved by
// torch.save as a zip .pth, a legacy .pth (the format of torchvision's own
// vgg16-397923af.pth) and a {"state_dict": …, "best_acc1": tensor}
// checkpoint, and as .safetensors. vggedge reads each, runs its float path
// on PyTorch's own input tensors (so preprocessing differences do not
// enter) and its int8 model, calibrated on the photos' pixels, on the
// pixels those tensors were made from. Measured on amd64 (AVX2+FMA), torch
// 1.13: float max relative error ≤ 5.8e-6 (ForwardFast, the float GEMM)
// and ≤ 2.8e-6 (ForwardFloat, float64 sums: the rest is PyTorch's own
// float32 rounding); int8 worst cosine 0.9990, top-1 agreeing on 5/5
// photos, PyTorch's smallest top-1 margin 4.9% of the largest logit.
//
//	go test -count=1 -v -run TestVGGMatchesPyTorch ./quant
//	VGGEDGE_VGG16=1 go test -count=1 -v -timeout 30m -run TestVGGMatchesPyTorch ./quant
func TestVGGMatchesPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("short: runs PyTorch and two VGGs (~25 s of CPU)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	py := requireTorch(t, ctx)
	photos, calibPhotos := realPhotos(t, ctx)
	const (
		maxFloatErr = 2e-5 // measured ≤ 5.8e-6
		minCosine   = 0.99
	)
	type vggCase struct {
		arch                  string
		size, classes, hidden int
	}
	cases := []vggCase{{"vgg11", 64, 10, 256}, {"vgg11_bn", 64, 10, 256}}
	if os.Getenv("VGGEDGE_VGG16") != "" {
		cases = append(cases, vggCase{"vgg16", 224, 1000, 0}) // 138 M params, 553 MB per file
	} else {
		t.Log("set VGGEDGE_VGG16=1 to add full-size vgg16 at 224 (≈5 minutes on 2 busy cores, 2.2 GB of weight files)")
	}
	dir := t.TempDir()
	args := []string{"-c", torchVGGScript, dir, strings.Join(photos, ","), strings.Join(calibPhotos, ",")}
	for _, c := range cases {
		args = append(args, fmt.Sprintf("%s:%d:%d:%d", c.arch, c.size, c.classes, c.hidden))
	}
	out, err := exec.CommandContext(ctx, py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("PyTorch script: %v\n%s", err, out)
	}
	versions := strings.TrimSpace(string(out))
	var table, pipeline []string
	for _, c := range cases {
		t.Run(c.arch, func(t *testing.T) {
			dir := filepath.Join(dir, c.arch)
			inputs := readF32(t, filepath.Join(dir, "inputs.f32"))
			logits := readF32(t, filepath.Join(dir, "logits.f32"))
			pixels, err := os.ReadFile(filepath.Join(dir, "pixels.u8"))
			if err != nil {
				t.Fatal(err)
			}
			calib, err := os.ReadFile(filepath.Join(dir, "calib.u8"))
			if err != nil {
				t.Fatal(err)
			}
			n, elems := len(photos), c.size*c.size*3
			if len(inputs) != n*elems || len(pixels) != n*elems || len(logits) != n*c.classes || len(calib) != len(calibPhotos)*elems {
				t.Fatalf("PyTorch wrote %d inputs, %d pixels, %d logits, %d calibration pixels: want %d, %d, %d, %d",
					len(inputs), len(pixels), len(logits), len(calib), n*elems, n*elems, n*c.classes, len(calibPhotos)*elems)
			}
			img := func(b []byte, i int) []byte { return b[i*elems : (i+1)*elems] }
			// Calibration: the test photos and three more.
			var calibSet [][]byte
			for i := range n {
				calibSet = append(calibSet, img(pixels, i))
			}
			for i := range len(calibPhotos) {
				calibSet = append(calibSet, img(calib, i))
			}
			var first map[string]*torchio.Tensor
			for _, format := range []string{"zip.pth", "legacy.pth", "checkpoint.pth", "model.safetensors"} {
				ts, _, err := torchio.Load(filepath.Join(dir, format))
				if err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				if first == nil {
					first = ts
				} else {
					for name, w := range first {
						if format == "model.safetensors" && strings.HasSuffix(name, ".num_batches_tracked") {
							continue // int64, not written: vggedge ignores it
						}
						if g := ts[name]; g == nil || !slices.Equal(g.Shape, w.Shape) || !bitsEqual(g.Data, w.Data) {
							t.Errorf("%s: tensor %s differs from zip.pth's", format, name)
						}
					}
				}
				m := torchvisionVGG(t, c.arch, c.size, c.classes, c.hidden)
				if err := LoadWeights(m, ts); err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				fastErr, refErr := 0.0, math.NaN()
				for i := range n {
					x, want := inputs[i*elems:(i+1)*elems], logits[i*c.classes:(i+1)*c.classes]
					got, err := m.ForwardFast(x, 2)
					if err != nil {
						t.Fatal(err)
					}
					fastErr = max(fastErr, maxRelErr(got, want))
					// The float64-accumulating reference (4 s a photo at
					// 64x64): one photo, to tell PyTorch's rounding from ours.
					if i == 0 && format == "zip.pth" && c.hidden > 0 {
						ref, err := m.ForwardFloat(x)
						if err != nil {
							t.Fatal(err)
						}
						refErr = maxRelErr(ref, want)
					}
				}
				if fastErr > maxFloatErr || refErr > maxFloatErr {
					t.Errorf("%s: float max relative error %.2g (ForwardFast), %.2g (ForwardFloat) > %.0g", format, fastErr, refErr, maxFloatErr)
				}
				q := calibrate(t, m, calibSet, Options{Method: Percentile})
				s, err := infer.NewSessionThreads(q, 2)
				if err != nil {
					t.Fatal(err)
				}
				worst, agree, margin := 1.0, 0, math.Inf(1)
				for i := range n {
					want := logits[i*c.classes : (i+1)*c.classes]
					if err := s.SetPixels(img(pixels, i)); err != nil {
						t.Fatal(err)
					}
					got, err := s.Run()
					if err != nil {
						t.Fatal(err)
					}
					cos := cosine(got, want)
					margin = min(margin, top1Margin(want))
					worst = min(worst, cos)
					if argmax(got) == argmax(want) {
						agree++
					} else {
						t.Errorf("%s: photo %s: int8 top-1 %d, PyTorch %d (cosine %.4f)", format, filepath.Base(photos[i]), argmax(got), argmax(want), cos)
					}
				}
				if worst < minCosine {
					t.Errorf("%s: int8 vs PyTorch float worst cosine %.4f < %.2f", format, worst, minCosine)
				}
				if format == "zip.pth" {
					pipeline = append(pipeline, ownPipeline(t, c.arch, photos, m, s, logits, c.classes)...)
				}
				ref := "-"
				if !math.IsNaN(refErr) {
					ref = fmt.Sprintf("%.1e", refErr)
				}
				table = append(table, fmt.Sprintf("| %s | %s %dx%d | %.1e | %s | %.4f | %d/%d | %.3f |",
					format, c.arch, c.size, c.size, fastErr, ref, worst, agree, n, margin))
			}
		})
	}
	t.Logf("vggedge vs PyTorch %s %s on %d real photos (float on PyTorch's own input tensors; int8 on the u8 pixels they came from, percentile calibration on %d photos):\n"+
		"| format | model | float max rel err (ForwardFast) | (ForwardFloat, 1 photo) | int8 worst cosine | int8 top-1 = PyTorch | PyTorch's smallest top-1 margin |\n|---|---|---|---|---|---|---|\n%s",
		versions, "(torch.manual_seed(1) weights)", len(photos), len(photos)+len(calibPhotos), strings.Join(table, "\n"))
	t.Logf("the whole vggedge pipeline (its JPEG decoding and resize-crop, int8) vs PyTorch's (PIL, Resize + CenterCrop, float):\n"+
		"| model | vggedge resize filter | int8 worst cosine | top-1 = PyTorch |\n|---|---|---|---|\n%s", strings.Join(pipeline, "\n"))
}

// ownPipeline runs the photos through vggedge's own decoding and
// preprocessing (camera.DecodeImage, the Preprocessor with the model's
// spec, by default and with PIL's filter) into the int8 session s, and
// compares with PyTorch's logits, which came from PIL's decoding and
// torchvision's PIL preprocessing: what a user gets end to end. The JPEG
// decoders differ by a level or two, and the default resize by up to 52
// levels near edges, so the bound is looser than on PyTorch's own pixels.
// Measured: worst cosine 0.9976 (vgg11) and 0.9985 (vgg11_bn) by default,
// 0.9989 and 0.9983 with PIL's filter, top-1 5/5 each (random weights
// barely tell the filters apart; a trained model's sensitivity is not
// measured here).
func ownPipeline(t *testing.T, arch string, photos []string, m *infer.Model, s *infer.Session, logits []float32, classes int) []string {
	t.Helper()
	const minCosine = 0.98
	var rows []string
	for _, filter := range []string{"", infer.ResizeBilinearAntialias} {
		spec := m.Meta.Spec
		spec.ResizeFilter = filter
		pix := make([]byte, m.Input.Elems())
		worst, agree := 1.0, 0
		for i, path := range photos {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			img, err := camera.DecodeImage(f, 0)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if err := camera.ImageToCHW(img, m.Input, spec, pix); err != nil {
				t.Fatal(err)
			}
			if err := s.SetPixels(pix); err != nil {
				t.Fatal(err)
			}
			got, err := s.Run()
			if err != nil {
				t.Fatal(err)
			}
			want := logits[i*classes : (i+1)*classes]
			worst = min(worst, cosine(got, want))
			if argmax(got) == argmax(want) {
				agree++
			}
		}
		name := filter
		if name == "" {
			name = "default (area/bilinear)"
		}
		if worst < minCosine {
			t.Errorf("%s, vggedge's own preprocessing with filter %s: worst cosine %.4f with PyTorch < %.2f", arch, name, worst, minCosine)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %.4f | %d/%d |", arch, name, worst, agree, len(photos)))
	}
	return rows
}
