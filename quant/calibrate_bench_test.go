package quant

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
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

// BenchmarkReduceVGG16Classifier is `vggedge reduce --rank 64` on VGG16
// (224x224, He-initialised weights): a 512→64 1x1 reduction before the
// classifier, fitted on VGGEDGE_REDUCE_IMAGES random images (default 4).
// Minutes per iteration; run with -benchtime 1x.
func BenchmarkReduceVGG16Classifier(b *testing.B) {
	n := 4
	if s := os.Getenv("VGGEDGE_REDUCE_IMAGES"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	m, err := infer.VGG("vgg16", infer.DefaultInput, 1000)
	if err != nil {
		b.Fatal(err)
	}
	heWeights(m, 1)
	m.Meta.Spec = infer.ImageNetSpec()
	r := rand.New(rand.NewPCG(3, 4))
	images := make([][]float32, n)
	for i := range images {
		images[i] = make([]float32, m.Input.Elems())
		for j := range images[i] {
			images[i][j] = float32(r.NormFloat64())
		}
	}
	b.ReportMetric(float64(n), "images")
	for b.Loop() {
		if _, _, err := Reduce(m, images, ReduceOptions{Rank: 64}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/reduce")
}
