// Package infer holds vggedge's model graph and everything computed from it
// without a camera or a board: shape inference, the per-layer cost formulas,
// the activation-memory plan, the PyTorch-style printout, the JSON
// architecture file, and the float32 reference forward pass that every
// faster kernel is tested against.
//
// It holds the model types (Model, Layer, QModel, QLayer, Meta, …) but not
// the model file: the .vgm format, its decoder, validation and encoder are
// package infer/vgm, which imports infer. Every package imports infer, so
// infer must not import msgpack (nor vgm). Class labels beyond the
// strings a model holds — ImageNet-1k's names, WordNet ids and synonyms,
// label files, matching a name to a label — are infer/labels, which
// imports nothing of vggedge.
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
//	micro-kernel                         inner loop   VGG16 conv5 layer   whole VGG16       ANCHORS target
//	SDOT 8x8 (-cpu max: A76, A78AE)      ~14.6        11.7 MACs/insn      12.0 MACs/insn    ≥ 8
//	Winograd F(2,3) SMLAL 8x8 (A53…A72)  ~8.1         6.29                6.8               ≥ 4
//	SMULL/SMLAL/SADALP 4x8 (A53…A72)     ~4.0         3.08                (non-3x3 layers)
//	generic Go (purego)                  -            0.18                -
//
// Whole-inference counts include packing, requantization (NEON), pooling
// (NEON) and the Linear layers: 1,288,338,339 instructions with dotprod,
// ~2,270 M without (the non-dotprod path runs every 3x3 stride-1 layer as
// Winograd F(2,3), weights transformed once at plan time; the rest on
// SMULL/SMLAL). Before the Winograd path, the NEON epilogue and the
// im2row-free stride-1 packing they were 2,408 M (6.42) and 5,170 M
// (2.99). Against the peaks in ANCHORS.md (MACs per cycle: A76 32, A72 8,
// A53 4) and at one instruction per cycle these would be roughly 38% (A76),
// and for the direct-conv equivalent of Winograd 85% (A72) — upper bounds,
// since instructions are not cycles and Winograd does fewer real multiplies
// than the direct MACs counted. F(4,3) is not done.
