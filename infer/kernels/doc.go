// Package kernels holds vggedge's int8 compute kernels: convolution,
// Linear, max-pool, adaptive average pool and ReLU on int8 activations,
// with int32 accumulation and TFLite/gemmlowp requantization.
//
// The generic Go kernels in this package are the reference: every SIMD
// kernel (NEON SDOT and SMULL, NEON Winograd, AVX2 and its Winograd,
// AVX-VNNI, AVX-512 VNNI) must
// produce exactly the same bits. The arithmetic is
// therefore defined here once, precisely:
//
// # Convolution and Linear
//
// For output channel o and output pixel (oy, ox):
//
//	acc = Bias[o] + Σ_{c,ky,kx} Weight[o,c,ky,kx] · x[c, oy·Stride−Pad+ky, ox·Stride−Pad+kx]
//
// in int32 (no overflow: the caller bounds In·KH·KW, see infer.MaxTaps),
// where x outside the image reads PadValue[c]. Linear is the same with a
// 1×1 kernel on a 1×1 map of In channels (x is the flattened CHW tensor).
// The output is either
//
//   - int8: RequantizeOut(acc, Mult[o], Shift[o], OutZero, ReLU), i.e.
//     clamp(OutZero + Requantize(acc, Mult[o], Shift[o]), lo, 127) with
//     lo = max(OutZero, −128) when ReLU is fused and −128 otherwise; or
//   - float32 logits: float32(acc) * (InScale * WScale[o]), where
//     InScale * WScale[o] is one float32 multiplication (rounded to float32)
//     and float32(acc) is the round-to-nearest-even conversion of the int32.
//     There is no other rounding step and no fused multiply-add.
//
// # Winograd
//
// On cores without dotprod (cpu.ARM64.HasASIMDDP false: Cortex-A53, A57,
// A72, Carmel), 3×3 stride-1 convolutions with 16 ≤ C ≤ 3640 and an
// output of at least 2×2 take Winograd F(2×2, 3×3) with int16 transforms
// and int16×int16→int32 SMLAL (winograd_generic.go): 16 multiplications
// per 2×2 outputs instead of 36. It is exact, not an approximation: the
// transformed weights are 4× the textbook ones so that everything stays
// integer, the int32 sums equal 4·acc mod 2³² with |4·acc| < 2³¹, and a
// shift by 2 gives the direct kernel's accumulator bit for bit before the
// same requantization.
//
// On amd64 with AVX2 (and AVX-VNNI, without AVX-512 VNNI) every 3×3
// stride-1 convolution with an output of at least 2×2 takes Winograd
// F(4×4, 3×3) (winograd43.go): 36 multiplications per 4×4 outputs instead
// of 144. It is exact too: with integer Ĝ and Âᵀ the int32 result is
// 576·S mod 2³²; 9⁻¹ mod 2³² and a shift by 6 recover S while |S| < 2²⁵,
// which input-channel chunks of at most 226 guarantee for any weights.
// The GEMM is VPMADDWD on int16 channel pairs (VPDPWSSD with AVX-VNNI).
//
// PrepareConv lays a layer's weights out once for the kernel in use
// (Conv2dParams.Prepared, prepared.go): the Winograd U, or the SIMD
// kernel's packed weights. Without it, or when it was made from other
// weights or for another kernel, every call packs them again. It adds to
// the int8 weights (those alias the model file): AVX2's int16 layout
// doubles them (29 MB for VGG16's convolutions), VNNI and NEON SDOT
// repeat them in bytes, F(4,3)'s U is 8 bytes a weight up to 8 MB a
// layer and larger layers keep 1 byte a weight (permuted) and transform U
// per block of 8 output channels as they run (~27 MB for VGG16).
//
// # Pooling and ReLU
//
//   - MaxPool2d: the maximum over a K×K window; taps outside the image read
//     −128 (so they never win over a real value).
//   - AdaptiveAvgPool2d: PyTorch's bins, rows [floor(i·H/OH),
//     ceil((i+1)·H/OH)) and likewise columns. With S the int64 sum of the q
//     values in the bin and n its size, the output is S/n rounded half away
//     from zero: (S + n/2) / n for S ≥ 0 and −((−S + n/2) / n) for S < 0,
//     with truncating integer division; for odd n, n/2 rounds down (there is
//     no tie then). This is TFLite's int8 average pool. It averages q
//     directly, which is exact in real terms because pooling keeps scale and
//     zero point: mean(q) − zero = mean(q − zero).
//   - ReLU: max(q, zero).
//
// The kernels never allocate, except that a convolution grows a Scratch
// that is too small: reserve it once (Scratch.Reserve) to keep the steady
// state allocation-free. They never write to their parameters, so any
// number of goroutines may share them, each with its own Scratch and
// output.
//
// # Float GEMM
//
// GemmFloat (sgemm.go) is the one float32 matrix multiply of the float
// paths: the fast float forward that calibration, `reduce` and fp32
// evaluation run, reduce's re-projection, and the trainer (infer/train).
// AVX2+FMA and NEON micro-kernels with a generic Go twin. Float arithmetic
// is the one exception to bit-exactness: the kernels keep the generic
// summation order and differ only in rounding (FMA), within the bound
// stated in sgemm.go; NEON equals the generic kernel bit for bit on arm64.
// It grows its GemmBuffers like a Scratch and allocates nothing else.
//
// It imports only x/sys/cpu and the standard library: the kernels know
// slices and shapes, not models (infer imports them, never the other way).
package kernels
