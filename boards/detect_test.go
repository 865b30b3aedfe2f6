package boards

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

var (
	featPi4  = Features{NEON: true}
	featPi5  = Features{NEON: true, DotProd: true}
	featX86  = Features{AVX2: true}
	featNone = Features{}
)

// The fixtures under testdata/<name>/proc hold the device-tree strings real
// boards write (NUL-terminated, as in /proc/device-tree) and a meminfo with
// their MemTotal.
func TestDetectFixtures(t *testing.T) {
	tests := []struct {
		dir        string
		feat       Features
		wantID     string // "" for no board
		approx     bool
		model      string
		compatible []string
		memTotal   int64
		reason     []string // substrings of Reason
	}{
		{"rpi-zero2w", featPi4, "rpi-zero2w", false, "Raspberry Pi Zero 2 W Rev 1.0",
			[]string{"raspberrypi,model-zero-2-w", "brcm,bcm2837"}, 439516 << 10, []string{`"raspberrypi,model-zero-2-w"`}},
		{"rpi3bplus", featPi4, "rpi3bplus", false, "Raspberry Pi 3 Model B Plus Rev 1.3",
			[]string{"raspberrypi,3-model-b-plus", "brcm,bcm2837"}, 948304 << 10, nil},
		{"rpi3b", featPi4, "rpi3bplus", true, "Raspberry Pi 3 Model B Rev 1.2",
			[]string{"raspberrypi,3-model-b", "brcm,bcm2837"}, 944268 << 10, []string{"nearest profile rpi3bplus"}},
		{"rpi4-4g", featPi4, "rpi4-4g", false, "Raspberry Pi 4 Model B Rev 1.4",
			[]string{"raspberrypi,4-model-b", "brcm,bcm2711"}, 3884300 << 10, []string{`"brcm,bcm2711"`, "4.00 GiB variant"}},
		{"rpi4-8g", featPi4, "rpi4-8g", false, "Raspberry Pi 4 Model B Rev 1.4",
			[]string{"raspberrypi,4-model-b", "brcm,bcm2711"}, 7997916 << 10, []string{"8.00 GiB variant"}},
		{"rpi5-8g", featPi5, "rpi5-8g", false, "Raspberry Pi 5 Model B Rev 1.0",
			[]string{"raspberrypi,5-model-b", "brcm,bcm2712"}, 8245056 << 10, []string{`"brcm,bcm2712"`}},
		{"jetson-nano", featPi4, "jetson-nano", false, "NVIDIA Jetson Nano Developer Kit",
			[]string{"nvidia,p3449-0000-b00+p3448-0000-b00", "nvidia,jetson-nano", "nvidia,tegra210"}, 4059412 << 10, nil},
		{"xavier-nx", featPi4, "xavier-nx", false, "NVIDIA Jetson Xavier NX Developer Kit",
			[]string{"nvidia,p3509-0000+p3668-0001", "nvidia,jetson-xavier-nx", "nvidia,tegra194"}, 7958260 << 10, nil},
		{"jetson-agx-xavier", featPi4, "xavier-nx", true, "Jetson-AGX",
			[]string{"nvidia,p2972-0000", "nvidia,tegra194"}, 32527484 << 10, []string{"AGX Xavier", "more than xavier-nx"}},
		{"orin-nano", featPi5, "orin-nano", false, "NVIDIA Jetson Orin Nano Developer Kit",
			[]string{"nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"}, 7802920 << 10, nil},
		{"orin-nano-super", featPi5, "orin-nano", false, "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
			[]string{"nvidia,p3768-0000+p3767-0005-super", "nvidia,tegra234"}, 7802920 << 10, []string{"Super mode"}},
		{"rockpro64", featPi4, "", false, "Pine64 RockPro64 v2.1",
			[]string{"pine64,rockpro64-v2.1", "pine64,rockpro64", "rockchip,rk3399"}, 3977784 << 10, []string{"no profile for this device tree", `"rockchip,rk3399"`}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			d, err := DetectFS(os.DirFS(filepath.Join("testdata", tt.dir)), tt.feat, "arm64")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantID == "" && d.Board != nil:
				t.Errorf("board %s, want none", d.Board.ID)
			case tt.wantID != "" && d.Board == nil:
				t.Errorf("no board (%s), want %s", d.Reason, tt.wantID)
			case tt.wantID != "" && d.Board.ID != tt.wantID:
				t.Errorf("board %s, want %s (%s)", d.Board.ID, tt.wantID, d.Reason)
			}
			if d.Approximate != tt.approx {
				t.Errorf("approximate %v, want %v", d.Approximate, tt.approx)
			}
			if d.Model != tt.model {
				t.Errorf("model %q, want %q", d.Model, tt.model)
			}
			if !slices.Equal(d.Compatible, tt.compatible) {
				t.Errorf("compatible %q, want %q", d.Compatible, tt.compatible)
			}
			if d.MemTotalBytes != tt.memTotal {
				t.Errorf("MemTotal %d, want %d", d.MemTotalBytes, tt.memTotal)
			}
			if d.Features != tt.feat {
				t.Errorf("features %+v, want %+v", d.Features, tt.feat)
			}
			if d.Reason == "" {
				t.Error("empty reason")
			}
			for _, s := range tt.reason {
				if !strings.Contains(d.Reason, s) {
					t.Errorf("reason %q does not mention %q", d.Reason, s)
				}
			}
		})
	}
}

