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
	m.Layers = appendCfg(nil, cfg, bn)
	m.Layers = append(m.Layers,
		Layer{Name: "avgpool", Kind: AdaptiveAvgPool2d, OutH: 7, OutW: 7},
		Layer{Name: "flatten", Kind: Flatten, Functional: true},
	)
	m.Layers = appendClassifier(m.Layers, []int{4096, 4096, numClasses}, 0.5)
	if _, err := m.Resolve(); err != nil {
		return nil, fmt.Errorf("%s at input %v: %w", name, input, err)
	}
	return m, nil
}

// appendCfg appends torchvision-style features (make_layers) numbered from
// the features already present.
func appendCfg(layers []Layer, cfg []int, batchNorm bool) []Layer {
	idx := countPrefix(layers, "features.")
	add := func(l Layer) {
		l.Name = fmt.Sprintf("features.%d", idx)
		idx++
		layers = append(layers, l)
	}
	for _, v := range cfg {
		if v < 0 {
			add(Layer{Kind: MaxPool2d, KH: 2, KW: 2, Stride: 2})
			continue
		}
		add(Layer{Kind: Conv2d, Out: v, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true})
		if batchNorm {
			add(Layer{Kind: BatchNorm2d, Eps: 1e-5})
		}
		add(Layer{Kind: ReLU})
	}
	return layers
}

// appendClassifier appends Linear layers of the given widths, each but the
// last followed by ReLU and Dropout(p), named classifier.N.
func appendClassifier(layers []Layer, widths []int, p float64) []Layer {
	idx := countPrefix(layers, "classifier.")
	add := func(l Layer) {
		l.Name = fmt.Sprintf("classifier.%d", idx)
		idx++
		layers = append(layers, l)
	}
	for i, w := range widths {
		add(Layer{Kind: Linear, Out: w, Bias: true})
		if i < len(widths)-1 {
			add(Layer{Kind: ReLU})
			add(Layer{Kind: Dropout, P: p})
		}
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
