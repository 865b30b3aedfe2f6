package output

import (
	"github.com/vggedge/vggedge/firmware/live"

	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// recordingPin is periph's test pin with a log of every Out call.
type recordingPin struct {
	gpiotest.Pin
	outs []gpio.Level
}

func (p *recordingPin) Out(l gpio.Level) error {
	p.outs = append(p.outs, l)
	return p.Pin.Out(l)
}

// frameScore is one result for the GPIO sink: at ms, label scores score
// (best first in a top-2 with a filler label).
type frameScore struct {
	ms    int
	label string
	score float32
}

func TestGPIOHysteresis(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Every 30 ms, like a 33 fps camera.
	seq := func(label string, scores ...float32) []frameScore {
		var fs []frameScore
		for i, s := range scores {
			fs = append(fs, frameScore{30 * i, label, s})
		}
		return fs
	}
	for _, tt := range []struct {
		name    string
		when    []string
		on, off float64
		hold    time.Duration
		frames  []frameScore
		want    string // pin level after each frame: L or H
		outs    int    // Out calls besides the initial Low: one per transition
	}{
		{"on and off, no hold", []string{"7"}, 0.8, 0.5, 0,
			seq("7", 0.1, 0.85, 0.9, 0.4, 0.2), "LHHLL", 2},
		{"between the thresholds from low: stays low", []string{"7"}, 0.8, 0.5, 0,
			seq("7", 0.6, 0.79, 0.7, 0.51), "LLLL", 0},
		{"noise around on-score: one rise, no flicker", []string{"7"}, 0.8, 0.5, 100 * time.Millisecond,
			seq("7", 0.79, 0.81, 0.79, 0.81, 0.78, 0.82, 0.79), "LHHHHHH", 1},
		{"noise around off-score: the hold restarts, stays high", []string{"7"}, 0.8, 0.5, 100 * time.Millisecond,
			seq("7", 0.9, 0.49, 0.51, 0.49, 0.51, 0.49, 0.51, 0.49, 0.51), "HHHHHHHHH", 1},
		{"low only after hold below off-score", []string{"7"}, 0.8, 0.5, 100 * time.Millisecond,
			// below from 30 ms: 60 ms and 90 ms are < hold, 120 ms (90 ms after) < hold, 150 ms ≥ hold.
			seq("7", 0.9, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3), "HHHHHLL", 2},
		{"no latch: rises again after falling", []string{"7"}, 0.8, 0.5, 60 * time.Millisecond,
			seq("7", 0.9, 0.2, 0.2, 0.2, 0.95, 0.2, 0.2, 0.2), "HHHLHHHL", 4},
		{"label disappears from the top-k: scores 0", []string{"7"}, 0.8, 0.5, 60 * time.Millisecond,
			[]frameScore{{0, "7", 0.9}, {30, "1", 0.99}, {60, "1", 0.99}, {90, "1", 0.99}, {120, "1", 0.99}}, "HHHLL", 2},
		{"any watched label holds the pin", []string{"3", "8"}, 0.8, 0.5, 0,
			[]frameScore{{0, "3", 0.9}, {30, "8", 0.6}, {60, "3", 0.55}, {90, "5", 0.9}, {120, "8", 0.81}}, "HHHLH", 3},
		{"exactly on-score turns on, exactly off-score holds", []string{"7"}, 0.8, 0.5, 0,
			seq("7", 0.8, 0.5, 0.4999), "HHL", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pin := &recordingPin{Pin: gpiotest.Pin{N: "GPIO17", Num: 17}}
			s, err := NewGPIO("GPIO17", pin, GPIOConfig{Pin: "GPIO17", Hysteresis: Hysteresis{When: tt.when, On: tt.on, Off: tt.off, Hold: tt.hold}})
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			for _, f := range tt.frames {
				other := "0"
				if f.label == "0" {
					other = "9"
				}
				r := live.Result{Time: base.Add(time.Duration(f.ms) * time.Millisecond), Truth: -1,
					Top: []live.Class{{Label: f.label, Score: f.score}, {Label: other, Score: (1 - f.score) / 2}}}
				if err := s.Write(&r); err != nil {
					t.Fatal(err)
				}
				got.WriteString(map[gpio.Level]string{gpio.High: "H", gpio.Low: "L"}[pin.Read()])
			}
			if got.String() != tt.want {
				t.Errorf("pin levels %s, want %s", got.String(), tt.want)
			}
			if len(pin.outs) != 1+tt.outs || pin.outs[0] != gpio.Low {
				t.Errorf("Out calls %v, want an initial Low and %d transitions", pin.outs, tt.outs)
			}
			for i := 1; i < len(pin.outs); i++ {
				if pin.outs[i] == pin.outs[i-1] {
					t.Errorf("Out(%v) twice in a row: %v", pin.outs[i], pin.outs)
				}
			}
			if err := s.Close(); err != nil || pin.Read() != gpio.Low {
				t.Errorf("after Close: %v, pin %v; want Low", err, pin.Read())
			}
		})
	}
}

// This machine (x86-64, no GPIO driver): periph's host.Init succeeds and
// finds no such pin; the error says so in one line.
func TestGPIONoSuchPin(t *testing.T) {
	name, pin, err := OpenGPIOPin("17")
	if pin != nil {
		t.Skipf("this machine has %s", name)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "gpio GPIO17: no such pin on this board (periph found") {
		t.Errorf("error %v", err)
	}
}
