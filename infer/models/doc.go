// Package models holds the models embedded in the vggedge binary, so
// `--model digits` works on any board without a file to copy:
//
//   - digits-f32: a small VGG-style network (3x3 convolutions, max-pools, a
//     1x1 reduction before the classifier) trained on MNIST by `vggedge
//     train` (`make demo-model` retrains it with the same seed);
//   - digits: the same network quantized to int8 by `vggedge quantize`.
//
// The files live in data/ with the architecture file they were trained
// from (data/digits.json).
//
// It imports infer/vgm (to decode the embedded files) and nothing from
// quant, camera or firmware: the binary embeds models, it does not make them.
package models
