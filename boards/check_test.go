package boards

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vggedge/vggedge/infer"
)

func mustCheck(t *testing.T, m *infer.Model, id string, b Budget) *Report {
	t.Helper()
	board, err := ByID(id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Check(m, board, b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCheckMemoryVerdict(t *testing.T) {
	m, _ := infer.VGG("vgg16", infer.DefaultInput, 1000)
	r := mustCheck(t, m, "rpi-zero2w", Budget{Precision: infer.FP32})
	if r.Fits || r.MemFits() {
		t.Fatal("vgg16 fp32 fits a Pi Zero 2 W")
	}
	if want := r.Cost.WeightBytes + r.Cost.PeakActivationBytes + RuntimeReserveBytes; r.PeakMemory != want {
		t.Errorf("peak memory %d, want %d", r.PeakMemory, want)
	}
	// The suggested reduction width is the widest that fits: it fits and
	// one more channel does not.
	var width int
	for _, s := range r.Suggestions {
		if strings.HasPrefix(s, "a 1x1 reduction 512→") {
			fmt.Sscanf(strings.TrimPrefix(s, "a 1x1 reduction 512→"), "%d", &width)
		}
	}
	if width <= 0 {
		t.Fatalf("no reduction suggested: %q", r.Suggestions)
	}
	for w, want := range map[int]bool{width: true, width + 1: false} {
		red, err := infer.WithReduction(m, w)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustCheck(t, red, "rpi-zero2w", Budget{Precision: infer.FP32}).Fits; got != want {
			t.Errorf("reduction to %d: fits %v, want %v", w, got, want)
		}
	}
}

func TestCheckLatencyVerdict(t *testing.T) {
	m, _ := infer.VGG("vgg16", infer.DefaultInput, 1000)
	if r := mustCheck(t, m, "rpi5-8g", Budget{Latency: time.Second}); !r.Fits {
		t.Errorf("vgg16 int8 at 1 fps on a Pi 5: %q", r.Reasons)
	}
	r := mustCheck(t, m, "rpi4-4g", Budget{Latency: 250 * time.Millisecond})
	if r.Fits || r.LatencyFits() || !r.MemFits() {
		t.Fatalf("vgg16 int8 in 250 ms on a Pi 4: fits %v", r.Fits)
	}
	// The input suggestion must fit, and be the largest multiple of 8.
	var c, h, w int
	for _, s := range r.Suggestions {
		if strings.HasPrefix(s, "input ") {
			fmt.Sscanf(s, "input %dx%dx%d", &c, &h, &w)
		}
	}
	if h == 0 {
		t.Fatalf("no input suggestion: %q", r.Suggestions)
	}
	for side, want := range map[int]bool{h: true, h + 8: false} {
		mm, err := infer.WithInput(m, infer.Shape{C: 3, H: side, W: side})
		if err != nil {
			t.Fatal(err)
		}
		if got := mustCheck(t, mm, "rpi4-4g", Budget{Latency: 250 * time.Millisecond}).Fits; got != want {
			t.Errorf("input %d: fits %v, want %v", side, got, want)
		}
	}
}

func TestCheckMemBudget(t *testing.T) {
	m, _ := infer.VGG("vgg11", infer.DefaultInput, 1000)
	r := mustCheck(t, m, "rpi5-8g", Budget{MemBytes: 100 << 20})
	if r.Available != 100<<20 || r.Fits || !strings.Contains(r.Reasons[0], "--mem") {
		t.Errorf("--mem 100MiB: available %d, fits %v, reasons %q", r.Available, r.Fits, r.Reasons)
	}
	// A --mem larger than the board has is capped by the board.
	r = mustCheck(t, m, "rpi-zero2w", Budget{MemBytes: 1 << 40})
	if b, _ := ByID("rpi-zero2w"); r.Available != b.RAMBytes-b.OSReserveBytes {
		t.Errorf("available %d, want the board's %d", r.Available, b.RAMBytes-b.OSReserveBytes)
	}
}
