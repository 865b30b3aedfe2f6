package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/labels"
	"github.com/vggedge/vggedge/infer/vgm"
	"github.com/vggedge/vggedge/internal/atomicfile"
	"github.com/vggedge/vggedge/quant"
	"github.com/vggedge/vggedge/quant/torchio"
)

func runQuantize(args []string, stdout io.Writer) (int, error) {
	fs := newFlags("quantize", stdout)
	var mf modelFlags
	mf.register(fs)
	weights := fs.String("weights", "", "float weights in torchvision naming: .safetensors or PyTorch .pth (with --arch)")
	calib := fs.String("calib", "", "calibration images: idx:PATH (the train set of a folder), a folder of images (flat or ImageFolder), a glob or file://… (labels not needed)")
	method := fs.String("method", "percentile", "calibration: minmax, percentile or entropy")
	percentile := fs.Float64("percentile", 99.99, "percentile of |x| kept, for --method percentile")
	samples := fs.Int("samples", 1000, "calibration images to use (spread evenly over the set)")
	labels := fs.String("labels", "", "class names: a file with one a line, a JSON array, or imagenet_class_index.json (default: the model's; ImageNet-1k's for 1000 classes; else 0..N-1)")
	order := fs.String("order", "", "input channel order RGB, BGR or GRAY (default: the model's; RGB for 3 channels)")
	mean := fs.String("mean", "", "per-channel mean on [0,1] pixels, e.g. 0.485,0.456,0.406 (default: ImageNet's)")
	std := fs.String("std", "", "per-channel std, e.g. 0.229,0.224,0.225 (default: ImageNet's)")
	filter := fs.String("resize-filter", "", "resampling: default (area when shrinking 2x or more, else bilinear) or pil (bilinear-antialias: PIL's, what torchvision's Resize does to PIL images)")
	out := fs.String("out", "", "output model file")
	keepFloat := fs.Bool("keep-float", false, "store the float model in the file too (for vggedge reduce)")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	if err := requireFlags("--calib", *calib, "--out", *out); err != nil {
		return exitBadInput, err
	}
	if err := atomicfile.CheckWritable(*out); err != nil { // before the minutes of calibration
		return exitBadInput, fmt.Errorf("--out %s: %w", *out, err)
	}
	m, err := pickMethod(*method)
	if err != nil {
		return exitBadInput, err
	}
	if *samples < 1 {
		return exitBadInput, fmt.Errorf("--samples %d: must be at least 1", *samples)
	}
	fm, err := floatModel(&mf, *weights)
	if err != nil {
		return exitBadInput, err
	}
	if err := applySpec(fm, *order, *mean, *std, *labels); err != nil {
		return exitBadInput, err
	}
	if *filter != "" {
		if fm.Meta.Spec.ResizeFilter, err = parseResizeFilter(*filter); err != nil {
			return exitBadInput, err
		}
	}
	cal, err := quant.NewCalibrator(fm)
	if err != nil {
		return exitBadInput, fmt.Errorf("%s: %w", fm.Name, err)
	}
	ds, err := camera.OpenDataset(*calib, "train", fm.Input, fm.Meta.Spec)
	if err != nil {
		return exitBadInput, err
	}
	n := min(*samples, ds.Len())
	pix := make([]byte, fm.Input.Elems())
	x := make([]float32, fm.Input.Elems())
	start := time.Now()
	bar := newProgress(os.Stderr, "calibrating", n)
	for k := 0; k < n; k++ {
		i := k * ds.Len() / n // spread evenly: every class is seen
		if _, err := ds.Sample(i, pix); err != nil {
			return exitBadInput, fmt.Errorf("calibration sample %d: %w", i, err)
		}
		fm.Meta.Spec.Normalize(x, pix, fm.Input)
		if err := cal.ObserveImage(x); err != nil {
			return exitBadInput, fmt.Errorf("calibration sample %d: %w", i, err)
		}
		bar.set(k + 1)
	}
	bar.done()
	q, err := cal.Quantize(quant.Options{Method: m, Percentile: *percentile})
	if err != nil {
		return exitBadInput, err
	}
	q.Meta.Prov.Version = version
	q.Meta.Prov.Created = created().Format(time.RFC3339)
	file := &vgm.File{Int8: q}
	if *keepFloat {
		file.Float = fm
	}
	if err := vgm.Save(*out, file); err != nil {
		return exitBadInput, err
	}
	st, _ := os.Stat(*out)
	var size int64
	if st != nil {
		size = st.Size()
	}
	fmt.Fprintf(stdout, "wrote %s: %s int8, %d layers, %s calibration on %d images (%.1f s), %s\n",
		*out, q.Name, len(q.Layers), m, n, time.Since(start).Seconds(), infer.Bytes(size))
	return exitOK, nil
}

