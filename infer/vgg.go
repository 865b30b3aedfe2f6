package infer

import (
	"fmt"
	"sort"
	"strings"
)

// vggCfgs are torchvision's feature configurations (torchvision/models/vgg.py,
// cfgs "A", "B", "D", "E"): a number is a 3x3 convolution with padding 1 and
// that many output channels followed by ReLU, -1 is a 2x2 max-pool.
var vggCfgs = map[string][]int{
	"vgg11": {64, -1, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1},
	"vgg13": {64, 64, -1, 128, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1},
	"vgg16": {64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512, -1},
	"vgg19": {64, 64, -1, 128, 128, -1, 256, 256, 256, 256, -1, 512, 512, 512, 512, -1, 512, 512, 512, 512, -1},
}

// DefaultInput is torchvision's ImageNet input.
var DefaultInput = Shape{3, 224, 224}

// Architectures lists the built-in architecture names: vgg11, vgg11_bn, ….
func Architectures() []string {
	var names []string
	for n := range vggCfgs {
		names = append(names, n, n+"_bn")
	}
	sort.Strings(names)
	return names
}

// VGG builds torchvision's vgg11/13/16/19 (name may end in "_bn") for the
// given input and number of classes, without weights. As in torchvision, an
// AdaptiveAvgPool2d(7, 7) sits between the features and the classifier, so
// the classifier's input stays 512·7·7 at every input size.
func VGG(name string, input Shape, numClasses int) (*Model, error) {
	base, bn := strings.CutSuffix(name, "_bn")
	cfg, ok := vggCfgs[base]
	if !ok {
		return nil, fmt.Errorf("unknown architecture %q (known: %s)", name, strings.Join(Architectures(), ", "))
	}
	if numClasses <= 0 || numClasses > MaxDim {
		return nil, fmt.Errorf("num_classes %d: must be in 1..%d", numClasses, MaxDim)
	}
	m := &Model{Name: name, Class: "VGG", Input: input}
	m.Layers = appendSection(nil, "features", cfgLayers(cfg, bn)...)
	m.Layers = append(m.Layers,
		Layer{Name: "avgpool", Kind: AdaptiveAvgPool2d, OutH: 7, OutW: 7},
		Layer{Name: "flatten", Kind: Flatten, Functional: true},
	)
	for i, w := range []int{4096, 4096, numClasses} {
		m.Layers = appendSection(m.Layers, "classifier", classifierBlock(w, 0.5, i == 2)...)
	}
	if _, err := m.Resolve(); err != nil {
		return nil, fmt.Errorf("%s at input %v: %w", name, input, err)
	}
	return m, nil
}

// cfgLayers returns torchvision's make_layers for cfg entries, unnamed.
func cfgLayers(cfg []int, batchNorm bool) []Layer {
	var ls []Layer
	for _, v := range cfg {
		if v < 0 {
			ls = append(ls, Layer{Kind: MaxPool2d, KH: 2, KW: 2, Stride: 2})
			continue
		}
		ls = append(ls, Layer{Kind: Conv2d, Out: v, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true})
		if batchNorm {
			ls = append(ls, Layer{Kind: BatchNorm2d, Eps: 1e-5})
		}
		ls = append(ls, Layer{Kind: ReLU})
	}
	return ls
}

// classifierBlock is Linear(width), followed by ReLU and Dropout(p) unless
// it is the final layer, unnamed.
func classifierBlock(width int, p float64, final bool) []Layer {
	ls := []Layer{{Kind: Linear, Out: width, Bias: true}}
	if !final {
		ls = append(ls, Layer{Kind: ReLU}, Layer{Kind: Dropout, P: p})
	}
	return ls
}

// appendSection appends layers to a torchvision Sequential, naming them
// section.N in order.
func appendSection(layers []Layer, section string, add ...Layer) []Layer {
	n := countPrefix(layers, section+".")
	for _, l := range add {
		l.Name = fmt.Sprintf("%s.%d", section, n)
		n++
		layers = append(layers, l)
	}
	return layers
}

func countPrefix(layers []Layer, prefix string) int {
	n := 0
	for _, l := range layers {
		if strings.HasPrefix(l.Name, prefix) {
			n++
		}
	}
	return n
}
