package cross

import (
	"reflect"
	"testing"

	"github.com/vggedge/vggedge/boards"
)

var (
	arm64 = boards.Target{GOOS: "linux", GOARCH: "arm64"}
	armv7 = boards.Target{GOOS: "linux", GOARCH: "arm", GOARM: "7"}
	armv6 = boards.Target{GOOS: "linux", GOARCH: "arm", GOARM: "6"}
	amd64 = boards.Target{GOOS: "linux", GOARCH: "amd64"}
)

func board(id string, ts ...boards.Target) *boards.Board {
	return &boards.Board{ID: id, Targets: ts}
}

// fileBoards is the part of an artifact the table compares.
type fileBoards struct {
	File   string
	Boards []string
}

func TestMatrix(t *testing.T) {
	// Shaped like boards.All(): 64-bit first, 32-bit fallback on the Pis
	// whose vendor OS still ships a 32-bit image.
	current := []*boards.Board{
		board("rpi-zero2w", arm64, armv7),
		board("rpi3bplus", arm64, armv7),
		board("rpi4-4g", arm64, armv7),
		board("rpi5-8g", arm64),
		board("jetson-nano", arm64),
		board("x86-64", amd64),
	}
	tests := []struct {
		name   string
		boards []*boards.Board
		want   []fileBoards
	}{
		{
			name:   "current boards",
			boards: current,
			want: []fileBoards{
				{"vggedge-linux-arm64", []string{"rpi-zero2w", "rpi3bplus", "rpi4-4g", "rpi5-8g", "jetson-nano"}},
				{"vggedge-linux-armv7", []string{"rpi-zero2w", "rpi3bplus", "rpi4-4g"}},
				{"vggedge-linux-armv6", []string{}},
				{"vggedge-linux-amd64", []string{"x86-64"}},
			},
		},
		{
			name:   "no boards still has the generic ARMv6 build",
			boards: nil,
			want:   []fileBoards{{"vggedge-linux-armv6", []string{}}},
		},
		{
			name: "order does not depend on board order; duplicates collapse",
			boards: []*boards.Board{
				board("x86-64", amd64, amd64),
				nil,
				board("empty"),
				board("half", boards.Target{GOOS: "linux"}),
				board("pi", armv7, arm64, arm64),
			},
			want: []fileBoards{
				{"vggedge-linux-arm64", []string{"pi"}},
				{"vggedge-linux-armv7", []string{"pi"}},
				{"vggedge-linux-armv6", []string{}},
				{"vggedge-linux-amd64", []string{"x86-64"}},
			},
		},
		{
			name:   "a board that lists ARMv6 maps to it",
			boards: []*boards.Board{board("pi1", armv6), board("pizero", armv6)},
			want:   []fileBoards{{"vggedge-linux-armv6", []string{"pi1", "pizero"}}},
		},
		{
			name: "other architectures and systems after, by name",
			boards: []*boards.Board{
				board("rv", boards.Target{GOOS: "linux", GOARCH: "riscv64"}),
				board("mac", boards.Target{GOOS: "darwin", GOARCH: "arm64"}),
				board("x", amd64),
			},
			want: []fileBoards{
				{"vggedge-darwin-arm64", []string{"mac"}},
				{"vggedge-linux-armv6", []string{}},
				{"vggedge-linux-amd64", []string{"x"}},
				{"vggedge-linux-riscv64", []string{"rv"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Matrix(tc.boards)
			var gotFB []fileBoards
			for _, a := range got {
				if a.File != FileName(a.Target) {
					t.Errorf("%v: File %q, want %q", a.Target, a.File, FileName(a.Target))
				}
				gotFB = append(gotFB, fileBoards{a.File, a.Boards})
			}
			if !reflect.DeepEqual(gotFB, tc.want) {
				t.Errorf("Matrix =\n%v\nwant\n%v", gotFB, tc.want)
			}
			// Calling again must give the same answer (map iteration order
			// must not leak out).
			if again := Matrix(tc.boards); !reflect.DeepEqual(again, got) {
				t.Errorf("Matrix is not deterministic:\n%v\n%v", got, again)
			}
		})
	}
}

func TestMatrixTargets(t *testing.T) {
	got := Matrix([]*boards.Board{board("x86-64", amd64), board("rpi4-4g", arm64, armv7)})
	var targets []boards.Target
	for _, a := range got {
		targets = append(targets, a.Target)
	}
	want := []boards.Target{arm64, armv7, armv6, amd64}
	if !reflect.DeepEqual(targets, want) {
		t.Errorf("targets = %v, want %v", targets, want)
	}
}

func TestFileNameAndPlatform(t *testing.T) {
	tests := []struct {
		t        boards.Target
		file     string
		platform string
	}{
		{arm64, "vggedge-linux-arm64", "linux/arm64"},
		{armv7, "vggedge-linux-armv7", "linux/arm/v7"},
		{armv6, "vggedge-linux-armv6", "linux/arm/v6"},
		{amd64, "vggedge-linux-amd64", "linux/amd64"},
		{boards.Target{GOOS: "linux", GOARCH: "arm"}, "vggedge-linux-arm", "linux/arm"},
		{boards.Target{GOOS: "windows", GOARCH: "amd64"}, "vggedge-windows-amd64.exe", "windows/amd64"},
	}
	for _, tc := range tests {
		if got := FileName(tc.t); got != tc.file {
			t.Errorf("FileName(%v) = %q, want %q", tc.t, got, tc.file)
		}
		if got := Platform(tc.t); got != tc.platform {
			t.Errorf("Platform(%v) = %q, want %q", tc.t, got, tc.platform)
		}
	}
}
