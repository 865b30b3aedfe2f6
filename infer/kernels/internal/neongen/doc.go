// Command neongen writes gemm_arm64.s, the NEON int8 micro-kernels of
// package kernels. Go's arm64 assembler has no mnemonics for SDOT, SMULL,
// SMLAL or SADALP, so they are emitted as WORD with the GNU mnemonic in a
// comment; words_test.go checks every such line against
// aarch64-linux-gnu-objdump. Generating the file keeps the 64-instruction
// inner loops free of copy-and-paste register mistakes.
//
//	go run ./internal/neongen -o gemm_arm64.s
//
// It imports only the standard library; nothing imports it (it is run by
// go generate).
package main
