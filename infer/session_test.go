package infer

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/vggedge/vggedge/infer/kernels"
)

// sessRef runs q on u8 pixels with plain loops, independently of the
// kernels: int64 sums, RequantizeOut, −128 max-pool padding, math.Round
// for the average pool. acts[i] is layer i's int8 output (nil for a logits
// layer); out is what Session.Run returns.
func sessRef(q *QModel, pix []byte) (acts [][]int8, out []float32) {
	x := make([]int8, len(pix))
	for i, p := range pix {
		x[i] = int8(int(p) - 128)
	}
	in := q.Input
	shapes, err := q.Shapes()
	if err != nil {
		panic(err)
	}
	for li := range q.Layers {
		l := &q.Layers[li]
		o := shapes[li]
		y := make([]int8, o.Elems())
		var logits []float32
		if l.Logits {
			logits = make([]float32, o.Elems())
		}
		emit := func(i, ch int, acc int64) {
			if l.Logits {
				logits[i] = float32(int32(acc)) * (l.InScale * l.WScale[ch])
			} else {
				y[i] = RequantizeOut(int32(acc), l.Mult[ch], l.Shift[ch], l.OutZero, l.ReLU)
			}
		}
		at := func(c, iy, ix int) int8 { return x[(c*in.H+iy)*in.W+ix] }
		inside := func(iy, ix int) bool { return iy >= 0 && iy < in.H && ix >= 0 && ix < in.W }
		for i := range y {
			ch, oy, ox := i/(o.H*o.W), i/o.W%o.H, i%o.W
			switch l.Kind {
			case Conv2d:
				acc := int64(l.Bias[ch])
				for c := 0; c < in.C; c++ {
					for ky := 0; ky < l.KH; ky++ {
						for kx := 0; kx < l.KW; kx++ {
							iy, ix := oy*l.Stride-l.Pad+ky, ox*l.Stride-l.Pad+kx
							v := l.PadValue[c]
							if inside(iy, ix) {
								v = at(c, iy, ix)
							}
							acc += int64(l.Weight[((ch*in.C+c)*l.KH+ky)*l.KW+kx]) * int64(v)
						}
					}
				}
				emit(i, ch, acc)
			case Linear:
				acc := int64(l.Bias[ch])
				for j, v := range x {
					acc += int64(l.Weight[ch*len(x)+j]) * int64(v)
				}
				emit(i, ch, acc)
			case MaxPool2d:
				best := int8(-128)
				for ky := 0; ky < l.KH; ky++ {
					for kx := 0; kx < l.KH; kx++ {
						iy, ix := oy*l.Stride-l.Pad+ky, ox*l.Stride-l.Pad+kx
						if inside(iy, ix) {
							best = max(best, at(ch, iy, ix))
						}
					}
				}
				y[i] = best
			case AdaptiveAvgPool2d:
				y0, y1 := kernels.AdaptiveBin(oy, in.H, o.H)
				x0, x1 := kernels.AdaptiveBin(ox, in.W, o.W)
				var sum float64
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						sum += float64(at(ch, iy, ix))
					}
				}
				y[i] = int8(math.Round(sum / float64((y1-y0)*(x1-x0))))
			case ReLU:
				y[i] = max(x[i], int8(l.InZero))
			case Flatten:
				y[i] = x[i]
			}
		}
		if l.Logits {
			acts = append(acts, nil)
			return acts, logits
		}
		acts = append(acts, y)
		x, in = y, o
	}
	last := &q.Layers[len(q.Layers)-1]
	scale, zero := last.InScale, last.InZero
	if last.Kind == Conv2d || last.Kind == Linear {
		scale, zero = last.OutScale, last.OutZero
	}
	out = make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(int32(v)-zero) * scale
	}
	return acts, out
}

func sessPixels(seed uint64, n int64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	pix := make([]byte, n)
	for i := range pix {
		pix[i] = byte(r.Uint32())
	}
	return pix
}

