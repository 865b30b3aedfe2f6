package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/firmware/live"
)

// classifyJSON is one line of classify --json.
type classifyJSON struct {
	File      string          `json:"file"`
	Top       []classifyClass `json:"top"`
	LatencyMs float64         `json:"latency_ms"`
	Truth     *string         `json:"truth,omitempty"`   // the model's label its class folder names
	Correct   *bool           `json:"correct,omitempty"` // top-1 is the truth
}

type classifyClass struct {
	Index int     `json:"index"`
	Label string  `json:"label"`
	Score float32 `json:"score"`
}

// classifyItem is one file to classify and its truth (a model class, -1
// when unknown).
type classifyItem struct {
	path  string
	truth int
}

func runClassify(args []string, stdout io.Writer) (int, error) {
	return classify(args, stdout, os.Stderr)
}

// classify is the classify command with its stderr given (for tests): a
// file that cannot be classified is one line there, and the others go on.
func classify(args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlags("classify", stdout)
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: vggedge classify [flags] IMAGE|DIR|GLOB…\n(a DIR's images recursively; a DIR in ImageFolder layout, DIR/CLASS/IMAGE.jpg, also gets top-1 and top-5 accuracy)")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	model := fs.String("model", "digits", "model file or embedded model name")
	topK := fs.Int("topk", 5, "classes per image (at most the model's)")
	threads := fs.Int("threads", runtime.NumCPU(), "inference threads")
	precision := fs.String("precision", "", "int8 or fp32 (default: int8 when the file has an int8 model)")
	asJSON := fs.Bool("json", false, "one JSON object per file: file, top [{index,label,score}], latency_ms (truth, correct when known)")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return exitBadInput, err
	}
	if len(paths) == 0 {
		return exitBadInput, errors.New("no images given (vggedge classify [flags] IMAGE|DIR|GLOB…)")
	}
	if *topK < 1 {
		return exitBadInput, fmt.Errorf("--topk %d: want ≥ 1", *topK)
	}
	if *threads < 1 || *threads > 256 {
		return exitBadInput, fmt.Errorf("--threads %d: want 1..256", *threads)
	}
	f, err := openModel(*model)
	if err != nil {
		return exitBadInput, err
	}
	run, err := newRunner(f, *precision)
	if err != nil {
		return exitBadInput, err
	}
	classes, err := run.classes()
	if err != nil {
		return exitBadInput, fmt.Errorf("model %s: %w", *model, err)
	}
	labels := classLabels(run.meta.Labels, classes)
	k := min(*topK, classes)
	pre, err := camera.NewPreprocessor(run.input, run.meta.Spec)
	if err != nil {
		return exitBadInput, fmt.Errorf("model %s: %w", *model, err)
	}
	w, err := run.newWorkerThreads(*threads)
	if err != nil {
		return exitBadInput, err
	}
	if w.s != nil {
		defer w.s.Close()
	}

	errorf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "vggedge classify: %s\n", termSafe(strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", " "), 8192))
	}
	items, badArgs := classifyItems(paths, labels, errorf)
	if len(items) == 0 {
		return exitBadInput, fmt.Errorf("no image files to classify in %s", termSafe(strings.Join(paths, " "), 200))
	}

	var frame camera.Frame
	probs := make([]float32, classes)
	top := make([]live.Class, 0, k)
	var withTruth, top1, top5, done, failed int
	enc := json.NewEncoder(stdout)
	for _, it := range items {
		start := time.Now()
		err := camera.ReadImageFile(it.path, &frame)
		if err == nil {
			err = pre.Into(w.pix, &frame)
			if err != nil {
				err = fmt.Errorf("%s: %w", it.path, err)
			}
		}
		var logits []float32
		if err == nil {
			logits, err = w.logits()
		}
		if err != nil {
			errorf("%v", err) // decoding errors name the file
			failed++
			continue
		}
		latency := time.Since(start)
		done++
		live.Softmax(probs, logits)
		top = live.TopK(top[:0], probs, labels, k)
		rank := -1
		if it.truth >= 0 {
			rank = rankOf(logits, it.truth)
			withTruth++
			if rank == 0 {
				top1++
			}
			if rank < 5 {
				top5++
			}
		}
		if *asJSON {
			err = enc.Encode(classifyLine(it, top, latency, labels, rank))
		} else {
			err = printClassified(stdout, it, top, latency, labels, rank)
		}
		if err != nil {
			return exitBadInput, err // stdout is gone (a closed pipe)
		}
	}
	if withTruth > 0 {
		line := fmt.Sprintf("accuracy on %d image(s) with truth: top-1 %.4f (%d/%d), top-5 %.4f (%d/%d)",
			withTruth, float64(top1)/float64(withTruth), top1, withTruth, float64(top5)/float64(withTruth), top5, withTruth)
		if *asJSON {
			fmt.Fprintln(stderr, line) // stdout stays one object per file
		} else {
			fmt.Fprintln(stdout, line)
		}
	}
	if failed > 0 || badArgs > 0 {
		return exitBadInput, fmt.Errorf("%d file(s) could not be classified and %d argument(s) named no file; %d classified", failed, badArgs, done)
	}
	return exitOK, nil
}

