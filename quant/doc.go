// Package quant turns float VGG weights into calibrated int8 models:
// loading torchvision state_dicts onto VGG layers (LoadWeights),
// calibration, per-channel quantization, 1x1 channel reduction.
//
// Reading weight files — PyTorch .pth (zip and legacy) and safetensors —
// lives in quant/torchio, which quant imports and which imports nothing of
// quant: that package owns the formats, this one the mapping of names and
// shapes onto a VGG and everything after.
package quant
