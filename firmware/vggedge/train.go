package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/train"
	"github.com/vggedge/vggedge/infer/vgm"
)

// runTrain trains a float model from an architecture file on MNIST-style
// idx data and saves it as a model file:
//
//	vggedge train --arch FILE --data idx:DIR [--epochs N] [--batch N] [--lr X] [--seed S] [--limit N] --out F.vgm
//
// DIR holds the train and t10k idx files (gzipped or not). The input spec
// is GRAY with the training images' mean and std; the labels are the class
// indices "0", "1", ….
func runTrain(args []string, stdout io.Writer) (int, error) {
	def := train.DefaultConfig()
	fs := newFlags("train", stdout)
	arch := fs.String("arch", "", "architecture file (JSON) with a [1, H, W] input and one output per class")
	data := fs.String("data", "", "idx:DIR, the folder holding train-images-idx3-ubyte(.gz), t10k-… (MNIST layout)")
	out := fs.String("out", "", "model file to write (.vgm)")
	epochs := fs.Int("epochs", def.Epochs, "passes over the training set")
	batch := fs.Int("batch", def.Batch, "images per SGD step")
	lr := fs.Float64("lr", def.LR, "peak learning rate (linear warm-up, then cosine decay to 0)")
	momentum := fs.Float64("momentum", def.Momentum, "SGD momentum")
	wd := fs.Float64("wd", def.WeightDecay, "weight decay on conv and linear weights")
	warmup := fs.Float64("warmup", def.Warmup, "epochs of learning-rate warm-up")
	shift := fs.Int("shift", 2, "translate training images by up to N pixels (augmentation; 0: off)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed, data and flags give the same weights")
	limit := fs.Int("limit", 0, "train on the first N training images only (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	if err := requireFlags("--arch", *arch, "--data", *data, "--out", *out); err != nil {
		return exitBadInput, fmt.Errorf("%w (see vggedge train -h)", err)
	}
	dir, ok := strings.CutPrefix(*data, "idx:")
	if !ok || dir == "" {
		return exitBadInput, fmt.Errorf("--data %q: want idx:DIR, the folder holding the MNIST-style idx files", *data)
	}
	if *limit < 0 {
		return exitBadInput, fmt.Errorf("--limit %d: must not be negative", *limit)
	}
	// Fail now rather than after the training if the output cannot be
	// written where asked.
	if st, err := os.Stat(*out); err == nil && st.IsDir() {
		return exitBadInput, fmt.Errorf("--out %s: is a directory", *out)
	}
	if st, err := os.Stat(filepath.Dir(*out)); err != nil || !st.IsDir() {
		return exitBadInput, fmt.Errorf("--out %s: no such directory %s", *out, filepath.Dir(*out))
	}
	cfg := train.Config{Epochs: *epochs, Batch: *batch, LR: *lr, Momentum: *momentum, WeightDecay: *wd,
		Warmup: *warmup, Shift: *shift, Seed: *seed, Shards: def.Shards}

	m, err := infer.Build(*arch, infer.Options{})
	if err != nil {
		return exitBadInput, err
	}
	trainSet, err := loadIDXSet(dir, "train", *limit)
	if err != nil {
		return exitBadInput, err
	}
	testSet, err := loadIDXSet(dir, "t10k", 0)
	if err != nil {
		return exitBadInput, err
	}
	if m.Input.C != 1 {
		return exitBadInput, fmt.Errorf("%s: input %v has %d channels; idx images are grey (1 channel)", *arch, m.Input, m.Input.C)
	}
	if m.Input != trainSet.Shape || m.Input != testSet.Shape {
		return exitBadInput, fmt.Errorf("%s: input %v, but the idx images are %v", *arch, m.Input, trainSet.Shape)
	}
	mean, std := pixelStats(trainSet.Pixels)
	m.Meta.Spec = infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{mean}, Std: []float32{std}, Resize: "stretch"}
	shapes, err := m.Resolve()
	if err != nil {
		return exitBadInput, err
	}
	classes := shapes[len(shapes)-1].C
	m.Meta.Labels = make([]string, classes)
	for i := range m.Meta.Labels {
		m.Meta.Labels[i] = strconv.Itoa(i)
	}

	tr, err := train.New(m, trainSet, cfg)
	if err != nil {
		return exitBadInput, fmt.Errorf("%s: %w", *arch, err)
	}
	fmt.Fprintf(stdout, "training %s (%s, input %v, %d classes) on %d images, testing on %d; input mean %g std %g\n",
		m.Name, *arch, m.Input, classes, trainSet.Len(), testSet.Len(), mean, std)
	fmt.Fprintf(stdout, "epochs %d, batch %d, SGD lr %g momentum %g weight decay %g, warm-up %g epochs then cosine, shift ±%d px, seed %d\n",
		cfg.Epochs, cfg.Batch, cfg.LR, cfg.Momentum, cfg.WeightDecay, cfg.Warmup, cfg.Shift, cfg.Seed)

	progress := progressLine(stdout)
	start := time.Now()
	var res train.Result
	for e := 1; e <= cfg.Epochs; e++ {
		epochStart := time.Now()
		st, err := tr.Epoch(func(done, total int, loss float64) {
			progress(fmt.Sprintf("epoch %d/%d  %d/%d images  loss %.4f", e, cfg.Epochs, done, total, loss), done == total)
		})
		if err != nil {
			return exitBadInput, err
		}
		if res, err = tr.Evaluate(testSet); err != nil {
			return exitBadInput, err
		}
		fmt.Fprintf(stdout, "epoch %d/%d  loss %.4f  train top-1 %.4f  test top-1 %.4f (%d/%d)  lr %.4g  %.1f s (total %s)\n",
			e, cfg.Epochs, st.Loss, st.Accuracy, res.Accuracy, res.Correct, res.Samples, st.LR,
			time.Since(epochStart).Seconds(), time.Since(start).Round(time.Second))
	}

	tm := tr.Model()
	tm.Meta.Prov = infer.Provenance{
		Version: version,
		Created: created().Format(time.RFC3339),
		Notes: fmt.Sprintf("trained by vggedge train: %s on %d idx training images (%v), epochs %d, batch %d, "+
			"SGD lr %g momentum %g weight decay %g, warm-up %g epochs then cosine, shift ±%d px, seed %d, %d shards; "+
			"test top-1 %.4f on %d t10k images",
			filepath.Base(*arch), trainSet.Len(), trainSet.Shape, cfg.Epochs, cfg.Batch, cfg.LR, cfg.Momentum, cfg.WeightDecay,
			cfg.Warmup, cfg.Shift, cfg.Seed, cfg.Shards, res.Accuracy, res.Samples),
	}
	if err := vgm.Save(*out, &vgm.File{Float: tm}); err != nil {
		return exitBadInput, err
	}
	size := int64(0)
	if st, err := os.Stat(*out); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(stdout, "wrote %s (%s bytes): test top-1 %.4f, %s\n", *out, infer.Group(size), res.Accuracy, time.Since(start).Round(time.Second))
	return exitOK, nil
}