func meminfo(kB string) string {
	return "MemTotal:       " + kB + " kB\nMemFree:          123456 kB\nMemAvailable:     234567 kB\n"
}

func dtFS(model, compatible, memTotalKB string) fstest.MapFS {
	m := fstest.MapFS{
		"proc/device-tree/model":      {Data: []byte(model + "\x00")},
		"proc/device-tree/compatible": {Data: []byte(compatible)},
	}
	if memTotalKB != "" {
		m["proc/meminfo"] = &fstest.MapFile{Data: []byte(meminfo(memTotalKB))}
	}
	return m
}

// The RAM variant is the smallest whose nominal RAM holds MemTotal.
func TestDetectPicksRAMVariant(t *testing.T) {
	const pi4 = "raspberrypi,4-model-b\x00brcm,bcm2711\x00"
	const pi5 = "raspberrypi,5-model-b\x00brcm,bcm2712\x00"
	tests := []struct {
		compat, kB, want, note string
	}{
		{pi4, " 925112", "rpi4-1g", ""},
		{pi4, "1873000", "rpi4-2g", ""},
		{pi4, "3884300", "rpi4-4g", ""},
		{pi4, "4194304", "rpi4-4g", ""}, // exactly 4 GiB still fits the 4 GB variant
		{pi4, "4194305", "rpi4-8g", ""},
		{pi4, "7997916", "rpi4-8g", ""},
		{pi5, "2000000", "rpi5-2g", ""},
		{pi5, "4030000", "rpi5-4g", ""},
		{pi5, "8245056", "rpi5-8g", ""},
		{pi5, "16608000", "rpi5-16g", ""},
		{pi5, "40000000", "rpi5-16g", "is more than rpi5-16g's"},
		{pi5, "", "rpi5-2g", "assuming the smallest RAM variant"},
		{pi4, "      0", "rpi4-1g", "assuming the smallest RAM variant"},
		// A 2 GB Jetson Nano has no profile of its own: the 4 GB one, with a
		// warning about the RAM.
		{"nvidia,p3541-0000+p3448-0003\x00nvidia,jetson-nano-2gb\x00nvidia,tegra210\x00", "2027264", "jetson-nano", "well below jetson-nano's"},
	}
	for _, tt := range tests {
		t.Run(tt.want+"/"+strings.TrimSpace(tt.kB), func(t *testing.T) {
			d, err := DetectFS(dtFS("Test board", tt.compat, tt.kB), featPi5, "arm64")
			if err != nil {
				t.Fatal(err)
			}
			if d.Board == nil || d.Board.ID != tt.want {
				t.Fatalf("board %v, want %s (%s)", d.Board, tt.want, d.Reason)
			}
			if tt.note != "" && !strings.Contains(d.Reason, tt.note) {
				t.Errorf("reason %q does not say %q", d.Reason, tt.note)
			}
		})
	}
}

