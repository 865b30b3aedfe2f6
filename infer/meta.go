package infer

import (
	"fmt"
	"math"
)

// Meta is what a model file says about a model besides its layers: how to
// turn camera pixels into its input, what its outputs mean, and where it
// came from.
type Meta struct {
	Spec   InputSpec
	Labels []string
	Prov   Provenance
}

// InputSpec says how camera pixels become the model's input. Pixels are u8;
// the float model sees (pixel/255 − Mean[c]) / Std[c]; the int8 model takes
// the u8 pixels themselves (mean/std are folded into its first layer).
type InputSpec struct {
	// ChannelOrder is the order of the input channels: "RGB", "BGR" or
	// "GRAY" (one channel).
	ChannelOrder string
	// Mean and Std are per channel, on pixels scaled to [0, 1]
	// (torchvision's ImageNet: 0.485, 0.456, 0.406 / 0.229, 0.224, 0.225).
	Mean, Std []float32
	// Resize is how a frame of another size becomes the input:
	// "resize-crop" (shorter side to ResizeShorter, then a centre crop,
	// as torchvision's Resize(256) + CenterCrop(224)) or "stretch".
	Resize        string
	ResizeShorter int
	// ResizeFilter is how pixels are resampled: "" (vggedge's default:
	// area averaging along an axis shrunk 2× or more, else bilinear) or
	// ResizeBilinearAntialias.
	ResizeFilter string
}

// ResizeBilinearAntialias is PIL's bilinear resize, the one torchvision's
// Resize applies to PIL images and so the one most models were trained
// with: a triangle filter widened by the shrink factor.
const ResizeBilinearAntialias = "bilinear-antialias"

// ImageNetSpec is torchvision's ImageNet preprocessing.
func ImageNetSpec() InputSpec {
	return InputSpec{ChannelOrder: "RGB", Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225},
		Resize: "resize-crop", ResizeShorter: 256}
}

// Validate checks the spec against an input shape.
func (s *InputSpec) Validate(in Shape) error {
	switch s.ChannelOrder {
	case "RGB", "BGR":
		if in.C != 3 {
			return fmt.Errorf("channel_order %s needs 3 input channels, the model has %d", s.ChannelOrder, in.C)
		}
	case "GRAY":
		if in.C != 1 {
			return fmt.Errorf("channel_order GRAY needs 1 input channel, the model has %d", in.C)
		}
	default:
		return fmt.Errorf("channel_order %q: want RGB, BGR or GRAY", s.ChannelOrder)
	}
	if len(s.Mean) != in.C || len(s.Std) != in.C {
		return fmt.Errorf("mean/std have %d/%d values, want %d (one per channel)", len(s.Mean), len(s.Std), in.C)
	}
	for c := range s.Std {
		if !finite(s.Mean[c]) || !finite(s.Std[c]) || s.Std[c] <= 0 {
			return fmt.Errorf("channel %d: mean %g, std %g: want finite values and std > 0", c, s.Mean[c], s.Std[c])
		}
	}
	switch s.Resize {
	case "stretch":
	case "resize-crop":
		if s.ResizeShorter < min(in.H, in.W) || s.ResizeShorter > MaxDim {
			return fmt.Errorf("resize_shorter %d: want at least the input's shorter side %d", s.ResizeShorter, min(in.H, in.W))
		}
	default:
		return fmt.Errorf("resize %q: want resize-crop or stretch", s.Resize)
	}
	if s.ResizeFilter != "" && s.ResizeFilter != ResizeBilinearAntialias {
		return fmt.Errorf("resize_filter %q: want %s or none (vggedge's area/bilinear)", s.ResizeFilter, ResizeBilinearAntialias)
	}
	return nil
}

// Normalize writes the float model's input for u8 CHW pixels.
func (s *InputSpec) Normalize(dst []float32, pixels []byte, in Shape) {
	plane := int(in.H * in.W)
	for c := 0; c < in.C; c++ {
		m, sd := s.Mean[c], s.Std[c]
		for i, p := range pixels[c*plane : (c+1)*plane] {
			dst[c*plane+i] = (float32(p)/255 - m) / sd
		}
	}
}

// Provenance records where a model file came from.
type Provenance struct {
	SourceFile   string // the float weights it was made from
	SourceSHA256 string // hex SHA-256 of that file
	Calibration  string // "minmax", "percentile", "entropy"; empty for float models
	Percentile   float64
	Samples      int // calibration images
	Version      string
	Created      string // RFC 3339
	Notes        string
}

func finite(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }
