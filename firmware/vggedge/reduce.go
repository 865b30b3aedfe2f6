package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/models"
	"github.com/vggedge/vggedge/infer/vgm"
	"github.com/vggedge/vggedge/internal/atomicfile"
	"github.com/vggedge/vggedge/quant"
)

func runReduce(args []string, stdout io.Writer) (int, error) {
	fs := newFlags("reduce", stdout)
	model := fs.String("model", "", "float model file, a file carrying its float source (quantize --keep-float), or an embedded model (digits)")
	calib := fs.String("calib", "", "calibration images: idx:PATH (the train set of a folder), a folder of images (flat or ImageFolder), a glob or file://… (labels not needed)")
	samples := fs.Int("samples", 500, "calibration images to fit on (spread evenly over the set)")
	rank := fs.Int("rank", 0, "width of the 1x1 reduction before the classifier (e.g. 64 for VGG16's 512 channels)")
	keepMACs := fs.Float64("keep-macs", 0, "keep at most this fraction of the MACs, e.g. 0.5; ranks are chosen per layer")
	fitBoard := fs.String("fit", "", "reduce until the model fits this board (see vggedge boards), with --fps/--latency/--mem")
	fps := fs.Float64("fps", 0, "with --fit: frame-rate budget")
	latency := durationVar(fs, "latency", 0, "with --fit: latency budget per inference, e.g. 250ms")
	mem := fs.String("mem", "", "with --fit: memory budget, e.g. 300MiB")
	precision := fs.String("precision", "int8", "with --fit: the precision the board runs, int8 or fp32")
	method := fs.String("method", "", "calibration for the int8 model: minmax, percentile or entropy (default: the source's, else percentile)")
	percentile := fs.Float64("percentile", 0, "percentile of |x| kept, for --method percentile (default: the source's, else 99.99)")
	threads := fs.Int("threads", runtime.NumCPU(), "threads for the float passes")
	out := fs.String("out", "", "output model file (the reduced float model and its int8 quantization)")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	if err := requireFlags("--model", *model, "--calib", *calib, "--out", *out); err != nil {
		return exitBadInput, err
	}
	if err := atomicfile.CheckWritable(*out); err != nil { // before the fitting
		return exitBadInput, fmt.Errorf("--out %s: %w", *out, err)
	}
	set := 0
	for _, on := range []bool{*rank != 0, *keepMACs != 0, *fitBoard != ""} {
		if on {
			set++
		}
	}
	if set == 0 {
		return exitBadInput, errors.New("give --rank N, --keep-macs F or --fit BOARD")
	}
	if *rank < 0 {
		return exitBadInput, fmt.Errorf("--rank %d: must be positive", *rank)
	}
	if *keepMACs < 0 || *keepMACs > 1 || math.IsNaN(*keepMACs) {
		return exitBadInput, fmt.Errorf("--keep-macs %g: want a fraction in (0, 1]", *keepMACs)
	}
	if *samples < 1 || *threads < 1 {
		return exitBadInput, errors.New("--samples and --threads must be at least 1")
	}
	if *fitBoard == "" && (*fps != 0 || *latency != 0 || *mem != "") {
		return exitBadInput, errors.New("--fps, --latency and --mem go with --fit BOARD")
	}
	var board *boards.Board
	var budget boards.Budget
	if *fitBoard != "" {
		var err error
		if board, err = boards.ByID(*fitBoard); err != nil {
			return exitBadInput, fmt.Errorf("--fit: %w", err)
		}
		if budget, err = reduceBudget(*precision, *fps, *latency, *mem); err != nil {
			return exitBadInput, err
		}
	}
	fm, srcName, err := reduceSource(*model)
	if err != nil {
		return exitBadInput, err
	}
	if !fm.HasWeights() {
		return exitBadInput, fmt.Errorf("model %s has no weights (an architecture only): reduce fits a float model with weights", srcName)
	}
	if fm.Meta.Spec.ChannelOrder == "" {
		return exitBadInput, fmt.Errorf("model %s has no input spec: cannot turn calibration images into its input", srcName)
	}
	qopt, err := reduceQuantOptions(fm, *method, *percentile)
	if err != nil {
		return exitBadInput, err
	}
	ds, err := camera.OpenDataset(*calib, "train", fm.Input, fm.Meta.Spec)
	if err != nil {
		return exitBadInput, err
	}
	n := min(*samples, ds.Len())
	if n == 0 {
		return exitBadInput, fmt.Errorf("--calib %s: no images", *calib)
	}
	images := make([][]float32, n)
	pix := make([]byte, fm.Input.Elems())
	for k := range images {
		i := k * ds.Len() / n // spread evenly: every class is seen
		if _, err := ds.Sample(i, pix); err != nil {
			return exitBadInput, fmt.Errorf("calibration sample %d: %w", i, err)
		}
		images[k] = make([]float32, fm.Input.Elems())
		fm.Meta.Spec.Normalize(images[k], pix, fm.Input)
	}

	start := time.Now()
	opt := quant.ReduceOptions{Rank: *rank, KeepMACs: *keepMACs, Threads: *threads,
		Progress: func(msg string) { fmt.Fprintf(os.Stderr, "reduce: %s\n", msg) }}
	if board != nil {
		opt.Fits = func(arch *infer.Model) quant.FitVerdict {
			r, err := boards.Check(arch, board, budget)
			if err != nil {
				return quant.FitVerdict{Why: err.Error()}
			}
			return quant.FitVerdict{Fits: r.Fits, MemoryFits: r.MemFits(), Why: strings.Join(r.Reasons, "; ")}
		}
	}
	red, rep, err := quant.Reduce(fm, images, opt)
	if err != nil {
		if board != nil {
			return exitNotFit, fmt.Errorf("%s cannot be reduced to fit %s: %w", srcName, board.ID, err)
		}
		return exitBadInput, fmt.Errorf("reduce %s: %w", srcName, err)
	}
	red.Name = srcName + "-reduced"
	red.Meta.Prov.Notes = reduceNotes(*rank, *keepMACs, *fitBoard, budget, rep)

	fmt.Fprintf(os.Stderr, "reduce: quantizing the reduced model on %d images\n", n)
	cal, err := quant.NewCalibrator(red)
	if err != nil {
		return exitBadInput, fmt.Errorf("reduced model: %w", err)
	}
	for k, x := range images {
		if err := cal.ObserveImage(x); err != nil {
			return exitBadInput, fmt.Errorf("calibration sample %d: %w", k, err)
		}
	}
	q, err := cal.Quantize(qopt)
	if err != nil {
		return exitBadInput, fmt.Errorf("reduced model: %w", err)
	}
	q.Meta.Prov.Version = version
	q.Meta.Prov.Created = created().Format(time.RFC3339)
	if err := vgm.Save(*out, &vgm.File{Float: red, Int8: q}); err != nil {
		return exitBadInput, err
	}
	writeReduceReport(stdout, srcName, rep)
	fmt.Fprintf(stdout, "wrote %s: %s, float32 and int8 (%s calibration), fitted on %d images in %.1f s\n",
		*out, red.Name, qopt.Method, n, time.Since(start).Seconds())
	if board != nil {
		arch := red.Architecture()
		r, err := boards.Check(arch, board, budget)
		if err != nil {
			return exitBadInput, err
		}
		verdict := "FITS"
		if !r.Fits {
			verdict = "DOES NOT FIT"
		}
		fmt.Fprintf(stdout, "check: %s %s at %s (%s)\n", verdict, board.ID, budget.Precision, strings.Join(r.Reasons, "; "))
		if !r.Fits {
			return exitNotFit, nil
		}
	}
	return exitOK, nil
}

