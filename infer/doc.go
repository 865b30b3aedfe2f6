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

// # ARM kernels, counted
//
// No ARM board is at hand, so the arm64 build's work is counted under qemu
// with ../shared/tools/insncount (executed instructions, not cycles): VGG16
// at 224, one thread, one inference isolated by subtracting a 1-run from a
// 2-run `vggedge bench --threads 1 --warmup 0`.
//
//	micro-kernel                       inner loop   VGG16 conv5 layer   whole VGG16      ANCHORS target
//	SDOT 8x8 (-cpu max: A76, A78AE)    ~12.3        7.8 MACs/insn       6.42 MACs/insn   ≥ 8
//	SMULL/SMLAL/SADALP 4x8 (A53…A72)   ~4.0         3.08                2.99             ≥ 4
//	generic Go (purego)                -            0.18                -
//
// Whole-inference counts include im2row, packing, requantization, pooling
// and the Linear layers (2,408,449,875 and 5,170,049,443 instructions).
// Against the peaks in ANCHORS.md (MACs per cycle: A76 32, A72 8, A53 4)
// and at one instruction per cycle these would be roughly 20%, 37% and 75%
// of peak — an upper bound, since instructions are not cycles. Winograd
// F(2,3)/F(4,3) is what the non-dotprod target needs.