func TestDetectWithoutDeviceTree(t *testing.T) {
	mem := fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo("16371208"))}}
	tests := []struct {
		name   string
		fsys   fs.FS
		feat   Features
		goarch string
		want   string
		reason string
	}{
		{"x86 with AVX2", mem, featX86, "amd64", "x86-64", "AVX2"},
		{"x86 without AVX2", mem, featNone, "amd64", "", "without AVX2"},
		{"arm64 server without device tree", mem, featPi5, "arm64", "", "no device tree"},
		{"empty /proc", fstest.MapFS{}, featX86, "amd64", "x86-64", "MemTotal unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DetectFS(tt.fsys, tt.feat, tt.goarch)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if d.Board != nil {
				got = d.Board.ID
			}
			if got != tt.want {
				t.Errorf("board %q, want %q (%s)", got, tt.want, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", d.Reason, tt.reason)
			}
			if d.Model != "" || d.Compatible != nil {
				t.Errorf("model %q compatible %q from no device tree", d.Model, d.Compatible)
			}
		})
	}
}

// A device tree wins over GOARCH: a Pi 4 running a 32-bit build is still a
// Pi 4, with a note that the figures are for arm64; a Pi 5 process that
// cannot use SDOT (GODEBUG=cpu.asimddp=off) is told it will be slower.
func TestDetectMismatchNotes(t *testing.T) {
	d, err := DetectFS(os.DirFS("testdata/rpi4-4g"), Features{NEON: true}, "arm")
	if err != nil {
		t.Fatal(err)
	}
	if d.Board == nil || d.Board.ID != "rpi4-4g" || !strings.Contains(d.Reason, "GOARCH=arm;") {
		t.Errorf("32-bit on a Pi 4: %v, %q", d.Board, d.Reason)
	}
	d, err = DetectFS(os.DirFS("testdata/rpi5-8g"), Features{NEON: true}, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if d.Board == nil || d.Board.ID != "rpi5-8g" || !strings.Contains(d.Reason, "dotprod") {
		t.Errorf("Pi 5 without dotprod: %v, %q", d.Board, d.Reason)
	}
	d, err = DetectFS(os.DirFS("testdata/rpi5-8g"), featPi5, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.Reason, "dotprod") || strings.Contains(d.Reason, "GOARCH") {
		t.Errorf("matching features and arch still warn: %q", d.Reason)
	}
}

// permFS refuses to open one file, as /proc does for an unprivileged user
// on a locked-down system.
type permFS struct {
	fstest.MapFS
	deny string
}

func (p permFS) Open(name string) (fs.File, error) {
	if name == p.deny {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return p.MapFS.Open(name)
}

func TestDetectErrors(t *testing.T) {
	good := dtFS("Raspberry Pi 4 Model B Rev 1.4", "raspberrypi,4-model-b\x00brcm,bcm2711\x00", "3884300")
	tests := []struct {
		name string
		fsys fs.FS
		want string
	}{
		{"nil fs", nil, "no file system"},
		{"model unreadable", permFS{good, "proc/device-tree/model"}, "permission denied"},
		{"compatible unreadable", permFS{good, "proc/device-tree/compatible"}, "proc/device-tree/compatible"},
		{"meminfo unreadable", permFS{good, "proc/meminfo"}, "proc/meminfo"},
		{"MemTotal not a number", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal:       lots kB\n")}}, "not a size"},
		{"MemTotal in MB", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal:       3793 MB\n")}}, "want kB"},
		{"MemTotal negative", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal:       -1 kB\n")}}, "not a size"},
		{"MemTotal overflows", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: 9223372036854775807 kB\n")}}, "too large"},
		{"MemTotal empty", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal:\n")}}, "want \"MemTotal: <n> kB\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DetectFS(tt.fsys, featPi4, "arm64")
			if err == nil {
				t.Fatalf("no error; detected %+v", d)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "detect board: ") {
				t.Errorf("error %q: want the context and %q", err, tt.want)
			}
			if tt.fsys != nil && strings.Contains(tt.name, "unreadable") && !errors.Is(err, fs.ErrPermission) {
				t.Errorf("error %q does not wrap fs.ErrPermission", err)
			}
		})
	}
}

// Odd but harmless input: a compatible list with empty entries and stray
// whitespace, a model without its NUL, meminfo without MemTotal.
func TestDetectLenientInput(t *testing.T) {
	fsys := fstest.MapFS{
		"proc/device-tree/model":      {Data: []byte("Raspberry Pi 5 Model B Rev 1.0\n")},
		"proc/device-tree/compatible": {Data: []byte("\x00 raspberrypi,5-model-b\x00\x00brcm,bcm2712")},
		"proc/meminfo":                {Data: []byte("MemFree: 1 kB\n")},
	}
	d, err := DetectFS(fsys, featPi5, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if d.Board == nil || d.Board.ID != "rpi5-2g" {
		t.Errorf("board %v, want rpi5-2g", d.Board)
	}
	if d.Model != "Raspberry Pi 5 Model B Rev 1.0" {
		t.Errorf("model %q", d.Model)
	}
	if want := []string{"raspberrypi,5-model-b", "brcm,bcm2712"}; !slices.Equal(d.Compatible, want) {
		t.Errorf("compatible %q, want %q", d.Compatible, want)
	}
	if d.MemTotalBytes != 0 || !strings.Contains(d.Reason, "MemTotal unknown") {
		t.Errorf("MemTotal %d, reason %q", d.MemTotalBytes, d.Reason)
	}
}

func TestDetectedString(t *testing.T) {
	d, err := DetectFS(os.DirFS("testdata/rpi4-4g"), featPi4, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	s := d.String()
	for _, want := range []string{
		"board:      rpi4-4g (Raspberry Pi 4 Model B (4 GB))",
		"model:      Raspberry Pi 4 Model B Rev 1.4",
		"compatible: raspberrypi,4-model-b, brcm,bcm2711",
		"memory:     3.70 GiB (MemTotal)",
		"features:   neon\n",
		"reason:     device tree compatible",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() =\n%s\nmissing %q", s, want)
		}
	}
	d, err = DetectFS(os.DirFS("testdata/jetson-agx-xavier"), featPi4, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if s := d.String(); !strings.Contains(s, "xavier-nx (NVIDIA Jetson Xavier NX (8 GB)), nearest profile") {
		t.Errorf("approximate match not marked:\n%s", s)
	}
	d, err = DetectFS(fstest.MapFS{}, featNone, "riscv64")
	if err != nil {
		t.Fatal(err)
	}
	if s := d.String(); !strings.Contains(s, "board:      unknown") || !strings.Contains(s, "features:   none") {
		t.Errorf("unknown board:\n%s", s)
	}
	if s := (*Detected)(nil).String(); s == "" {
		t.Error("nil Detected prints nothing")
	}
}

func TestFeaturesString(t *testing.T) {
	for f, want := range map[Features]string{
		{}:                                      "none",
		{NEON: true}:                            "neon",
		{NEON: true, DotProd: true, I8MM: true}: "neon dotprod i8mm",
		{AVX2: true}:                            "avx2",
	} {
		if got := f.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", f, got, want)
		}
	}
}

// Detect on the machine running the tests: it must not fail, and on an
// AVX2 amd64 host without a device tree (the development class) it finds
// the x86-64 profile.
func TestDetectHost(t *testing.T) {
	d, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this host:\n%s", d)
	if d.Features != HostFeatures() {
		t.Errorf("features %+v, HostFeatures %+v", d.Features, HostFeatures())
	}
	_, statErr := os.Stat("/proc/device-tree/model")
	if runtime.GOARCH == "amd64" && HostFeatures().AVX2 && errors.Is(statErr, fs.ErrNotExist) {
		if d.Board == nil || d.Board.ID != "x86-64" {
			t.Errorf("amd64 host with AVX2: board %v, want x86-64 (%s)", d.Board, d.Reason)
		}
	}
}
