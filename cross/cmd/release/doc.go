// Command release cross-compiles the vggedge binary for every target of the
// build matrix (cross.Matrix over boards.All) and writes the binaries,
// SHA256SUMS and targets.json to an output directory.
//
//	go run ./cross/cmd/release [-out dist] [-version v] [-pkg ./firmware/vggedge]
//
// It imports boards and cross only: the binary it builds is built by the
// go command from source, never linked in.
package main
