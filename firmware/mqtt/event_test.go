package mqtt

import (
	"github.com/vggedge/vggedge/firmware/live"

	"fmt"
	"strings"
	"testing"
	"time"
)

// frameStep is the capture interval of the synthetic result streams: 30 fps.
const frameStep = 33 * time.Millisecond

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// resultsOf turns frames into results 33 ms apart. A frame lists its
// top-k as "label:score", e.g. "7:0.9" or "7:0.6,1:0.3"; "" is a frame
// where no label reaches 0.5.
func resultsOf(frames []string) []live.Result {
	rs := make([]live.Result, len(frames))
	for i, f := range frames {
		rs[i] = live.Result{Frame: uint64(i), Time: t0.Add(time.Duration(i) * frameStep), Truth: -1}
		if f == "" {
			rs[i].Top = []live.Class{{Label: "other", Score: 0.3}} // below any on-score
			continue
		}
		for _, p := range strings.Split(f, ",") {
			var label string
			var score float32
			l, s, _ := strings.Cut(p, ":")
			label = l
			fmt.Sscan(s, &score)
			rs[i].Top = append(rs[i].Top, live.Class{Label: label, Score: score})
		}
	}
	return rs
}

// repeat is n copies of f.
func repeat(f string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = f
	}
	return s
}

func cat(parts ...[]string) []string {
	var s []string
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

// The detector's contract, frame by frame: hysteresis between on and off,
// and a new state must hold for the dwell (on capture time) before it is
// published.
func TestChangeDetector(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    detectorConfig
		frames []string
		want   []string // "state label prev @frame"
	}{
		{"steady label: one event", detectorConfig{On: 0.8, Off: 0.5}, repeat("7:0.95", 500),
			[]string{"appeared 7 - @0"}},
		{"wobble around on-score: one event", detectorConfig{On: 0.8, Off: 0.5},
			cat(repeat("7:0.81", 1), repeat("7:0.79", 1), repeat("7:0.81", 1), repeat("7:0.6", 50), repeat("7:0.85", 3)),
			[]string{"appeared 7 - @0"}},
		{"below on-score never appears", detectorConfig{On: 0.8, Off: 0.5}, repeat("7:0.79", 100), nil},
		{"appear then disappear below off", detectorConfig{On: 0.8, Off: 0.5},
			cat(repeat("", 3), repeat("7:0.9", 5), repeat("7:0.49", 2), repeat("", 3)),
			[]string{"appeared 7 - @3", "disappeared - 7 @8"}},
		{"change of label", detectorConfig{On: 0.8, Off: 0.5},
			cat(repeat("7:0.9", 3), repeat("1:0.9,7:0.05", 3)),
			[]string{"appeared 7 - @0", "changed 1 7 @3"}},
		{"held label survives a stronger-than-off rival", detectorConfig{On: 0.8, Off: 0.3},
			cat(repeat("7:0.9", 3), repeat("7:0.4,1:0.55", 10)),
			[]string{"appeared 7 - @0"}},
		{"dwell: short dips publish nothing", detectorConfig{On: 0.8, Off: 0.5, Hold: 200 * time.Millisecond},
			cat(repeat("7:0.9", 10), repeat("7:0.2", 3), repeat("7:0.9", 10), repeat("", 5), repeat("7:0.7", 20)),
			// appears once its 0.9 has held 200 ms (7 frames of 33 ms: 0..6
			// spans 198 ms, 0..7 231 ms); dips of 99 ms and 132 ms never
			// reach the dwell; the 0.7s are above off.
			[]string{"appeared 7 - @7"}},
		{"dwell: a long dip disappears once, after the dwell", detectorConfig{On: 0.8, Off: 0.5, Hold: 100 * time.Millisecond},
			cat(repeat("7:0.9", 10), repeat("7:0.1", 10)),
			[]string{"appeared 7 - @4", "disappeared - 7 @14"}},
		{"dwell: flicker never holds", detectorConfig{On: 0.8, Off: 0.5, Hold: 100 * time.Millisecond},
			cat(repeat("7:0.85", 1), repeat("7:0.2", 1), repeat("7:0.85", 1), repeat("7:0.2", 1), repeat("7:0.85", 1), repeat("7:0.2", 1)), nil},
		{"watch list ignores other labels", detectorConfig{On: 0.8, Off: 0.5, When: []string{"7"}},
			cat(repeat("1:0.95", 5), repeat("7:0.95", 2), repeat("1:0.95", 2)),
			[]string{"appeared 7 - @5", "disappeared - 7 @7"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newChangeDetector(tt.cfg)
			var got []string
			for _, r := range resultsOf(tt.frames) {
				if ev, ok := d.observe(&r); ok {
					got = append(got, fmt.Sprintf("%s %s %s @%d", ev.State, orDash(ev.Label), orDash(ev.Previous), ev.Frame))
					if !ev.Time.Equal(r.Time) || ev.Since.After(ev.Time) || ev.Time.Sub(ev.Since) < tt.cfg.Hold {
						t.Errorf("event at frame %d: since %v, time %v: the dwell %v did not hold", ev.Frame, ev.Since, ev.Time, tt.cfg.Hold)
					}
				}
			}
			if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Errorf("events\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func TestDetectorConfigErrors(t *testing.T) {
	labels := []string{"0", "1", "7"}
	for _, tt := range []struct {
		cfg  detectorConfig
		want string
	}{
		{detectorConfig{On: 0, Off: 0}, "--mqtt-on-score 0: want a probability in (0, 1]"},
		{detectorConfig{On: 1.5, Off: 0.5}, "--mqtt-on-score 1.5"},
		{detectorConfig{On: 0.8, Off: 0.8}, "--mqtt-off-score 0.8: want 0 ≤ off-score < on-score (0.8)"},
		{detectorConfig{On: 0.8, Off: 0.5, Hold: -time.Second}, "--mqtt-dwell -1s: want a duration ≥ 0"},
		{detectorConfig{On: 0.8, Off: 0.5, When: []string{"cat"}}, "--mqtt-when cat: not a label of the model (labels: 0, 1, 7)"},
	} {
		err := tt.cfg.Validate(labels, detectorFlags)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tt.cfg, err, tt.want)
		}
	}
}
