package main

import (
	"encoding/json"
	"io"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/kernels"
	"github.com/vggedge/vggedge/infer/labels"
	"github.com/vggedge/vggedge/infer/vgm"
)

// The --json forms of info and summary: the same facts as the text, one
// JSON object, fields named as check --json names them.

type costJSON struct {
	Params              int64 `json:"params"`
	Weights             int64 `json:"weights"`
	MACs                int64 `json:"macs"`
	FLOPs               int64 `json:"flops"`
	WeightBytes         int64 `json:"weight_bytes"`
	PeakActivationBytes int64 `json:"peak_activation_bytes"`
}

func costOf(c *infer.Cost) costJSON {
	return costJSON{Params: c.Params, Weights: c.Weights, MACs: c.MACs, FLOPs: 2 * c.MACs,
		WeightBytes: c.WeightBytes, PeakActivationBytes: c.PeakActivationBytes}
}

func shapeJSON(s infer.Shape) [3]int { return [3]int{s.C, s.H, s.W} }

type specJSON struct {
	ChannelOrder  string    `json:"channel_order"`
	Mean          []float32 `json:"mean"`
	Std           []float32 `json:"std"`
	Resize        string    `json:"resize"`
	ResizeShorter int       `json:"resize_shorter,omitempty"`
	ResizeFilter  string    `json:"resize_filter,omitempty"`
}

type int8LayerJSON struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	InScale  float32 `json:"in_scale"`
	InZero   int32   `json:"in_zero"`
	OutScale float32 `json:"out_scale,omitempty"`
	OutZero  int32   `json:"out_zero"`
	Logits   bool    `json:"logits"`
	ReLU     bool    `json:"relu"`
}

type infoJSON struct {
	Model      string              `json:"model"`
	Source     string              `json:"source"`
	Contains   []string            `json:"contains"`
	Input      [3]int              `json:"input"`
	Spec       specJSON            `json:"spec"`
	Labels     []string            `json:"labels"`
	LabelsOf   string              `json:"labels_of,omitempty"` // "imagenet-1k" when they are ImageNet-1k's
	Provenance provJSON            `json:"provenance"`
	Cost       map[string]costJSON `json:"cost"`
	Kernels    []kernelJSON        `json:"kernels"`
	FloatGEMM  string              `json:"float_gemm"`
	Int8Layers []int8LayerJSON     `json:"int8_layers,omitempty"`
}

type provJSON struct {
	SourceFile   string  `json:"source_file,omitempty"`
	SourceSHA256 string  `json:"source_sha256,omitempty"`
	Calibration  string  `json:"calibration,omitempty"`
	Percentile   float64 `json:"percentile,omitempty"`
	Samples      int     `json:"samples,omitempty"`
	Version      string  `json:"version,omitempty"`
	Created      string  `json:"created,omitempty"`
	Notes        string  `json:"notes,omitempty"`
}

type kernelJSON struct {
	Kind   string `json:"kind"`
	Kernel string `json:"kernel"`
}

func writeInfoJSON(w io.Writer, f *vgm.File, source string, arch *infer.Model, contains []string) error {
	meta := f.Meta()
	s := meta.Spec
	out := infoJSON{Model: f.Name(), Source: source, Contains: contains, Input: shapeJSON(arch.Input),
		Spec:   specJSON{s.ChannelOrder, s.Mean, s.Std, s.Resize, s.ResizeShorter, s.ResizeFilter},
		Labels: meta.Labels, Provenance: provJSON(meta.Prov), Cost: map[string]costJSON{},
		FloatGEMM: kernels.GemmFloatKernel()}
	if labels.IsImageNet(meta.Labels) {
		out.LabelsOf = "imagenet-1k"
	}
	for _, prec := range []infer.Precision{infer.Int8, infer.FP32} {
		c, err := arch.Cost(prec)
		if err != nil {
			return err
		}
		out.Cost[string(prec)] = costOf(c)
	}
	for _, k := range kernels.DescribeKinds() {
		out.Kernels = append(out.Kernels, kernelJSON{k.Kind, k.Kernel})
	}
	if f.Int8 != nil {
		for _, l := range f.Int8.Layers {
			lj := int8LayerJSON{Name: l.Name, Kind: string(l.Kind), InScale: l.InScale, InZero: l.InZero,
				OutZero: l.OutZero, Logits: l.Logits, ReLU: l.ReLU}
			if !l.Logits {
				lj.OutScale = l.OutScale
			}
			out.Int8Layers = append(out.Int8Layers, lj)
		}
	}
	return encodeJSON(w, out)
}

type summaryLayerJSON struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	OutShape    [3]int `json:"out_shape"`
	Params      int64  `json:"params"`
	Weights     int64  `json:"weights"`
	MACs        int64  `json:"macs"`
	OutputBytes int64  `json:"output_bytes"`
}

func writeSummaryJSON(w io.Writer, m *infer.Model, c *infer.Cost) error {
	out := struct {
		Arch      string `json:"arch"`
		Input     [3]int `json:"input"`
		Precision string `json:"precision"`
		costJSON
		Layers []summaryLayerJSON `json:"layers"`
	}{Arch: m.Name, Input: shapeJSON(m.Input), Precision: string(c.Precision), costJSON: costOf(c)}
	for _, l := range c.Layers {
		out.Layers = append(out.Layers, summaryLayerJSON{Name: l.Name, Kind: string(l.Kind), OutShape: shapeJSON(l.Out),
			Params: l.Params, Weights: l.Weights, MACs: l.MACs, OutputBytes: l.OutputBytes})
	}
	return encodeJSON(w, out)
}

func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
