//go:build gc && !purego && vnnisim

package kernels

// With -tags vnnisim, the AVX-VNNI GEMM is dispatched whatever the CPU.
// TestWino43AVXVNNISimulated builds the package so, with every VPDPWSSD in
// a copy of winograd43_avxvnni_amd64.s replaced by the VPMADDWD+VPADDD
// pair it fuses, so that the kernel's loads, loops and stores are checked
// bit for bit on a CPU without AVX-VNNI (objdump checks the encodings).

func init() {
	vnniSim = true
	w43GemmN = w43GemmNVNNIFast
}
