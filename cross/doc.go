// Package cross owns the release build matrix of the vggedge binary: which
// GOOS/GOARCH/GOARM builds exist, which boards each one is for, and how the
// release artifacts and their checksums are produced.
//
// The board → target mapping is read from package boards (each Board lists
// the Go targets that run on it, preferred first); this package adds only
// what no board profile owns: the generic ARMv6 build (linux/arm, GOARM=6)
// for Pi 1 / Pi Zero (W) and any 32-bit Raspberry Pi OS userland, which is
// built for ARMv6 whatever the CPU.
//
// All builds are CGO_ENABLED=0 static binaries, so one `go` toolchain cross
// compiles every artifact without a C cross compiler. The release command is
// cross/cmd/release (`make cross`). That the arm64 binary answers exactly as
// the native one is checked by firmware's TestArm64CheckMatchesNative under
// qemu-user.
//
// It imports boards (the board profiles name the targets) and nothing
// else from vggedge: it builds the binary with the go command, it does not
// link it.
package cross
