package quant

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// BenchmarkCalibrateVGG16 is one calibration image of VGG16 (224x224,
// He-initialised weights): the float forward with every layer's output
// (ForwardFastTrace on every CPU) and the observers. Run with a small
// -benchtime, e.g.
//
//	go test -run XXX -bench CalibrateVGG16 -benchtime 2x ./quant
func BenchmarkCalibrateVGG16(b *testing.B) {
	m, err := infer.VGG("vgg16", infer.DefaultInput, 1000)
	if err != nil {
		b.Fatal(err)
	}
	heWeights(m, 1)
	m.Meta.Spec = infer.ImageNetSpec()
	c, err := NewCalibrator(m)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, m.Input.Elems())
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	b.ReportMetric(float64(runtime.NumCPU()), "cpus")
	for b.Loop() {
		if err := c.ObserveImage(x); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/image")
}
