package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/kernels"
	"github.com/vggedge/vggedge/infer/labels"
)

func runInfo(args []string, stdout io.Writer) (int, error) {
	fs := newFlags("info", stdout)
	model := fs.String("model", "", "model file or embedded model name (digits, digits-f32)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	if *model == "" {
		return exitBadInput, errors.New("--model is required")
	}
	f, err := openModel(*model)
	if err != nil {
		return exitBadInput, err
	}
	var b strings.Builder
	meta := f.Meta()
	fmt.Fprintf(&b, "model      %s (%s)\n", f.Name(), *model)
	var kinds []string
	if f.Float != nil {
		kinds = append(kinds, "float32")
	}
	if f.Int8 != nil {
		kinds = append(kinds, "int8")
	}
	fmt.Fprintf(&b, "contains   %s\n", strings.Join(kinds, " + "))
	arch, err := costModel(f)
	if err != nil {
		return exitBadInput, err
	}
	if *asJSON {
		if err := writeInfoJSON(stdout, f, *model, arch, kinds); err != nil {
			return exitBadInput, err
		}
		return exitOK, nil
	}
	s := meta.Spec
	fmt.Fprintf(&b, "input      %v %s, mean %v, std %v, resize %s", arch.Input, s.ChannelOrder, s.Mean, s.Std, s.Resize)
	if s.Resize == "resize-crop" {
		fmt.Fprintf(&b, " (shorter side %d, centre crop)", s.ResizeShorter)
	}
	if s.ResizeFilter != "" {
		fmt.Fprintf(&b, ", filter %s", s.ResizeFilter)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "labels     %d%s: %s\n", len(meta.Labels), labelsSource(meta.Labels), abbreviate(meta.Labels, 10))
	p := meta.Prov
	for _, kv := range [][2]string{
		{"source", p.SourceFile}, {"sha256", p.SourceSHA256}, {"calibration", calibText(p)},
		{"made by", strings.TrimSpace("vggedge " + p.Version)}, {"created", p.Created}, {"notes", p.Notes},
	} {
		if kv[1] != "" && kv[1] != "vggedge" {
			fmt.Fprintf(&b, "%-10s %s\n", kv[0], kv[1])
		}
	}
	for _, prec := range []infer.Precision{infer.Int8, infer.FP32} {
		c, err := arch.Cost(prec)
		if err != nil {
			return exitBadInput, err
		}
		fmt.Fprintf(&b, "%-10s params %s, MACs %s, weights %s, peak activations %s\n", prec, infer.Group(c.Params),
			infer.Group(c.MACs), infer.Bytes(c.WeightBytes), infer.Bytes(c.PeakActivationBytes))
	}
	host := "not a known board"
	if d, err := boards.Detect(); err == nil {
		if d.Board != nil {
			host = d.Board.ID
		}
		host += ", CPU features: " + features(d.Features)
	}
	fmt.Fprintf(&b, "this host %s; int8 kernels: %s (GODEBUG=cpu.avx2=off or cpu.asimddp=off force the fallbacks)\n", host, kernels.Describe())
	for _, k := range kernels.DescribeKinds() {
		fmt.Fprintf(&b, "  %-38s %s\n", k.Kind, k.Kernel)
	}
	fmt.Fprintf(&b, "  %-38s %s\n", "float GEMM (quantize, reduce, train)", kernels.GemmFloatKernel())
	if f.Int8 != nil {
		b.WriteString("\nint8 layers\n")
		tab := table{leftCols: 2}
		tab.add("layer", "kind", "in scale", "in zero", "out scale", "out zero", "relu")
		for _, l := range f.Int8.Layers {
			out, zero, relu := fmt.Sprintf("%.6g", l.OutScale), fmt.Sprint(l.OutZero), ""
			if l.Logits {
				out, zero = "logits", "-"
			}
			if l.ReLU {
				relu = "fused"
			}
			tab.add(l.Name, string(l.Kind), fmt.Sprintf("%.6g", l.InScale), fmt.Sprint(l.InZero), out, zero, relu)
		}
		if err := tab.write(&b); err != nil {
			return exitBadInput, err
		}
	}
	if f.Float != nil {
		b.WriteString("\n")
		if err := f.Float.PrintTorch(&b); err != nil {
			return exitBadInput, err
		}
	}
	_, err = io.WriteString(stdout, b.String())
	return exitOK, err
}

// labelsSource says where a model's labels come from, when vggedge knows
// them: ImageNet-1k's (so WordNet ids and synonyms find them).
func labelsSource(ls []string) string {
	if labels.IsImageNet(ls) {
		return ", ImageNet-1k (torchvision's names; WordNet ids and synonyms match them)"
	}
	return ""
}

func calibText(p infer.Provenance) string {
	if p.Calibration == "" {
		return ""
	}
	s := fmt.Sprintf("%s on %d images", p.Calibration, p.Samples)
	if p.Calibration == "percentile" {
		s = fmt.Sprintf("%s %g on %d images", p.Calibration, p.Percentile, p.Samples)
	}
	return s
}

func abbreviate(ss []string, n int) string {
	if len(ss) <= n {
		return strings.Join(ss, ", ")
	}
	return strings.Join(ss[:n], ", ") + fmt.Sprintf(", … (%d more)", len(ss)-n)
}
