package infer

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Module is the PyTorch repr of one layer: "Conv2d(3, 64, kernel_size=(3,
// 3), stride=(1, 1), padding=(1, 1))", as torch.nn prints it.
func (l *Layer) Module() string {
	switch l.Kind {
	case Conv2d:
		s := fmt.Sprintf("Conv2d(%d, %d, kernel_size=(%d, %d), stride=(%d, %d)", l.In, l.Out, l.KH, l.KW, l.Stride, l.Stride)
		if l.Pad != 0 {
			s += fmt.Sprintf(", padding=(%d, %d)", l.Pad, l.Pad)
		}
		if !l.Bias {
			s += ", bias=False"
		}
		return s + ")"
	case BatchNorm2d:
		return fmt.Sprintf("BatchNorm2d(%d, eps=%s, momentum=0.1, affine=True, track_running_stats=True)", l.In, pyFloat(l.Eps))
	case ReLU:
		return "ReLU(inplace=True)"
	case MaxPool2d:
		return fmt.Sprintf("MaxPool2d(kernel_size=%d, stride=%d, padding=%d, dilation=1, ceil_mode=False)", l.KH, l.Stride, l.Pad)
	case AdaptiveAvgPool2d:
		return fmt.Sprintf("AdaptiveAvgPool2d(output_size=(%d, %d))", l.OutH, l.OutW)
	case Flatten:
		return "Flatten(start_dim=1, end_dim=-1)"
	case Linear:
		return fmt.Sprintf("Linear(in_features=%d, out_features=%d, bias=%s)", l.In, l.Out, pyBool(l.Bias))
	case Dropout:
		return fmt.Sprintf("Dropout(p=%s, inplace=False)", pyFloat(l.P))
	case SqueezeExcite:
		// torchvision.ops.SqueezeExcitation's arguments.
		return fmt.Sprintf("SqueezeExcitation(input_channels=%d, squeeze_channels=%d)", l.In, l.Out)
	}
	return string(l.Kind)
}

// TypeName is the torch.nn class name of the layer.
func (l *Layer) TypeName() string {
	if i := strings.IndexByte(l.Module(), '('); i > 0 {
		return l.Module()[:i]
	}
	return string(l.Kind)
}

// pyFloat formats like Python's repr of a float (1e-05, 0.5, 0.001).
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if strings.Contains(s, "e") {
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		digits := strings.TrimLeft(exp[1:], "0")
		if len(digits) < 2 {
			digits = strings.Repeat("0", 2-len(digits)) + digits
		}
		return mant + "e" + string(sign) + digits
	}
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// section splits a module path: "features.3" → ("features", "3").
func section(name string) (string, string) {
	sec, idx, ok := strings.Cut(name, ".")
	if !ok {
		return "", name
	}
	return sec, idx
}

// PrintTorch writes the model the way PyTorch's print(model) does. The
// model must be resolved (Build and VGG return resolved models).
func (m *Model) PrintTorch(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s(\n", m.Class)
	open := ""
	for i := range m.Layers {
		l := &m.Layers[i]
		if l.Functional {
			continue
		}
		sec, idx := section(l.Name)
		if sec != open {
			if open != "" {
				b.WriteString("  )\n")
			}
			if sec != "" {
				fmt.Fprintf(&b, "  (%s): Sequential(\n", sec)
			}
			open = sec
		}
		mark := ""
		if l.Role != "" {
			mark = "  # inserted by vggedge reduce: " + string(l.Role)
		}
		if sec == "" {
			fmt.Fprintf(&b, "  (%s): %s%s\n", idx, l.Module(), mark)
		} else {
			fmt.Fprintf(&b, "    (%s): %s%s\n", idx, l.Module(), mark)
		}
	}
	if open != "" {
		b.WriteString("  )\n")
	}
	b.WriteString(")\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Group formats n with thousands separators: 138357544 → "138,357,544".
func Group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// PrintTable writes a torchinfo-style table: every layer with its output
// shape (batch 1), parameters and MACs, then the totals.
func (m *Model) PrintTable(w io.Writer, c *Cost) error {
	const rule = "===================================================================================================="
	var b strings.Builder
	b.WriteString(rule + "\n")
	fmt.Fprintf(&b, "%-40s %-22s %15s %20s\n", "Layer (type)", "Output Shape", "Param #", "MACs")
	b.WriteString(rule + "\n")
	flat := false // after Flatten or Linear, tensors are [1, n] as in PyTorch
	inserted := 0
	for i := range c.Layers {
		lc := &c.Layers[i]
		l := &m.Layers[i]
		name := fmt.Sprintf("%s (%s)", l.Name, l.TypeName())
		if l.Role != "" {
			name += " *"
			inserted++
		}
		switch l.Kind {
		case Linear, Flatten:
			flat = true
		case Conv2d, MaxPool2d, AdaptiveAvgPool2d:
			flat = false
		}
		out := fmt.Sprintf("[1, %d, %d, %d]", lc.Out.C, lc.Out.H, lc.Out.W)
		if flat {
			out = fmt.Sprintf("[1, %d]", lc.Out.C)
		}
		params, macs := "--", "--"
		if lc.Params > 0 {
			params = Group(lc.Params)
		}
		if lc.MACs > 0 {
			macs = Group(lc.MACs)
		}
		fmt.Fprintf(&b, "%-40s %-22s %15s %20s\n", name, out, params, macs)
	}
	b.WriteString(rule + "\n")
	if inserted > 0 {
		fmt.Fprintf(&b, "* %d layers inserted by vggedge reduce (1x1 channel reductions and the low-rank convolutions they pair with)\n", inserted)
	}
	fmt.Fprintf(&b, "Total params: %s (weights kH·kW·Cin·Cout without bias: %s)\n", Group(c.Params), Group(c.Weights))
	fmt.Fprintf(&b, "Total MACs: %s (%.3f G; FLOPs ≈ 2·MACs = %.3f G; conv and Linear only)\n", Group(c.MACs), float64(c.MACs)/1e9, 2*float64(c.MACs)/1e9)
	fmt.Fprintf(&b, "Input size: %v; weights %s; peak activations %s (two ping-pong buffers, %s)\n",
		m.Input, Bytes(c.WeightBytes), Bytes(c.PeakActivationBytes), c.Precision)
	b.WriteString(rule + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Bytes formats a byte count for people: "6,422,528 B (6.1 MiB)".
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%s B (%.2f GiB)", Group(n), float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%s B (%.1f MiB)", Group(n), float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%s B (%.1f KiB)", Group(n), float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
