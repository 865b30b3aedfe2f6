package kernels

// Describe names the convolution kernel this CPU runs ("generic" without
// SIMD), for `vggedge info` and `vggedge bench`; "+winograd" when 3×3
// stride-1 layers take the Winograd F(2,3) path, "+winograd43" for F(4,3).
func Describe() string {
	if simdGemm != nil && simdGemm.winograd43 {
		return kernelName() + "+winograd43"
	}
	if simdGemm != nil && simdGemm.winograd {
		return kernelName() + "+winograd"
	}
	return kernelName()
}

// KindKernel names the kernel one kind of layer runs on this CPU.
type KindKernel struct{ Kind, Kernel string }

// DescribeKinds lists, per layer kind, the kernel this CPU runs, for
// `vggedge info`: the dispatch decisions made at start-up from
// golang.org/x/sys/cpu, not a guess from the CPU's name.
func DescribeKinds() []KindKernel {
	conv := kernelName()
	conv3 := conv
	if simdGemm != nil && simdGemm.winograd {
		conv3 = conv + ", Winograd F(2,3)"
	}
	if simdGemm != nil && simdGemm.winograd43 {
		conv3 = conv + ", Winograd F(4,3)"
	}
	linear, requant, pool := "generic", "generic", "generic"
	if simdDot4 != nil {
		linear = simdArchName(conv)
	}
	if simdGemm != nil {
		// amd64's AVX2 and VNNI kernels share the AVX2 epilogue; arm64's
		// kernels carry their own NEON one.
		requant = simdArchName(conv)
	}
	if simdMaxPool2x2Row != nil {
		pool = simdArchName(conv)
	}
	return []KindKernel{
		{"conv2d 3x3 stride 1", conv3},
		{"conv2d (other)", conv},
		{"requantize + ReLU", requant},
		{"linear", linear},
		{"maxpool2d 2x2", pool},
		{"maxpool2d (other), adaptiveavgpool2d", "generic"},
	}
}

// simdArchName is the instruction set behind the non-convolution SIMD
// kernels: AVX2 on amd64 (also under VNNI), NEON on arm64.
func simdArchName(conv string) string {
	if len(conv) >= 4 && conv[:4] == "neon" {
		return "neon"
	}
	return "avx2"
}
