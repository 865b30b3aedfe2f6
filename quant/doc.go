// Package quant turns float VGG weights into calibrated int8 models:
// importers, calibration, per-channel quantization, 1x1 channel reduction.
package quant
