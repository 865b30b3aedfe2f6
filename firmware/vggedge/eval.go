package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/labels"
	"github.com/vggedge/vggedge/infer/vgm"
)

type evalResult struct {
	Model     string  `json:"model"`
	Precision string  `json:"precision"`
	Data      string  `json:"data"`
	Samples   int     `json:"samples"`
	Top1      float64 `json:"top1"`
	Top5      float64 `json:"top5"`
	Seconds   float64 `json:"seconds"`
}

func runEval(args []string, stdout io.Writer) (int, error) {
	fs := newFlags("eval", stdout)
	model := fs.String("model", "digits", "model file or embedded model name")
	data := fs.String("data", "", "idx:PATH (MNIST idx files; the t10k set of a folder) or an ImageFolder directory (file://DIR too)")
	limit := fs.Int("limit", 0, "evaluate at most N images (0: all)")
	precision := fs.String("precision", "", "int8 or fp32 (default: int8 when the file has an int8 model)")
	threads := fs.Int("threads", runtime.NumCPU(), "parallel workers")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	if *data == "" {
		return exitBadInput, errors.New("--data is required (idx:PATH or an ImageFolder directory)")
	}
	if *limit < 0 || *threads < 1 {
		return exitBadInput, errors.New("--limit must be ≥ 0 and --threads ≥ 1")
	}
	f, err := openModel(*model)
	if err != nil {
		return exitBadInput, err
	}
	run, err := newRunner(f, *precision)
	if err != nil {
		return exitBadInput, err
	}
	ds, err := camera.OpenDataset(*data, "t10k", run.input, run.meta.Spec)
	if err != nil {
		return exitBadInput, err
	}
	if !camera.IsLabelled(ds) {
		return exitBadInput, fmt.Errorf("--data %s: no labels to measure accuracy against (want idx:PATH or an ImageFolder directory: DIR/CLASS/IMAGE.jpg)", *data)
	}
	labelOf, err := labelMap(ds.Classes(), run.meta.Labels)
	if err != nil {
		return exitBadInput, err
	}
	n := ds.Len()
	if *limit > 0 {
		n = min(n, *limit)
	}
	start := time.Now()
	top1, top5, err := evaluate(run, ds, n, *threads, labelOf)
	if err != nil {
		return exitBadInput, err
	}
	res := evalResult{Model: f.Name(), Precision: string(run.precision), Data: *data, Samples: n,
		Top1: float64(top1) / float64(n), Top5: float64(top5) / float64(n), Seconds: time.Since(start).Seconds()}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(res)
	}
	fmt.Fprintf(stdout, "%s (%s) on %s: top-1 %.4f (%d/%d), top-5 %.4f (%d/%d), %.1f s\n",
		res.Model, res.Precision, *data, res.Top1, top1, n, res.Top5, top5, n, res.Seconds)
	return exitOK, nil
}

// labelMap maps dataset class indices to model output indices: by name
// when both have names (ImageFolder), else one to one (idx). A class
// folder names its label as --when does (the label, a part of it, any
// case; for ImageNet's labels a synonym or the WordNet id, so ImageNet's
// own val/n01440764/… layout works), and must name exactly one.
func labelMap(classes, model []string) (func(int) int, error) {
	if len(classes) == 0 || len(model) == 0 {
		return func(i int) int { return i }, nil
	}
	idx, err := classIndex(classes, model)
	if err != nil {
		return nil, err
	}
	return func(i int) int { return idx[i] }, nil
}

