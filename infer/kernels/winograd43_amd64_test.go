//go:build gc && !purego

package kernels

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"
)

// The AVX-VNNI F(4,3) GEMM equals the Go one bit for bit on random and
// extreme U and V (|U| up to 6272, |V| up to 12800, both signs) for odd
// and even pair counts, and the whole F(4,3) convolution on it equals the
// generic kernel. It needs a CPU with AVX-VNNI (Intel N100 class, Alder
// Lake and later); elsewhere it says so loudly.
func TestWino43AVXVNNI(t *testing.T) {
	if !vnniSim && (!cpu.X86.HasAVX2 || !cpu.X86.HasAVXVNNI) {
		t.Skip("SKIP: no AVX-VNNI on this host: the AVX-VNNI F(4,3) GEMM (w43GemmNAVXVNNI) is NOT verified here; run this test on an N100-class CPU")
	}
	r := rand.New(rand.NewPCG(61, 62))
	for _, ncp := range []int{1, 2, 3, 7, 64, 113} {
		xs := ncp*16 + 16*r.IntN(3)
		u := make([]int16, w43Pos*ncp*16)
		v := make([]int16, 35*xs+2*16+ncp*16) // room for 3 blocks 16 apart
		for i := range u {
			u[i] = int16(r.IntN(2*6272+1) - 6272)
			if r.IntN(8) == 0 {
				u[i] = []int16{-6272, 6272}[r.IntN(2)]
			}
		}
		for i := range v {
			v[i] = int16(r.IntN(2*12800+1) - 12800)
			if r.IntN(8) == 0 {
				v[i] = []int16{-12800, 12800}[r.IntN(2)]
			}
		}
		for _, nb := range []int{1, 3} {
			got, want := make([]int32, nb*w43Pos*w43O*w43T), make([]int32, nb*w43Pos*w43O*w43T)
			w43GemmNVNNIFast(u, v, ncp, xs, 16, nb, got)
			for b := range nb {
				w43GemmGo(u, v[b*16:], ncp, xs, (*[w43Pos * w43O * w43T]int32)(want[b*w43Pos*w43O*w43T:]))
			}
			if j := firstDiff(got, want); j >= 0 {
				t.Fatalf("ncp %d, %d blocks: m[%d] = %d, want %d", ncp, nb, j, got[j], want[j])
			}
		}
	}
	saved := w43GemmN
	defer func() { w43GemmN = saved }()
	w43GemmN = w43GemmNVNNIFast
	for _, sh := range [][5]int{{64, 14, 14, 24, 1}, {229, 9, 7, 9, 1}, {3, 30, 30, 10, 1}} {
		p, x := randSIMDConv(r, sh[0], sh[1], sh[2], sh[3], 3, 3, 1, sh[4])
		n := p.O * p.OH * p.OW
		got, want := make([]int8, n), make([]int8, n)
		w43Conv(p, x, got, nil, &Scratch{})
		withGeneric(func() { Conv2dInt8(p, x, want, &Scratch{}) })
		if j := firstDiff(got, want); j >= 0 {
			t.Fatalf("%v: y[%d] = %d, want %d", sh, j, got[j], want[j])
		}
	}
}

