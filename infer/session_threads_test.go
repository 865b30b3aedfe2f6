package infer

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestSplitRange(t *testing.T) {
	for _, n := range []int{0, 1, 3, 7, 8, 17, 64, 100, 4096} {
		for _, parts := range []int{1, 2, 3, 4, 6} {
			rs := splitRange(n, parts, 8)
			next := 0
			for _, r := range rs {
				if r[0] != next || r[1] < r[0] {
					t.Fatalf("splitRange(%d, %d, 8) = %v: not contiguous", n, parts, rs)
				}
				next = r[1]
			}
			if next != n {
				t.Fatalf("splitRange(%d, %d, 8) = %v: covers %d", n, parts, rs, next)
			}
		}
	}
}

// Threads split the work, never the arithmetic: every thread count gives
// the single-thread logits bit for bit.
func TestSessionThreadsMatchOneThread(t *testing.T) {
	arch := `{"input": [3, 21, 19], "features": [5, "M", 13, {"type": "conv2d", "out": 3, "kernel": 1, "stride": 2}, {"type": "relu"}],
	  "avgpool": [2, 2], "classifier": [7, 5]}`
	small, err := ParseArch([]byte(arch), "small.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	vgg, err := VGG("vgg11", Shape{3, 64, 64}, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Model{small, vgg} {
		q, err := RandomQModel(m, 3)
		if err != nil {
			t.Fatal(err)
		}
		one, err := NewSession(q)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(4, 4))
		pix := make([]byte, q.Input.Elems())
		for i := range pix {
			pix[i] = byte(r.IntN(256))
		}
		if err := one.SetPixels(pix); err != nil {
			t.Fatal(err)
		}
		want, _ := one.Run()
		want = slices.Clone(want)
		for _, threads := range []int{2, 3, 5} {
			s, err := NewSessionThreads(q, threads)
			if err != nil {
				t.Fatal(err)
			}
			for run := 0; run < 2; run++ {
				s.SetPixels(pix)
				got, err := s.Run()
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s, %d threads, run %d: logits differ from one thread", m.Name, threads, run)
				}
			}
			times := make([]time.Duration, s.Steps())
			s.SetPixels(pix)
			if got, err := s.RunTimed(times); err != nil || !slices.Equal(got, want) {
				t.Fatalf("%s, %d threads: RunTimed differs (%v)", m.Name, threads, err)
			}
			if allocs := testing.AllocsPerRun(5, func() { s.SetPixels(pix); s.Run() }); allocs != 0 {
				t.Errorf("%s, %d threads: %v allocations per Run", m.Name, threads, allocs)
			}
			s.Close()
		}
	}
}

func TestSessionCloseStopsWorkers(t *testing.T) {
	m, _ := VGG("vgg11", Shape{3, 32, 32}, 10)
	q, err := RandomQModel(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	s, err := NewSessionThreads(q, 4)
	if err != nil {
		t.Fatal(err)
	}
	if n := runtime.NumGoroutine() - before; n != 3 {
		t.Errorf("4 threads started %d goroutines, want 3", n)
	}
	s.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if runtime.NumGoroutine() > before {
		t.Errorf("%d goroutines left after Close", runtime.NumGoroutine()-before)
	}
	if _, err := NewSessionThreads(q, 0); err == nil {
		t.Error("0 threads: no error")
	}
}