// classifyItems lists the files of every argument, each with its truth
// from its class folder; an argument that names no file is reported and
// counted in badArgs.
func classifyItems(args, labels []string, errorf func(string, ...any)) (items []classifyItem, badArgs int) {
	for _, a := range args {
		l, err := camera.ListImages(a)
		if err != nil {
			errorf("%v", err)
			badArgs++
			continue
		}
		truth := truthIndex(l.Classes, labels)
		unmatched := map[string]int{}
		for i, p := range l.Paths {
			t := -1
			if c := l.Labels[i]; c >= 0 {
				if t = truth[c]; t < 0 {
					unmatched[l.Classes[c]]++
				}
			}
			items = append(items, classifyItem{path: p, truth: t})
		}
		var names []string
		for _, c := range l.Classes { // sorted
			if n := unmatched[c]; n > 0 {
				names = append(names, fmt.Sprintf("%s (%d files)", c, n))
			}
		}
		if len(names) > 0 {
			errorf("%s: folder(s) %s name none of the model's labels: no truth for their files", a, strings.Join(names, ", "))
		}
	}
	return items, badArgs
}

func classifyLine(it classifyItem, top []live.Class, latency time.Duration, labels []string, rank int) classifyJSON {
	j := classifyJSON{File: it.path, LatencyMs: float64(latency.Microseconds()) / 1000}
	for _, c := range top {
		j.Top = append(j.Top, classifyClass{Index: c.Index, Label: c.Label, Score: c.Score})
	}
	if it.truth >= 0 {
		truth, correct := labels[it.truth], rank == 0
		j.Truth, j.Correct = &truth, &correct
	}
	return j
}

// printClassified writes a file's result for a terminal:
//
//	shots/cat.jpg  12.3 ms  truth tabby, correct
//	  0.8123  tabby [281]
//	  0.0912  tiger cat [282]
func printClassified(w io.Writer, it classifyItem, top []live.Class, latency time.Duration, labels []string, rank int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %.1f ms", termSafe(it.path, 1024), float64(latency.Microseconds())/1000)
	if it.truth >= 0 {
		verdict := "correct"
		if rank != 0 {
			verdict = "wrong"
		}
		fmt.Fprintf(&b, "  truth %s, %s", termSafe(labels[it.truth], 200), verdict)
	}
	b.WriteByte('\n')
	for _, c := range top {
		fmt.Fprintf(&b, "  %.4f  %s", c.Score, termSafe(c.Label, 200))
		if c.Label != strconv.Itoa(c.Index) {
			fmt.Fprintf(&b, " [%d]", c.Index)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// classes is the number of outputs of the model that runs.
func (r *runner) classes() (int, error) {
	if r.q != nil {
		shapes, err := r.q.Shapes()
		if err != nil {
			return 0, err
		}
		return int(shapes[len(shapes)-1].Elems()), nil
	}
	shapes, err := r.f.Resolve()
	if err != nil {
		return 0, err
	}
	return int(shapes[len(shapes)-1].Elems()), nil
}

// parseInterspersed parses flags given before, between or after the
// arguments (vggedge classify photo.jpg --topk 3) and returns the
// arguments; everything after "--" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	usage := fs.Usage
	fs.Usage = func() {} // a bad value gets one line; usage is for -h
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			return nil, fmt.Errorf("%v (see vggedge %s -h)", err, fs.Name())
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