// classIndex is, for each class name, the index of the model label it
// names, as labelMap finds it; the error names the first that names none
// or several.
func classIndex(classes, model []string) ([]int, error) {
	set := labels.NewSet(model)
	idx := make([]int, len(classes))
	for i, c := range classes {
		js := set.Find(c)
		switch {
		case len(js) == 0:
			msg := fmt.Sprintf("dataset class folder %q is not one of the model's %d labels", c, len(model))
			if set.ImageNet() {
				msg += " (ImageNet-1k's: a name, a synonym or a WordNet id such as n01440764)"
			}
			if close := set.Suggest(c, 5); len(close) > 0 {
				msg += "; close: " + strings.Join(close, "; ")
			}
			return nil, errors.New(msg)
		case len(js) > 1:
			var names []string
			for _, j := range js {
				names = append(names, strconv.Quote(model[j]))
			}
			return nil, fmt.Errorf("dataset class folder %q names %d of the model's labels (%s); rename it to one", c, len(js), strings.Join(names, ", "))
		}
		idx[i] = js[0]
	}
	return idx, nil
}

// runner runs one model, int8 or float, on u8 CHW pixels.
type runner struct {
	precision infer.Precision
	input     infer.Shape
	meta      infer.Meta
	q         *infer.QModel
	f         *infer.Model
}

func newRunner(f *vgm.File, precision string) (*runner, error) {
	r := &runner{}
	switch {
	case precision == "" && f.Int8 != nil, precision == "int8":
		if f.Int8 == nil {
			return nil, fmt.Errorf("model %s has no int8 model (quantize it first)", f.Name())
		}
		r.precision, r.q, r.input, r.meta = infer.Int8, f.Int8, f.Int8.Input, f.Int8.Meta
	case precision == "" || precision == "fp32":
		if f.Float == nil {
			return nil, fmt.Errorf("model %s has no float model", f.Name())
		}
		r.precision, r.f, r.input, r.meta = infer.FP32, f.Float, f.Float.Input, f.Float.Meta
	default:
		return nil, fmt.Errorf("--precision %q: want int8 or fp32", precision)
	}
	if r.meta.Spec.ChannelOrder == "" {
		return nil, fmt.Errorf("model %s has no input spec: cannot turn images into its input", f.Name())
	}
	return r, nil
}

// worker is one goroutine's state: its own Session (int8) or input buffer.
type worker struct {
	r       *runner
	s       *infer.Session
	pix     []byte
	x       []float32
	threads int // per inference
}

func (r *runner) newWorker() (*worker, error) { return r.newWorkerThreads(1) }

// newWorkerThreads is a worker whose every inference runs on threads
// threads (classify: one image at a time, as fast as it goes).
func (r *runner) newWorkerThreads(threads int) (*worker, error) {
	w := &worker{r: r, pix: make([]byte, r.input.Elems()), threads: max(threads, 1)}
	if r.q != nil {
		s, err := infer.NewSessionThreads(r.q, w.threads)
		if err != nil {
			return nil, err
		}
		w.s = s
	} else {
		w.x = make([]float32, r.input.Elems())
	}
	return w, nil
}

// logits classifies w.pix.
func (w *worker) logits() ([]float32, error) {
	if w.s != nil {
		if err := w.s.SetPixels(w.pix); err != nil {
			return nil, err
		}
		return w.s.Run()
	}
	w.r.meta.Spec.Normalize(w.x, w.pix, w.r.input)
	return w.r.f.ForwardFast(w.x, w.threads) // eval: 1, its workers run in parallel
}

func evaluate(r *runner, ds camera.Dataset, n, threads int, labelOf func(int) int) (top1, top5 int, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	next := 0
	for t := 0; t < min(threads, n); t++ {
		w, werr := r.newWorker()
		if werr != nil {
			return 0, 0, werr
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := firstErr != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				label, err := ds.Sample(i, w.pix)
				var out []float32
				if err == nil {
					out, err = w.logits()
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("sample %d: %w", i, err)
					}
				} else {
					rank := rankOf(out, labelOf(label))
					if rank == 0 {
						top1++
					}
					if rank < 5 {
						top5++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return top1, top5, firstErr
}

// rankOf is how many outputs score higher than output i (ties count
// against i, so a constant output never looks right).
func rankOf(out []float32, i int) int {
	if i < 0 || i >= len(out) {
		return len(out)
	}
	rank := 0
	for j, v := range out {
		if j != i && v >= out[i] {
			rank++
		}
	}
	return rank
}
