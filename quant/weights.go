package quant

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/quant/torchio"
)

// shapeString prints a shape the way PyTorch users read it: [64, 3, 3, 3].
func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// LoadWeights assigns torchvision state_dict tensors, as torchio.Load reads
// them from a file (features.N.weight/bias, classifier.N.weight/bias, BN
// weight/bias/running_mean/running_var; num_batches_tracked ignored), to
// the layers of m with the same names, checking every shape against the
// layer. Unused tensors and layers left
// without weights are errors naming them. On error m is left unchanged.
//
// The layers share the tensors' Data slices (infer never writes parameters
// in place). Values must be finite, and running_var not negative: a NaN in
// a weight file is a broken file, better reported here by name than as
// garbage logits later.
func LoadWeights(m *infer.Model, ts map[string]*torchio.Tensor) error {
	if m == nil {
		return errors.New("nil model")
	}
	// Resolve on a copy fills in every layer's In (needed for the expected
	// shapes) without touching m before everything has been checked.
	r := m.Clone()
	if _, err := r.Resolve(); err != nil {
		return fmt.Errorf("model %s: %w", m.Name, err)
	}
	used := make(map[string]bool, len(ts))
	// Three lists, each shown (up to a point) in the error: a wrong
	// shape, a missing tensor and an unused one are different mistakes and
	// a long list of one must not hide the others.
	var bad, missing []string
	type assignment struct {
		layer int
		field *[]float32
		data  []float32
	}
	var assign []assignment
	take := func(i int, name string, want []int, field *[]float32, finite, nonNegative bool) {
		t, ok := ts[name]
		if !ok || t == nil {
			missing = append(missing, fmt.Sprintf("%s: missing (layer %s needs shape %s)", name, r.Layers[i].Name, shapeString(want)))
			return
		}
		used[name] = true
		if !equalShape(t.Shape, want) {
			bad = append(bad, fmt.Sprintf("%s: shape %s in the file, but layer %s (%s) needs %s",
				name, shapeString(t.Shape), r.Layers[i].Name, describeLayer(&r.Layers[i]), shapeString(want)))
			return
		}
		if int64(len(t.Data)) != numel(want) {
			bad = append(bad, fmt.Sprintf("%s: %d values for shape %s", name, len(t.Data), shapeString(want)))
			return
		}
		for j, v := range t.Data {
			if finite && (math.IsNaN(float64(v)) || math.IsInf(float64(v), 0)) {
				bad = append(bad, fmt.Sprintf("%s: value %d is %g", name, j, v))
				return
			}
			if nonNegative && v < 0 {
				bad = append(bad, fmt.Sprintf("%s: value %d is %g, a variance must not be negative", name, j, v))
				return
			}
		}
		assign = append(assign, assignment{i, field, t.Data})
	}
	out := m.Clone() // fresh layer slice: m changes only if all is well
	for i := range r.Layers {
		l := &r.Layers[i]
		o := &out.Layers[i]
		switch l.Kind {
		case infer.Conv2d:
			take(i, l.Name+".weight", []int{l.Out, l.In, l.KH, l.KW}, &o.Weight, true, false)
			if l.Bias {
				take(i, l.Name+".bias", []int{l.Out}, &o.BiasData, true, false)
			}
		case infer.Linear:
			take(i, l.Name+".weight", []int{l.Out, l.In}, &o.Weight, true, false)
			if l.Bias {
				take(i, l.Name+".bias", []int{l.Out}, &o.BiasData, true, false)
			}
		case infer.BatchNorm2d:
			c := []int{l.In}
			take(i, l.Name+".weight", c, &o.Gamma, true, false)
			take(i, l.Name+".bias", c, &o.Beta, true, false)
			take(i, l.Name+".running_mean", c, &o.Mean, true, false)
			take(i, l.Name+".running_var", c, &o.Var, true, true)
			// A counter of training steps: nothing to run with.
			if _, ok := ts[l.Name+".num_batches_tracked"]; ok {
				used[l.Name+".num_batches_tracked"] = true
			}
		}
	}
	var unused []string
	for name := range ts {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	if len(bad)+len(missing)+len(unused) > 0 {
		hint := weightsHint(r, ts, unused)
		var lines []string
		list := func(items []string, what string) {
			const show = 10
			for i, it := range items {
				if i == show {
					lines = append(lines, fmt.Sprintf("… and %d more %s", len(items)-show, what))
					break
				}
				lines = append(lines, it)
			}
		}
		list(bad, "mismatches")
		list(missing, "missing tensors")
		for i, name := range unused {
			unused[i] = fmt.Sprintf("%s: not used by any layer of %s", name, m.Name)
		}
		list(unused, "unused tensors")
		// One line (the CLI prints errors on one): the items are
		// separated by "; ".
		return fmt.Errorf("loading weights into %s%s: %s", m.Name, hint, strings.Join(lines, "; "))
	}
	for _, a := range assign {
		*a.field = a.data
	}
	m.Layers = out.Layers
	// In may have been 0 in m; the resolved value is what was checked.
	for i := range m.Layers {
		m.Layers[i].In = r.Layers[i].In
	}
	return nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func numel(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= int64(d)
	}
	return n
}

func allPrefixed(names []string, prefix string) bool {
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			return false
		}
	}
	return true
}

func describeLayer(l *infer.Layer) string {
	switch l.Kind {
	case infer.Conv2d:
		return fmt.Sprintf("conv2d %d→%d, %dx%d", l.In, l.Out, l.KH, l.KW)
	case infer.Linear:
		return fmt.Sprintf("linear %d→%d", l.In, l.Out)
	case infer.BatchNorm2d:
		return fmt.Sprintf("batchnorm2d %d", l.In)
	}
	return string(l.Kind)
}

// weightsHint guesses, from what does not fit, the flag or call that
// would have loaded the file: a DataParallel checkpoint, the _bn variant
// of an architecture (BatchNorm tensors in the file, none in the model, or
// the other way round), or another class count (the last Linear's outputs).
func weightsHint(m *infer.Model, ts map[string]*torchio.Tensor, unused []string) string {
	if len(unused) > 0 && allPrefixed(unused, "module.") {
		return ` (the names start with "module.": the checkpoint was saved from nn.DataParallel; save model.module.state_dict())`
	}
	var hints []string
	fileBN := false
	for name := range ts {
		if strings.HasSuffix(name, ".running_mean") {
			fileBN = true
			break
		}
	}
	modelBN := false
	for i := range m.Layers {
		modelBN = modelBN || m.Layers[i].Kind == infer.BatchNorm2d
	}
	switch {
	case fileBN && !modelBN:
		hints = append(hints, "the file has BatchNorm tensors (running_mean): --arch "+m.Name+"_bn?")
	case modelBN && !fileBN && strings.HasSuffix(m.Name, "_bn"):
		hints = append(hints, "the file has no BatchNorm tensors: --arch "+strings.TrimSuffix(m.Name, "_bn")+"?")
	}
	// The last Linear decides the classes.
	for i := len(m.Layers) - 1; i >= 0; i-- {
		l := &m.Layers[i]
		if l.Kind != infer.Linear {
			continue
		}
		if t := ts[l.Name+".weight"]; t != nil && len(t.Shape) == 2 && t.Shape[0] != l.Out && t.Shape[1] == l.In {
			hints = append(hints, fmt.Sprintf("%s has %d outputs in the file: --classes %d?", l.Name, t.Shape[0], t.Shape[0]))
		}
		break
	}
	if len(hints) == 0 {
		return ""
	}
	return " (" + strings.Join(hints, "; ") + ")"
}