// reduceSource is the float model to reduce: the file's float model, or for
// an int8-only embedded model its float source (digits → digits-f32).
func reduceSource(name string) (*infer.Model, string, error) {
	f, err := openModel(name)
	if err != nil {
		return nil, "", err
	}
	if f.Float != nil {
		return f.Float, f.Name(), nil
	}
	if src, ok, err := models.Open(name + "-f32"); ok && err == nil && src.Float != nil {
		return src.Float, f.Name(), nil
	}
	return nil, "", fmt.Errorf("model %s has no float model to reduce (quantize it with --keep-float, or give the float model)", name)
}

func reduceBudget(precision string, fps float64, latency time.Duration, mem string) (boards.Budget, error) {
	var b boards.Budget
	var err error
	if b.Precision, err = infer.ParsePrecision(precision); err != nil {
		return b, fmt.Errorf("--precision: %w", err)
	}
	switch {
	case fps != 0 && latency != 0:
		return b, errors.New("give --fps or --latency, not both")
	case latency < 0:
		return b, fmt.Errorf("--latency %v: must be positive", latency)
	case fps < 0 || math.IsNaN(fps) || math.IsInf(fps, 0):
		return b, fmt.Errorf("--fps %v: must be a positive number", fps)
	case fps > 0:
		b.Latency = time.Duration(float64(time.Second) / fps)
	default:
		b.Latency = latency
	}
	if mem != "" {
		if b.MemBytes, err = parseMemBudget(mem); err != nil {
			return b, fmt.Errorf("--mem: %w", err)
		}
	}
	return b, nil
}

