package cross

import (
	"cmp"
	"slices"

	"github.com/vggedge/vggedge/boards"
)

// Binary is the base name of every release artifact.
const Binary = "vggedge"

// GenericARMv6 is the 32-bit ARM build that no board profile lists: Pi 1,
// Pi Zero (W) and 32-bit Raspberry Pi OS userlands (built for ARMv6 even on
// newer CPUs) run it. It has no budget profile, so it maps to no board id.
var GenericARMv6 = boards.Target{GOOS: "linux", GOARCH: "arm", GOARM: "6"}

// Artifact is one release binary.
type Artifact struct {
	Target boards.Target
	// File is the artifact's file name: "vggedge-linux-arm64",
	// "vggedge-linux-armv7", "vggedge-linux-armv6", "vggedge-linux-amd64".
	File string
	// Boards are the ids of the boards that list this target (as preferred
	// or as a fallback build), in the order the boards were given. Empty,
	// never nil, for the generic ARMv6 build.
	Boards []string
}

// FileName is the release file name of a target's binary.
func FileName(t boards.Target) string {
	arch := t.GOARCH
	if t.GOARCH == "arm" && t.GOARM != "" {
		arch = "armv" + t.GOARM
	}
	name := Binary + "-" + t.GOOS + "-" + arch
	if t.GOOS == "windows" {
		name += ".exe"
	}
	return name
}

// Platform is a target in the os/arch[/variant] notation of OCI platforms:
// "linux/arm64", "linux/arm/v7".
func Platform(t boards.Target) string {
	s := t.GOOS + "/" + t.GOARCH
	if t.GOARCH == "arm" && t.GOARM != "" {
		s += "/v" + t.GOARM
	}
	return s
}

// Matrix is the union of the boards' targets plus GenericARMv6, one Artifact
// per distinct target. The order is fixed whatever the board order: by GOOS,
// then arm64, arm (newest GOARM first), amd64, other architectures by name.
// Nil boards and empty targets are skipped.
func Matrix(bs []*boards.Board) []Artifact {
	byTarget := map[boards.Target]*Artifact{}
	add := func(t boards.Target) *Artifact {
		a, ok := byTarget[t]
		if !ok {
			a = &Artifact{Target: t, File: FileName(t), Boards: []string{}}
			byTarget[t] = a
		}
		return a
	}
	add(GenericARMv6)
	for _, b := range bs {
		if b == nil {
			continue
		}
		for _, t := range b.Targets {
			if t.GOOS == "" || t.GOARCH == "" {
				continue
			}
			a := add(t)
			// A board listing the same target twice is still one board.
			if !slices.Contains(a.Boards, b.ID) {
				a.Boards = append(a.Boards, b.ID)
			}
		}
	}
	out := make([]Artifact, 0, len(byTarget))
	for _, a := range byTarget {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(x, y Artifact) int { return compareTargets(x.Target, y.Target) })
	return out
}

// archRank puts the ARM builds the project exists for before x86.
func archRank(goarch string) int {
	switch goarch {
	case "arm64":
		return 0
	case "arm":
		return 1
	case "amd64":
		return 2
	}
	return 3
}

func compareTargets(x, y boards.Target) int {
	return cmp.Or(
		cmp.Compare(x.GOOS, y.GOOS),
		cmp.Compare(archRank(x.GOARCH), archRank(y.GOARCH)),
		cmp.Compare(x.GOARCH, y.GOARCH),
		// Newer ARM ISA first; GOARM values are single digits.
		cmp.Compare(y.GOARM, x.GOARM),
	)
}
