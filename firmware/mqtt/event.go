package mqtt

import (
	"slices"

	"github.com/vggedge/vggedge/firmware/live"
	"github.com/vggedge/vggedge/firmware/output"

	"time"
)

// Event states: what happened to the watched label.
const (
	EventAppeared    = "appeared"    // a watched label is now seen (none was)
	EventChanged     = "changed"     // another watched label replaced the one seen
	EventDisappeared = "disappeared" // the watched label is gone (none is seen)
)

// labelEvent is one change the detector decided to publish.
type labelEvent struct {
	State    string    // appeared, changed or disappeared
	Label    string    // the label now seen; "" after disappeared
	Score    float32   // Label's score, or Previous's last score after disappeared
	Previous string    // the label seen before; "" after appeared
	Frame    uint64    // the frame that completed the dwell
	Time     time.Time // that frame's capture time
	Since    time.Time // capture time of the first frame of the new state
}

// changeDetector turns a stream of results into on-change events: which
// watched label (if any) is seen, with hysteresis and a minimum dwell.
//
//   - A label starts being seen when it scores ≥ on; a label already seen
//     (or on its way to being seen) stays seen while it scores ≥ off. So a
//     score wobbling around one threshold does not flicker.
//   - A new state (another label, or none) must hold for dwell — measured
//     on the frames' capture times, so that behaviour depends on the frames
//     only — before it is published; a state that falls back before then
//     publishes nothing.
//
// A watched label missing from the top-k scores 0. observe allocates
// nothing.
type changeDetector struct {
	watch   []string // nil: every label
	on, off float32
	dwell   time.Duration

	current      string // the published state; "" = none seen
	currentScore float32

	pending      bool   // a different state is being timed
	pendingLabel string // that state
	pendingSince time.Time
}

// detectorConfig is what --mqtt-when, --mqtt-on-score, --mqtt-off-score
// and --mqtt-dwell say (When nil: any label).
type detectorConfig = output.Hysteresis

// detectorFlags are the flags a detectorConfig comes from.
var detectorFlags = output.HysteresisFlags{When: "--mqtt-when", On: "--mqtt-on-score", Off: "--mqtt-off-score", Hold: "--mqtt-dwell", Steady: "events do not flicker"}

func newChangeDetector(c detectorConfig) *changeDetector {
	return &changeDetector{watch: c.When, on: float32(c.On), off: float32(c.Off), dwell: c.Hold}
}

func (d *changeDetector) watched(label string) bool {
	return d.watch == nil || slices.Contains(d.watch, label)
}

// seen is the state r shows: the best watched label scoring ≥ on, else the
// pending or the current label while it scores ≥ off, else none.
func (d *changeDetector) seen(r *live.Result) (string, float32) {
	var best string
	var bestScore, pendScore, curScore float32
	for _, c := range r.Top {
		if !d.watched(c.Label) {
			continue
		}
		if c.Score >= d.on && c.Score > bestScore {
			best, bestScore = c.Label, c.Score
		}
		if d.pending && c.Label == d.pendingLabel {
			pendScore = c.Score
		}
		if c.Label == d.current {
			curScore = c.Score
		}
	}
	switch {
	case best != "":
		return best, bestScore
	case d.pending && d.pendingLabel != "" && pendScore >= d.off:
		return d.pendingLabel, pendScore
	case d.current != "" && curScore >= d.off:
		return d.current, curScore
	}
	// None seen: report how low the current label fell.
	return "", curScore
}

// observe feeds one result; it reports an event when the state changed
// and the change has held for the dwell.
func (d *changeDetector) observe(r *live.Result) (labelEvent, bool) {
	label, score := d.seen(r)
	if label == d.current {
		d.pending = false
		d.currentScore = score
		return labelEvent{}, false
	}
	if !d.pending || label != d.pendingLabel {
		d.pending, d.pendingLabel, d.pendingSince = true, label, r.Time
	}
	if r.Time.Sub(d.pendingSince) < d.dwell {
		return labelEvent{}, false
	}
	ev := labelEvent{Label: label, Score: score, Previous: d.current, Frame: r.Frame, Time: r.Time, Since: d.pendingSince}
	switch {
	case d.current == "":
		ev.State = EventAppeared
	case label == "":
		ev.State = EventDisappeared
	default:
		ev.State = EventChanged
	}
	d.current, d.currentScore, d.pending = label, score, false
	return ev, true
}