// reduceQuantOptions: the flags, else the calibration the source model's
// int8 version was made with, else percentile 99.99.
func reduceQuantOptions(fm *infer.Model, method string, percentile float64) (quant.Options, error) {
	o := quant.Options{Method: quant.Percentile, Percentile: 99.99}
	if m, err := quant.ParseMethod(fm.Meta.Prov.Calibration); err == nil {
		o.Method = m
		if fm.Meta.Prov.Percentile > 0 {
			o.Percentile = fm.Meta.Prov.Percentile
		}
	}
	if method != "" {
		m, err := pickMethod(method)
		if err != nil {
			return o, err
		}
		o.Method = m
	}
	if percentile != 0 {
		if percentile <= 0 || percentile > 100 {
			return o, fmt.Errorf("--percentile %g: want (0, 100]", percentile)
		}
		o.Percentile = percentile
	}
	return o, nil
}

func reduceNotes(rank int, keep float64, board string, budget boards.Budget, rep *quant.ReduceReport) string {
	var b strings.Builder
	b.WriteString("vggedge reduce")
	if rank > 0 {
		fmt.Fprintf(&b, " --rank %d", rank)
	}
	if keep > 0 {
		fmt.Fprintf(&b, " --keep-macs %g", keep)
	}
	if board != "" {
		fmt.Fprintf(&b, " --fit %s --precision %s", board, budget.Precision)
		if budget.Latency > 0 {
			fmt.Fprintf(&b, " --latency %v", budget.Latency)
		}
	}
	fmt.Fprintf(&b, ": MACs %d → %d, params %d → %d", rep.MACsBefore, rep.MACsAfter, rep.ParamsBefore, rep.ParamsAfter)
	for _, l := range rep.Layers {
		fmt.Fprintf(&b, "; %s %d→%d", l.Name, l.From, l.Rank)
	}
	return b.String()
}

func writeReduceReport(w io.Writer, src string, rep *quant.ReduceReport) {
	tab := table{leftCols: 2}
	tab.add("layer", "reduction", "channels", "kept", "MACs before", "MACs after", "PCA energy", "fit error")
	for _, l := range rep.Layers {
		what := "low-rank conv + 1x1"
		name := l.Name
		if l.Classifier {
			what, name = "1x1 before classifier", "after "+l.Name
		}
		energy := "-"
		if !math.IsNaN(l.Energy) {
			energy = fmt.Sprintf("%.1f%%", 100*l.Energy)
		}
		tab.add(name, what, fmt.Sprint(l.From), fmt.Sprint(l.Rank), dash(l.MACsBefore), dash(l.MACsAfter),
			energy, fmt.Sprintf("%.1f%%", 100*l.RelErr))
	}
	if len(rep.Layers) > 0 {
		_ = tab.write(w)
	} else {
		fmt.Fprintln(w, "no layer needed a reduction")
	}
	fmt.Fprintf(w, "%s: MACs %s → %s (kept %.1f%%), params %s → %s (%.1f%%)\n", src,
		infer.Group(rep.MACsBefore), infer.Group(rep.MACsAfter), 100*float64(rep.MACsAfter)/float64(rep.MACsBefore),
		infer.Group(rep.ParamsBefore), infer.Group(rep.ParamsAfter), 100*float64(rep.ParamsAfter)/float64(rep.ParamsBefore))
}