// parseResizeFilter maps --resize-filter to the spec's ResizeFilter.
func parseResizeFilter(s string) (string, error) {
	switch strings.ToLower(s) {
	case "default":
		return "", nil
	case "pil", infer.ResizeBilinearAntialias:
		return infer.ResizeBilinearAntialias, nil
	}
	return "", fmt.Errorf("--resize-filter %q: want default or pil (%s)", s, infer.ResizeBilinearAntialias)
}

func pickMethod(s string) (quant.Method, error) {
	m, err := quant.ParseMethod(s)
	if err != nil {
		return "", fmt.Errorf("--method: %w", err)
	}
	return m, nil
}

// floatModel is the float model to quantize: --arch with --weights, or a
// float model file (--model).
func floatModel(mf *modelFlags, weights string) (*infer.Model, error) {
	if mf.model != "" {
		if weights != "" {
			return nil, errors.New("give --model or --arch with --weights, not both")
		}
		f, err := openModel(mf.model)
		if err != nil {
			return nil, err
		}
		if f.Float == nil {
			return nil, fmt.Errorf("model %s has no float model to quantize", mf.model)
		}
		return f.Float, nil
	}
	if weights == "" {
		return nil, errors.New("--weights is required with --arch (or give a float model file with --model)")
	}
	m, err := mf.build()
	if err != nil {
		return nil, err
	}
	ts, sum, err := torchio.Load(weights)
	if err != nil {
		return nil, err
	}
	if err := quant.LoadWeights(m, ts); err != nil {
		return nil, fmt.Errorf("%s: %w", weights, err)
	}
	m.Meta.Prov.SourceFile = filepath.Base(weights)
	m.Meta.Prov.SourceSHA256 = sum
	return m, nil
}

// applySpec fills the input spec and labels from flags, defaulting to
// ImageNet's preprocessing for 3-channel models.
func applySpec(m *infer.Model, order, mean, std, labelsFile string) error {
	s := &m.Meta.Spec
	if s.ChannelOrder == "" {
		if m.Input.C == 3 {
			*s = infer.ImageNetSpec()
			// torchvision's eval transform: Resize(int(S / 0.875)) then
			// CenterCrop(S) — 256 for 224, 73 for 64 (a fixed 256 made a
			// 64-pixel model see the central 6% of the picture).
			s.ResizeShorter = min(m.Input.H, m.Input.W) * 8 / 7
		} else {
			*s = infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{0.5}, Std: []float32{0.5}, Resize: "stretch"}
		}
	}
	if order != "" {
		s.ChannelOrder = strings.ToUpper(order)
	}
	var err error
	if mean != "" {
		if s.Mean, err = parseFloats(mean); err != nil {
			return fmt.Errorf("--mean: %w", err)
		}
	}
	if std != "" {
		if s.Std, err = parseFloats(std); err != nil {
			return fmt.Errorf("--std: %w", err)
		}
	}
	if err := s.Validate(m.Input); err != nil {
		return fmt.Errorf("input spec: %w", err)
	}
	if labelsFile != "" {
		if m.Meta.Labels, err = labels.ReadFile(labelsFile); err != nil {
			return fmt.Errorf("--labels: %w", err)
		}
	}
	outputs := m.Layers[len(m.Layers)-1].Out
	if len(m.Meta.Labels) == 0 {
		m.Meta.Labels = defaultLabels(outputs)
	}
	if len(m.Meta.Labels) != outputs {
		if labelsFile == "" {
			return fmt.Errorf("%d labels for the model's %d outputs (give --labels FILE)", len(m.Meta.Labels), outputs)
		}
		return fmt.Errorf("--labels %s: %d labels for the model's %d outputs", labelsFile, len(m.Meta.Labels), outputs)
	}
	return nil
}

// defaultLabels names the outputs of a model imported without labels: a
// 1000-class model is taken for ImageNet-1k (torchvision's weights are),
// with torchvision's names in its order; others get their indices.
func defaultLabels(outputs int) []string {
	if outputs == labels.ImageNetClasses {
		return labels.ImageNetNames()
	}
	ls := make([]string, outputs)
	for i := range ls {
		ls[i] = strconv.Itoa(i)
	}
	return ls
}

func parseFloats(s string) ([]float32, error) {
	var fs []float32
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		fs = append(fs, float32(v))
	}
	return fs, nil
}

// progress draws a one-line progress bar on a terminal and a few plain
// lines elsewhere (logs, CI).
type progress struct {
	w     io.Writer
	what  string
	total int
	tty   bool
	last  int
}

func newProgress(w io.Writer, what string, total int) *progress {
	return &progress{w: w, what: what, total: total, last: -1, tty: isTerminal(w)}
}

func (p *progress) set(n int) {
	pct := 100 * n / max(p.total, 1)
	if p.tty {
		if pct != p.last {
			const width = 30
			fill := width * n / max(p.total, 1)
			fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d", p.what, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), n, p.total)
		}
	} else if pct/25 != p.last/25 {
		fmt.Fprintf(p.w, "%s: %d/%d\n", p.what, n, p.total)
	}
	p.last = pct
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