// loadIDXSet reads an idx set as a training data set; limit > 0 keeps the
// first limit images.
func loadIDXSet(dir, set string, limit int) (*train.Dataset, error) {
	imgs, labels, err := camera.LoadIDX(dir, set)
	if err != nil {
		return nil, err
	}
	n := imgs.N
	if limit > 0 {
		n = min(n, limit)
	}
	if n == 0 {
		return nil, fmt.Errorf("idx %s set in %s: no images", set, dir)
	}
	ds := &train.Dataset{Shape: infer.Shape{C: 1, H: imgs.H, W: imgs.W}, Pixels: imgs.Pixels[:n*imgs.H*imgs.W], Labels: make([]int, n)}
	for i, l := range labels[:n] {
		ds.Labels[i] = int(l)
	}
	return ds, nil
}

// pixelStats is the mean and standard deviation of the pixels scaled to
// [0, 1], rounded to 4 decimals as such figures are published (MNIST's
// training set gives its well-known 0.1307 and 0.3081).
func pixelStats(px []byte) (mean, std float32) {
	var hist [256]int64
	for _, p := range px {
		hist[p]++
	}
	var s, s2 float64
	for v, c := range hist {
		x := float64(v) / 255
		s += float64(c) * x
		s2 += float64(c) * x * x
	}
	n := float64(len(px))
	mu := s / n
	sd := math.Sqrt(max(s2/n-mu*mu, 0))
	round := func(v float64) float32 { return float32(math.Round(v*1e4) / 1e4) }
	mean, std = round(mu), round(sd)
	if std == 0 {
		std = 1 // blank images: any positive std normalises them to 0
	}
	return mean, std
}

// created is the model's creation time: now, or SOURCE_DATE_EPOCH when set
// (the reproducible-builds convention), so that a fixed seed can give a
// byte-identical file.
func created() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}

// progressLine returns a func that shows progress on one line rewritten in
// place when stdout is a terminal; into a file or pipe it writes nothing,
// so logs keep only the per-epoch lines.
func progressLine(w io.Writer) func(msg string, final bool) {
	if !isTerminal(w) {
		return func(string, bool) {}
	}
	last := time.Time{}
	return func(msg string, final bool) {
		if final {
			fmt.Fprint(w, "\r\033[K")
			return
		}
		if time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "\r\033[K%s", msg)
	}
}
