package main

import (
	"github.com/vggedge/vggedge/firmware/output"

	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vggedge/vggedge/infer"
)

// modelFlags are the flags that name a model: --arch, --input, --classes.
type modelFlags struct {
	arch    string
	archSet bool // --arch given, not its default
	model   string
	input   string
	classes int
}

// archFlag is --arch, remembering that it was given.
type archFlag struct{ f *modelFlags }

func (a archFlag) String() string {
	if a.f == nil {
		return ""
	}
	return a.f.arch
}

func (a archFlag) Set(s string) error { a.f.arch, a.f.archSet = s, true; return nil }

func (f *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.model, "model", "", "a model file, or an embedded model (digits, digits-f32), instead of --arch")
	f.arch = "vgg16"
	fs.Var(archFlag{f}, "arch", "architecture: "+strings.Join(infer.Architectures(), ", ")+", or an architecture file (JSON)")
	fs.StringVar(&f.input, "input", "", "input size CxHxW (default: the architecture's, 3x224x224 for the built-ins)")
	fs.IntVar(&f.classes, "classes", 0, "number of classes (default: the architecture's, 1000 for the built-ins)")
}

func (f *modelFlags) build() (*infer.Model, error) {
	if f.model != "" {
		if f.archSet {
			return nil, fmt.Errorf("--model %s and --arch %s: give one of them (a model file has its architecture)", f.model, f.arch)
		}
		if f.input != "" || f.classes != 0 {
			return nil, fmt.Errorf("--input and --classes apply to --arch, not to --model %s", f.model)
		}
		mf, err := openModel(f.model)
		if err != nil {
			return nil, err
		}
		return costModel(mf)
	}
	var opt infer.Options
	if f.input != "" {
		s, err := parseShape(f.input)
		if err != nil {
			return nil, fmt.Errorf("--input: %w", err)
		}
		opt.Input = s
	}
	if f.classes < 0 || f.classes > infer.MaxDim {
		return nil, fmt.Errorf("--classes %d: must be in 1..%d", f.classes, infer.MaxDim)
	}
	opt.NumClasses = f.classes
	return infer.Build(f.arch, opt)
}

// parseShape reads "3x224x224" (or "3,224,224").
func parseShape(s string) (infer.Shape, error) {
	parts := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == 'x' || r == ',' || r == '×' })
	if len(parts) != 3 {
		return infer.Shape{}, fmt.Errorf("%q: want CxHxW, e.g. 3x224x224", s)
	}
	var d [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return infer.Shape{}, fmt.Errorf("%q: %q is not a whole number", s, p)
		}
		if n <= 0 || n > infer.MaxDim {
			return infer.Shape{}, fmt.Errorf("%q: every dimension must be in 1..%d", s, infer.MaxDim)
		}
		d[i] = n
	}
	return infer.Shape{C: d[0], H: d[1], W: d[2]}, nil
}

// requireFlags returns an error naming the flags among name, value
// pairs whose value is empty ("--out is required", "--calib and --out
// are required"), or nil.
func requireFlags(pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			missing = append(missing, pairs[i])
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s is required", missing[0])
	}
	return fmt.Errorf("%s and %s are required", strings.Join(missing[:len(missing)-1], ", "), missing[len(missing)-1])
}

// parseMemBudget is parseSize for a memory budget, where a bare number
// is refused: "--mem 300" meant 300 MiB, not 300 bytes.
func parseMemBudget(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return 0, fmt.Errorf("%q has no unit: want a size such as %sMiB or %sGB", s, t, t)
	}
	return output.ParseSize(s)
}

// durationFlag is a flag.Value for a time.Duration whose error says what
// is wanted: "--latency 250" is not a duration ("want 250ms").
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
			return fmt.Errorf("%q has no unit: want a duration such as %sms or %ss", s, strings.TrimSpace(s), strings.TrimSpace(s))
		}
		return fmt.Errorf("%q: want a duration such as 250ms or 1.5s", s)
	}
	*f.d = d
	return nil
}

// durationVar defines a duration flag with durationFlag's errors.
func durationVar(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	d := new(time.Duration)
	*d = value
	fs.Var(durationFlag{d}, name, usage)
	return d
}
