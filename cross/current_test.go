package cross

import (
	"slices"
	"testing"

	"github.com/vggedge/vggedge/boards"
)

// TestMatrixCurrentBoards pins the release to the four artifacts the
// project ships for today's profiles, and checks every profile's preferred
// (first) target is built.
func TestMatrixCurrentBoards(t *testing.T) {
	all := boards.All()
	arts := Matrix(all)
	var files []string
	byFile := map[string]Artifact{}
	for _, a := range arts {
		files = append(files, a.File)
		byFile[FileName(a.Target)] = a
	}
	want := []string{"vggedge-linux-arm64", "vggedge-linux-armv7", "vggedge-linux-armv6", "vggedge-linux-amd64"}
	if !slices.Equal(files, want) {
		t.Fatalf("Matrix(boards.All()) = %q, want %q", files, want)
	}
	for _, b := range all {
		if len(b.Targets) == 0 {
			t.Errorf("board %s has no targets", b.ID)
			continue
		}
		if a := byFile[FileName(b.Targets[0])]; !slices.Contains(a.Boards, b.ID) {
			t.Errorf("board %s: preferred artifact %s does not list it (boards %q)", b.ID, a.File, a.Boards)
		}
	}
	if got := byFile["vggedge-linux-armv6"].Boards; len(got) != 0 {
		t.Errorf("generic ARMv6 build lists boards %q, want none", got)
	}
}
