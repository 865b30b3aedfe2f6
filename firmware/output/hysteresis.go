package output

import (
	"fmt"
	"slices"
	"time"
)

// Hysteresis is the rule by which a stream of scores becomes a state that
// does not flicker, shared by the GPIO pin and MQTT events: a watched
// label becomes seen at a score ≥ On and stays seen while it scores ≥ Off
// (< On); a new state must last Hold, measured on the frames' capture
// times, before it counts.
type Hysteresis struct {
	When    []string // the watched labels; nil: any label
	On, Off float64
	Hold    time.Duration
}

// HysteresisFlags names the flags a Hysteresis was set from, and what
// would flicker, for Validate's errors.
type HysteresisFlags struct {
	When, On, Off, Hold string // e.g. "--when", "--on-score", "--off-score", "--hold"
	Steady              string // e.g. "the pin does not flicker"
}

// Validate checks h against the model's labels.
func (h *Hysteresis) Validate(labels []string, f HysteresisFlags) error {
	if !(h.On > 0 && h.On <= 1) {
		return fmt.Errorf("%s %v: want a probability in (0, 1]", f.On, h.On)
	}
	if !(h.Off >= 0 && h.Off < h.On) {
		return fmt.Errorf("%s %v: want 0 ≤ off-score < on-score (%v), so that %s", f.Off, h.Off, h.On, f.Steady)
	}
	if h.Hold < 0 {
		return fmt.Errorf("%s %v: want a duration ≥ 0", f.Hold, h.Hold)
	}
	return CheckLabels(f.When, h.When, labels)
}

// CheckLabels checks that every label of when (given with flag) is one of
// the model's labels.
func CheckLabels(flag string, when, labels []string) error {
	for _, w := range when {
		if !slices.Contains(labels, w) {
			return fmt.Errorf("%s %s: not a label of the model (labels: %s)", flag, w, LabelList(labels))
		}
	}
	return nil
}