// On a CPU without AVX-VNNI, the AVX-VNNI kernel's code around its fused
// instructions is still checked: a copy of the package with each VEX
// VPDPWSSD (BYTE-encoded) replaced by VPMADDWD+VPADDD into the same
// accumulator — the exact operation it fuses, given that no product pair
// reaches −32768·−32768·2 — is built with -tags vnnisim, which dispatches
// that kernel, and its F(4,3) tests run.
func TestWino43AVXVNNISimulated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a copy of the package")
	}
	if cpu.X86.HasAVXVNNI || vnniSim {
		t.Skip("the CPU runs the real kernel (TestWino43AVXVNNI)")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	// The module's packages this package's tests build (their directories'
	// files), copied as they are, but for the kernel.
	list, err := exec.Command(gobin, "list", "-deps", "-test", "-f",
		"{{if .Module}}{{if .Module.Main}}{{.Dir}} {{.Module.Dir}}{{end}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root := t.TempDir()
	fused := regexp.MustCompile(`(?m)^\tBYTE [^/]*// \{vex\} vpdpwssd ymm(\d+),ymm(\d+),ymm(\d+)$`)
	n := 0
	copied := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		dir, mod, ok := strings.Cut(l, " ")
		if !ok || copied[dir] {
			continue
		}
		copied[dir] = true
		rel, err := filepath.Rel(mod, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"go.mod", "go.sum"} {
			if b, err := os.ReadFile(filepath.Join(mod, f)); err == nil {
				os.WriteFile(filepath.Join(root, f), b, 0o644)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == "winograd43_avxvnni_amd64.s" {
				n = len(fused.FindAll(b, -1))
				b = fused.ReplaceAll(b, []byte("\tVPMADDWD Y$2, Y$3, Y$3; VPADDD Y$3, Y$1, Y$1"))
			}
			if err := os.WriteFile(filepath.Join(root, rel, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no VPDPWSSD lines replaced")
	}
	cmd := exec.Command(gobin, "test", "-count=1", "-tags", "vnnisim", "-run", "Wino43", "./infer/kernels")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the AVX-VNNI kernel, simulated: %v\n%s", err, out)
	}
	t.Logf("AVX-VNNI F(4,3) GEMM with its %d VPDPWSSD simulated: %s", n, bytes.TrimSpace(out))
}

// TestX86KernelsVerified names the x86 kernels this host's run of the
// package tests checks bit for bit against the generic ones (CI prints
// it with -v): a kernel the CPU lacks is not verified by a green run.
func TestX86KernelsVerified(t *testing.T) {
	yes := func(b bool) string {
		if b {
			return "verified"
		}
		return "NOT verified (CPU lacks it)"
	}
	t.Logf("x86 kernels on this host: AVX2 direct + F(4,3): %s; AVX-VNNI F(4,3) GEMM: %s; AVX-512 VNNI direct: %s",
		yes(cpu.X86.HasAVX2), yes(cpu.X86.HasAVX2 && cpu.X86.HasAVXVNNI), yes(hasVNNI()))
}

// The amd64 assembly spells the instructions Go's assembler cannot
// encode (VEX VPDPWSSD) as `BYTE $0x..; … // mnemonic`. Every such line
// is disassembled with objdump and compared with its comment. Without
// objdump it skips, unless CI is set.
func TestX86ByteEncodings(t *testing.T) {
	objdump := requireTool(t, "objdump")
	line := regexp.MustCompile(`^\s*((?:BYTE \$0x[0-9a-f]{2};?\s*)+)//\s*(.+?)\s*$`)
	byteRe := regexp.MustCompile(`\$0x([0-9a-f]{2})`)
	files, _ := filepath.Glob("*_amd64.s")
	var want, where []string
	var lens []int
	var code bytes.Buffer
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(src), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "BYTE") {
				continue
			}
			m := line.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("%s:%d: BYTE without `BYTE $0x..; … // mnemonic`: %s", f, i+1, l)
				continue
			}
			bs := byteRe.FindAllStringSubmatch(m[1], -1)
			for _, b := range bs {
				v, _ := strconv.ParseUint(b[1], 16, 8)
				code.WriteByte(byte(v))
			}
			lens = append(lens, len(bs))
			want = append(want, normAsm(m[2]))
			where = append(where, f+":"+strconv.Itoa(i+1))
		}
	}
	if len(want) == 0 {
		t.Fatal("no BYTE lines found")
	}
	bin := filepath.Join(t.TempDir(), "bytes.bin")
	if err := os.WriteFile(bin, code.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(objdump, "-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	// Lines look like "   0:\tc4 c2 3d 52 c1       \t{vex} vpdpwssd ymm0,ymm8,ymm9".
	insn := regexp.MustCompile(`^\s*([0-9a-f]+):\s+((?:[0-9a-f]{2} )+)\s*(.+)$`)
	got := map[int]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if m := insn.FindStringSubmatch(l); m != nil {
			off, _ := strconv.ParseUint(m[1], 16, 32)
			got[int(off)] = normAsm(m[3])
		}
	}
	off := 0
	for i := range want {
		if got[off] != want[i] {
			t.Errorf("%s: bytes at %d disassemble to %q, comment says %q", where[i], off, got[off], want[i])
		}
		off += lens[i]
	}
	t.Logf("%d BYTE-encoded instructions checked in %v", len(want), files)
}
