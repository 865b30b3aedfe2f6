package kernels

//go:generate go run ./internal/neongen -o gemm_arm64.s

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The arm64 assembly encodes the instructions Go's assembler lacks as
// `WORD $0x… // mnemonic`. This host test (any GOARCH) disassembles every
// such word with GNU objdump and compares it with its comment, so a wrong
// bit is caught without an ARM machine. Without objdump it skips, unless
// CI is set: then the check is required.

var wordLine = regexp.MustCompile(`^\s*WORD\s+\$0x([0-9a-fA-F]{8})\s*//\s*(.+?)\s*$`)

func normAsm(s string) string {
	s = strings.ToLower(strings.Join(strings.Fields(s), " "))
	return strings.ReplaceAll(s, ", ", ",")
}

func TestARM64WordEncodings(t *testing.T) {
	objdump := requireTool(t, "aarch64-linux-gnu-objdump")
	files, err := filepath.Glob("*_arm64.s")
	if err != nil || len(files) == 0 {
		t.Fatalf("no *_arm64.s files (%v)", err)
	}
	var words []uint32
	var want, where []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if !strings.Contains(line, "WORD") {
				continue
			}
			m := wordLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s:%d: WORD without `$0x%%08x // mnemonic`: %s", f, i+1, line)
				continue
			}
			w, _ := strconv.ParseUint(m[1], 16, 32)
			words = append(words, uint32(w))
			want = append(want, normAsm(m[2]))
			where = append(where, f+":"+strconv.Itoa(i+1))
		}
	}
	if len(words) == 0 {
		t.Fatal("no WORD lines found")
	}
	bin := filepath.Join(t.TempDir(), "words.bin")
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, words)
	if err := os.WriteFile(bin, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(objdump, "-D", "-b", "binary", "-m", "aarch64", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	// Lines look like "  1c:\t4e819402 \tsdot\tv2.4s, v0.16b, v1.16b".
	insn := regexp.MustCompile(`^\s*([0-9a-f]+):\s+[0-9a-f]{8}\s+(.+)$`)
	got := map[int]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := insn.FindStringSubmatch(line); m != nil {
			off, _ := strconv.ParseUint(m[1], 16, 32)
			asm, _, _ := strings.Cut(m[2], "//") // objdump's own comments
			got[int(off)/4] = normAsm(asm)
		}
	}
	for i := range words {
		if got[i] != want[i] {
			t.Errorf("%s: WORD $0x%08x disassembles to %q, comment says %q", where[i], words[i], got[i], want[i])
		}
	}
	t.Logf("%d WORDs checked in %v", len(words), files)
}

// The arm64 assembly files are what internal/neongen writes: an edit by
// hand would be lost at the next go generate.
func TestARM64AssemblyGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		t.Skip("no go command to run the generator")
	}
	for _, tc := range []struct{ set, file string }{
		{"gemm", "gemm_arm64.s"}, {"winograd", "winograd_arm64.s"}, {"requant", "requant_arm64.s"},
	} {
		tmp := filepath.Join(t.TempDir(), tc.file)
		cmd := exec.Command(gobin, "run", "./internal/neongen", "-set", tc.set, "-o", tmp)
		// The generator runs on the host, whatever GOARCH the test targets
		// (under qemu the go command is still the host's): empty means native.
		cmd.Env = append(os.Environ(), "GOARCH=", "GOOS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("neongen -set %s: %v\n%s", tc.set, err, out)
		}
		gen, err := os.ReadFile(tmp)
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gen, have) {
			t.Errorf("%s differs from internal/neongen -set %s: run go generate ./infer/kernels", tc.file, tc.set)
		}
	}
}