// sessTinyModels are small architectures covering every int8 layer kind:
// fused and unfused ReLU, BatchNorm and Dropout dropped, 1x1, non-square
// and strided convolutions, padded max-pool, down- and up-sampling average
// pools, logits from a Linear or a convolution, and int8 output.
func sessTinyModels(t testing.TB) []*Model {
	t.Helper()
	in := Shape{3, 13, 11}
	conv := func(out, kh, kw, stride, pad int) Layer {
		return Layer{Kind: Conv2d, Out: out, KH: kh, KW: kw, Stride: stride, Pad: pad, Bias: true}
	}
	models := []*Model{
		{Name: "linear-logits", Input: in, Layers: []Layer{
			conv(5, 3, 3, 1, 1), {Kind: BatchNorm2d, Eps: 1e-5}, {Kind: ReLU},
			{Kind: MaxPool2d, KH: 3, KW: 3, Stride: 2, Pad: 1},
			conv(7, 1, 1, 1, 0), {Kind: ReLU},
			conv(6, 3, 1, 2, 1),
			{Kind: MaxPool2d, KH: 2, KW: 2, Stride: 1}, {Kind: ReLU}, // an unfused ReLU
			{Kind: AdaptiveAvgPool2d, OutH: 3, OutW: 2},
			{Kind: Flatten},
			{Kind: Linear, Out: 9, Bias: true}, {Kind: ReLU}, {Kind: Dropout, P: 0.5},
			{Kind: Linear, Out: 5, Bias: true},
		}},
		{Name: "conv-logits", Input: in, Layers: []Layer{
			conv(4, 2, 3, 2, 0), {Kind: ReLU},
			{Kind: AdaptiveAvgPool2d, OutH: 9, OutW: 8}, // upsampling
			conv(3, 1, 1, 1, 0),
		}},
		{Name: "int8-out", Input: in, Layers: []Layer{
			conv(6, 3, 3, 1, 0), {Kind: ReLU},
			{Kind: AdaptiveAvgPool2d, OutH: 2, OutW: 2},
		}},
	}
	for _, m := range models {
		for i := range m.Layers {
			m.Layers[i].Name = fmt.Sprintf("l%d", i)
		}
		if _, err := m.Resolve(); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	return models
}

// Session.Run equals the independent reference bit for bit.
func TestSessionMatchesReference(t *testing.T) {
	for _, m := range sessTinyModels(t) {
		t.Run(m.Name, func(t *testing.T) {
			q, err := RandomQModel(m, 42)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSession(q)
			if err != nil {
				t.Fatal(err)
			}
			for seed := range uint64(3) {
				pix := sessPixels(seed, q.Input.Elems())
				if err := s.SetPixels(pix); err != nil {
					t.Fatal(err)
				}
				got, err := s.Run()
				if err != nil {
					t.Fatal(err)
				}
				_, want := sessRef(q, pix)
				if !slices.Equal(got, want) {
					t.Fatalf("input %d: got %v, want %v", seed, got, want)
				}
			}
		})
	}
}

func TestSessionInput(t *testing.T) {
	q, err := RandomQModel(sessTinyModels(t)[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(q)
	if err != nil {
		t.Fatal(err)
	}
	if s.Model() != q {
		t.Error("Model() is not the model given")
	}
	n := q.Input.Elems()
	if int64(len(s.Input())) != n {
		t.Fatalf("Input() has %d values, want %d", len(s.Input()), n)
	}
	pix := make([]byte, n)
	pix[0], pix[1], pix[2] = 0, 128, 255
	if err := s.SetPixels(pix); err != nil {
		t.Fatal(err)
	}
	if got := s.Input()[:3]; !slices.Equal(got, []int8{-128, 0, 127}) {
		t.Errorf("pixels 0, 128, 255 → %v, want −128, 0, 127", got)
	}
	for _, bad := range []int64{0, n - 1, n + 1} {
		if err := s.SetPixels(make([]byte, bad)); err == nil {
			t.Errorf("SetPixels accepted %d values, want %d", bad, n)
		}
	}
}

func TestNewSessionErrors(t *testing.T) {
	if _, err := NewSession(nil); err == nil {
		t.Error("nil model accepted")
	}
	base, err := RandomQModel(sessTinyModels(t)[0], 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		layer int // −1: the model
		mod   func(q *QModel, l *QLayer)
	}{
		{"no layers", -1, func(q *QModel, _ *QLayer) { q.Layers = nil }},
		{"short weights", 0, func(_ *QModel, l *QLayer) { l.Weight = l.Weight[1:] }},
		{"weight −128", 0, func(_ *QModel, l *QLayer) { l.Weight = slices.Clone(l.Weight); l.Weight[3] = -128 }},
		{"missing pad values", 0, func(_ *QModel, l *QLayer) { l.PadValue = nil }},
		{"shift out of range", 0, func(_ *QModel, l *QLayer) { l.Shift = slices.Clone(l.Shift); l.Shift[0] = 40 }},
		{"NaN scale", 0, func(_ *QModel, l *QLayer) { l.OutScale = float32(math.NaN()) }},
		{"first in_zero", 0, func(_ *QModel, l *QLayer) { l.InZero = 0 }},
		{"batchnorm kind", 1, func(_ *QModel, l *QLayer) { l.Kind = BatchNorm2d }},
		{"rescaling ReLU", 5, func(_ *QModel, l *QLayer) { l.OutZero = l.InZero + 1 }},
		{"input shape", -1, func(q *QModel, _ *QLayer) { q.Input.C = 4 }},
		{"logits on a pool", -1, func(q *QModel, _ *QLayer) {
			q.Layers = slices.Clone(q.Layers[:7]) // up to the adaptive average pool
			q.Layers[6].Logits = true
		}},
		{"logits on Flatten", -1, func(q *QModel, _ *QLayer) {
			q.Layers = slices.Clone(q.Layers[:8])
			q.Layers[7].Logits = true
		}},
	} {
		q := *base
		q.Layers = slices.Clone(base.Layers)
		var l *QLayer
		if tt.layer >= 0 {
			l = &q.Layers[tt.layer]
		}
		if tt.name == "rescaling ReLU" && l.Kind != ReLU {
			t.Fatalf("layer %d is %s, want the unfused ReLU", tt.layer, l.Kind)
		}
		tt.mod(&q, l)
		s, err := NewSession(&q)
		t.Logf("%s: %v", tt.name, err)
		if err == nil || s != nil {
			t.Errorf("%s: NewSession accepted an invalid model", tt.name)
			continue
		}
		var le *LayerError
		if tt.layer >= 0 && !errors.As(err, &le) {
			t.Errorf("%s: error %q does not name the layer", tt.name, err)
		}
	}
}

func TestSessionDoesNotAllocate(t *testing.T) {
	check := func(t *testing.T, m *Model) *Session {
		q, err := RandomQModel(m, 3)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSession(q)
		if err != nil {
			t.Fatal(err)
		}
		pix := sessPixels(3, q.Input.Elems())
		n := testing.AllocsPerRun(1, func() {
			if err := s.SetPixels(pix); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Run(); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per Run, want 0", m.Name, n)
		}
		return s
	}
	for _, m := range sessTinyModels(t) {
		check(t, m)
	}
	if testing.Short() {
		t.Skip("VGG11 at 3x64x64 in -short mode")
	}
	m, err := VGG("vgg11", Shape{3, 64, 64}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	s := check(t, m)
	// The buffers are the budget check's plan.
	c, err := m.Cost(Int8)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ActivationBytes(); got != c.PeakActivationBytes {
		t.Errorf("VGG11 3x64x64 activation buffers: %d B, the cost plan says %d B", got, c.PeakActivationBytes)
	}
}

// Sessions share a QModel across goroutines (run with -race).
func TestSessionsConcurrent(t *testing.T) {
	m := sessTinyModels(t)[0]
	q, err := RandomQModel(m, 9)
	if err != nil {
		t.Fatal(err)
	}
	const workers, runs = 4, 3
	want := make([][]float32, runs)
	pixels := make([][]byte, runs)
	for i := range runs {
		pixels[i] = sessPixels(uint64(i), q.Input.Elems())
		_, want[i] = sessRef(q, pixels[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := NewSession(q)
			if err != nil {
				errs <- err
				return
			}
			for i := range runs {
				i := (i + w) % runs
				if err := s.SetPixels(pixels[i]); err != nil {
					errs <- err
					return
				}
				got, err := s.Run()
				if err != nil {
					errs <- err
					return
				}
				if !slices.Equal(got, want[i]) {
					errs <- fmt.Errorf("worker %d input %d: got %v, want %v", w, i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A Session's buffers follow Cost's ping-pong plan: VGG16 at 224 needs
// two buffers of 64×224×224.
func TestSessionVGG16Plan(t *testing.T) {
	if testing.Short() {
		t.Skip("VGG16 weights in -short mode")
	}
	s := sessVGG(t, "vgg16", DefaultInput)
	if got, want := s.ActivationBytes(), int64(6422528); got != want {
		t.Errorf("VGG16 activation buffers: %d B, want %d", got, want)
	}
}

func sessVGG(tb testing.TB, arch string, in Shape) *Session {
	tb.Helper()
	m, err := VGG(arch, in, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	q, err := RandomQModel(m, 1)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := NewSession(q)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func benchSession(b *testing.B, arch string, in Shape) { benchSessionThreads(b, arch, in, 1) }

func benchSessionThreads(b *testing.B, arch string, in Shape, threads int) {
	s := sessVGG(b, arch, in)
	if threads > 1 {
		var err error
		if s, err = NewSessionThreads(s.Model(), threads); err != nil {
			b.Fatal(err)
		}
		defer s.Close()
	}
	m, err := VGG(arch, in, 1000)
	if err != nil {
		b.Fatal(err)
	}
	c, err := m.Cost(Int8)
	if err != nil {
		b.Fatal(err)
	}
	pix := sessPixels(1, in.Elems())
	b.ResetTimer()
	for range b.N {
		if err := s.SetPixels(pix); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Run(); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec*1e3, "ms/run")
	b.ReportMetric(float64(c.MACs)/sec/1e9, "GMAC/s")
}

// BenchmarkSessionVGG16Generic is VGG16 (15.47 GMACs) at 3x224x224 on the
// generic kernels, one goroutine. Use -benchtime 1x: one run takes seconds.
func BenchmarkSessionVGG16Generic(b *testing.B) { benchSession(b, "vgg16", DefaultInput) }

// BenchmarkSessionVGG16Threads2 is the same with a 2-thread Session.
func BenchmarkSessionVGG16Threads2(b *testing.B) { benchSessionThreads(b, "vgg16", DefaultInput, 2) }

// BenchmarkSessionVGG11Small is VGG11 at 3x64x64.
func BenchmarkSessionVGG11Small(b *testing.B) { benchSession(b, "vgg11", Shape{3, 64, 64}) }
