package boards

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

func TestAllIDsInStableOrder(t *testing.T) {
	want := []string{
		"rpi-zero2w", "rpi3bplus",
		"rpi4-1g", "rpi4-2g", "rpi4-4g", "rpi4-8g",
		"rpi5-2g", "rpi5-4g", "rpi5-8g", "rpi5-16g",
		"jetson-nano", "xavier-nx", "orin-nano", "x86-64",
	}
	for run := 0; run < 2; run++ {
		var got []string
		for _, b := range All() {
			got = append(got, b.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("All() ids = %v, want %v", got, want)
		}
	}
	if !slices.Equal(IDs(), want) {
		t.Errorf("IDs() = %v, want %v", IDs(), want)
	}
}

func TestByID(t *testing.T) {
	b, err := ByID("rpi4-4g")
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "rpi4-4g" || b.RAMBytes != 4<<30 || b.CPU != "4x Cortex-A72" {
		t.Errorf("ByID(rpi4-4g) = %s, %d B, %s", b.ID, b.RAMBytes, b.CPU)
	}

	_, err = ByID("rpi9")
	if err == nil {
		t.Fatal("ByID(rpi9): no error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `unknown board "rpi9" (known: rpi-zero2w, rpi3bplus, `) {
		t.Errorf("error %q does not start with the id and the known list", msg)
	}
	for _, id := range IDs() {
		if !strings.Contains(msg, id) {
			t.Errorf("error %q does not list %s", msg, id)
		}
	}
}

// Callers get copies: changing one must not change the table.
func TestByIDReturnsCopy(t *testing.T) {
	b, err := ByID("rpi5-8g")
	if err != nil {
		t.Fatal(err)
	}
	b.RAMBytes = 1
	b.Targets[0].GOARCH = "mips"
	b.Compatible[0] = "x"
	again, _ := ByID("rpi5-8g")
	if again.RAMBytes != 8<<30 || again.Targets[0].GOARCH != "arm64" || again.Compatible[0] != "brcm,bcm2712" {
		t.Errorf("the table changed through a returned profile: %+v", again)
	}
}

func TestProfilesAreConsistent(t *testing.T) {
	for _, b := range All() {
		t.Run(b.ID, func(t *testing.T) {
			if b.Name == "" || b.CPU == "" || b.Source == "" {
				t.Errorf("empty name %q, CPU %q or source %q", b.Name, b.CPU, b.Source)
			}
			if b.Cores <= 0 || b.MaxClockMHz <= 0 || b.BandwidthBytesPerSec <= 0 {
				t.Errorf("cores %d, clock %d MHz, bandwidth %g: all must be positive", b.Cores, b.MaxClockMHz, b.BandwidthBytesPerSec)
			}
			if !strings.HasPrefix(b.CPU, fmt.Sprintf("%dx ", b.Cores)) {
				t.Errorf("CPU %q does not start with the %d cores", b.CPU, b.Cores)
			}
			for name, tp := range map[string]Throughput{"int8": b.Int8, "fp32": b.FP32} {
				for op, v := range map[string]float64{"conv3x3": tp.Conv3x3, "conv1x1": tp.Conv1x1, "conv": tp.Conv, "linear": tp.Linear} {
					if !(v > 0) {
						t.Errorf("%s %s throughput %g: must be positive", name, op, v)
					}
				}
			}
			if b.FP32.Conv3x3 >= b.Int8.Conv3x3 {
				t.Errorf("fp32 conv3x3 %g GMAC/s not below int8's %g", b.FP32.Conv3x3, b.Int8.Conv3x3)
			}
			if b.OSReserveBytes <= 0 || b.RAMBytes <= b.OSReserveBytes {
				t.Errorf("RAM %d B, reserve %d B: want 0 < reserve < RAM", b.RAMBytes, b.OSReserveBytes)
			}
			if len(b.Targets) == 0 {
				t.Fatal("no targets")
			}
			var arm, amd64 bool
			for _, tg := range b.Targets {
				switch tg.GOARCH {
				case "arm64":
					arm = true
				case "arm":
					arm = true
					if tg.GOARM != "7" {
						t.Errorf("GOARCH=arm target with GOARM %q, want 7", tg.GOARM)
					}
				case "amd64":
					amd64 = true
				default:
					t.Errorf("unexpected target %+v", tg)
				}
				if tg.GOOS != "linux" {
					t.Errorf("target %+v: want linux", tg)
				}
			}
			if arm == amd64 {
				t.Errorf("targets %+v: want ARM or amd64, not both or neither", b.Targets)
			}
			if arm && b.Targets[0].GOARCH != "arm64" {
				t.Errorf("ARM board's first target %+v, want arm64", b.Targets[0])
			}
			if b.Features.AVX2 && !amd64 {
				t.Error("AVX2 on a board without an amd64 target")
			}
			if amd64 && !b.Features.AVX2 {
				t.Error("the x86 profile's kernels need AVX2")
			}
			if b.Features.DotProd && b.Targets[0].GOARCH != "arm64" {
				t.Error("dotprod on a board whose preferred target is not arm64")
			}
			if arm != b.Features.NEON {
				t.Errorf("NEON %v on an ARM=%v board", b.Features.NEON, arm)
			}
			if b.Features.I8MM {
				t.Error("i8mm: none of the profiled boards has it (ANCHORS.md §4)")
			}
			if arm && len(b.Compatible) == 0 {
				t.Error("ARM board without device-tree compatible strings: detection cannot find it")
			}
			if b.Calibrated {
				t.Error("a built-in profile claims to be calibrated; all are seeded from published figures")
			}
		})
	}
}

// ANCHORS.md §4: dotprod on the Pi 5 and the Orin only.
func TestDotProdBoards(t *testing.T) {
	var got []string
	for _, b := range All() {
		if b.Features.DotProd {
			got = append(got, b.ID)
		}
	}
	want := []string{"rpi5-2g", "rpi5-4g", "rpi5-8g", "rpi5-16g", "orin-nano"}
	if !slices.Equal(got, want) {
		t.Errorf("dotprod boards %v, want %v", got, want)
	}
}

// The 32-bit Raspberry Pi OS runs on the Zero 2 W, the 3B+ and the Pi 4.
func TestArmv7Targets(t *testing.T) {
	for _, b := range All() {
		has := slices.Contains(b.Targets, Target{GOOS: "linux", GOARCH: "arm", GOARM: "7"})
		want := b.ID == "rpi-zero2w" || b.ID == "rpi3bplus" || strings.HasPrefix(b.ID, "rpi4-")
		if has != want {
			t.Errorf("%s: linux/arm/7 target %v, want %v", b.ID, has, want)
		}
	}
}

// RAM variants of one board differ in id, name, RAM and reserve only, and
// the RAM matches the id.
func TestVariantsShareAllButRAM(t *testing.T) {
	groups := map[string][]*Board{}
	for _, b := range All() {
		groups[b.family] = append(groups[b.family], b)
	}
	for fam, vs := range groups {
		if len(vs) < 2 {
			continue
		}
		for _, v := range vs {
			var gb int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(v.ID, fam+"-"), "%dg", &gb); err != nil || v.RAMBytes != gb<<30 {
				t.Errorf("%s: RAM %d B does not match its id", v.ID, v.RAMBytes)
			}
			if !strings.Contains(v.Name, fmt.Sprintf("(%d GB)", gb)) {
				t.Errorf("%s: name %q does not say %d GB", v.ID, v.Name, gb)
			}
		}
		strip := func(b *Board) string {
			c := *b
			c.ID, c.Name, c.RAMBytes, c.OSReserveBytes = "", "", 0, 0
			return fmt.Sprintf("%+v", c)
		}
		for _, v := range vs[1:] {
			if strip(v) != strip(vs[0]) {
				t.Errorf("%s and %s differ in more than RAM:\n%s\n%s", vs[0].ID, v.ID, strip(vs[0]), strip(v))
			}
			if v.OSReserveBytes <= vs[0].OSReserveBytes {
				t.Errorf("%s reserves %d B, no more than the smaller %s", v.ID, v.OSReserveBytes, vs[0].ID)
			}
		}
	}
	if len(groups["rpi4"]) != 4 || len(groups["rpi5"]) != 4 {
		t.Errorf("rpi4 has %d variants, rpi5 %d: want 4 each", len(groups["rpi4"]), len(groups["rpi5"]))
	}
}

// The reserve rule's carve-out is fitted to what real boards report as
// MemTotal (the fixtures under testdata/): RAM − carve-out must land within
// 5% of the RAM of it. And a Zero 2 W shows ~416 MiB usable (ANCHORS.md §5).
func TestReserveCarveOutMatchesMemTotal(t *testing.T) {
	rules := map[string]reserveRule{}
	for _, f := range families() {
		rules[f.base.ID] = f.reserve
	}
	fixtures := map[string]string{
		"rpi-zero2w": "rpi-zero2w", "rpi3bplus": "rpi3bplus", "rpi4-4g": "rpi4", "rpi4-8g": "rpi4",
		"rpi5-8g": "rpi5", "jetson-nano": "jetson-nano", "xavier-nx": "xavier-nx", "orin-nano": "orin-nano",
	}
	for dir, fam := range fixtures {
		meminfo, err := os.ReadFile(filepath.Join("testdata", dir, "proc", "meminfo"))
		if err != nil {
			t.Fatal(err)
		}
		memTotal, err := parseMemTotal(meminfo)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ByID(dir)
		if err != nil {
			t.Fatal(err)
		}
		r := rules[fam]
		visible := b.RAMBytes - (b.OSReserveBytes - r.baseline)
		if diff := float64(visible-memTotal) / float64(b.RAMBytes); diff > 0.05 || diff < -0.05 {
			t.Errorf("%s: RAM − carve-out = %d MiB, MemTotal %d MiB: %.1f%% apart", dir, visible>>20, memTotal>>20, 100*diff)
		}
		if avail := b.RAMBytes - b.OSReserveBytes; avail >= memTotal {
			t.Errorf("%s: available %d MiB is not below MemTotal %d MiB", dir, avail>>20, memTotal>>20)
		}
	}
	z, _ := ByID("rpi-zero2w")
	if usable := z.RAMBytes - (z.OSReserveBytes - reservePi3.baseline); usable != 416<<20 {
		t.Errorf("Zero 2 W: %d MiB left by firmware/GPU, want 416 MiB", usable>>20)
	}
}

// The seeding constants are VGG16's, as infer costs it.
func TestSeedConstantsMatchInfer(t *testing.T) {
	m, err := infer.VGG("vgg16", infer.DefaultInput, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		p     infer.Precision
		other int64
	}{{infer.Int8, vgg16OtherBytesInt8}, {infer.FP32, vgg16OtherBytesFP32}} {
		c, err := m.Cost(tt.p)
		if err != nil {
			t.Fatal(err)
		}
		var conv, other int64
		for _, l := range c.Layers {
			switch l.Op {
			case "conv3x3":
				conv += l.MACs
			case "pool", "linear":
				other += l.InputBytes + l.OutputBytes
			case "none":
				if l.OutputBytes != 0 {
					t.Errorf("%s: a none layer with an output; the seeding assumes all are fused", l.Name)
				}
			default:
				t.Errorf("%s: unexpected op %q in VGG16", l.Name, l.Op)
			}
		}
		if conv != vgg16ConvMACs {
			t.Errorf("%s conv MACs %d, constant %d", tt.p, conv, int64(vgg16ConvMACs))
		}
		if other != tt.other {
			t.Errorf("%s pool+linear bytes %d, constant %d", tt.p, other, tt.other)
		}
	}
}
