// Package infer holds vggedge's model graph and everything computed from it
// without a camera or a board: shape inference, the per-layer cost formulas,
// the activation-memory plan, the PyTorch-style printout, the JSON
// architecture file, and the float32 reference forward pass that every
// faster kernel is tested against.
//
// # Costs
//
// For a convolution the project's two formulas are
//
//	params = kH·kW·Cin·Cout (+ Cout bias)
//	MACs   = Cin·Cout·kH·kW·Hout·Wout
//
// and a Linear layer is the 1x1 case on a 1x1 map (params = in·out + out,
// MACs = in·out). MACs are reported as MACs: one multiply and one add.
// FLOPs ≈ 2·MACs. As in torchvision's published figures, only convolutions
// and Linear layers have MACs; ReLU, pooling, bias adds and BatchNorm (folded
// into the preceding convolution at inference) are counted as zero MACs and
// say so. BatchNorm2d has 2·C trainable parameters (weight and bias; the
// running statistics are buffers), as torchvision counts them.
//
// # Activation memory
//
// A Session plans two ping-pong buffers once: tensor i is written to buffer
// i mod 2; ReLU, Dropout, Flatten and BatchNorm2d (folded into its
// convolution) work in place. The peak is the size of
// both buffers. With conv+ReLU+max-pool fused, the convolution's full-size
// output is never materialised, which lowers the peak.
package infer
