package output

import (
	"fmt"
	"strings"
	"time"

	"github.com/vggedge/vggedge/infer/labels"
)

// Hysteresis is the rule by which a stream of scores becomes a state that
// does not flicker, shared by the GPIO pin and MQTT events: a watched
// label becomes seen at a score ≥ On and stays seen while it scores ≥ Off
// (< On); a new state must last Hold, measured on the frames' capture
// times, before it counts.
type Hysteresis struct {
	When    []string // the watched labels (the model's own, once Validate resolved them); nil: any label
	On, Off float64
	Hold    time.Duration
}

// HysteresisFlags names the flags a Hysteresis was set from, and what
// would flicker, for Validate's errors.
type HysteresisFlags struct {
	When, On, Off, Hold string // e.g. "--when", "--on-score", "--off-score", "--hold"
	Steady              string // e.g. "the pin does not flicker"
}

// Validate checks h and resolves h.When into the model's labels (see
// ResolveLabels), so that the per-frame code compares plain strings.
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
	when, err := ResolveLabels(f.When, h.When, labels)
	if err != nil {
		return err
	}
	h.When = when
	return nil
}

// ResolveLabels turns the names of when (given with flag) into the
// model's labels they name: a label matches its whole text or any of its
// comma-separated parts, case-insensitively, and an ImageNet label also
// its WordNet synonyms and id ("tabby cat", "Tabby" and "n02123045" are
// the label "tabby"); see infer/labels. nil stays nil (any label). A name
// that is no label is an error naming flag and suggesting close labels.
func ResolveLabels(flag string, when, model []string) ([]string, error) {
	if len(when) == 0 {
		return nil, nil
	}
	return labels.NewSet(model).Resolve(flag, when)
}

// NameList is a flag holding label names (--when, --mqtt-when,
// --snapshot-when): on the command line a comma-separated list
// (--when person,dog; a label with a comma is given by one of its parts,
// --when 'tabby cat'); a config file's YAML list sets it item by item
// (SetItems), so an item may hold a comma. Each Set replaces the list.
type NameList []string

func (l *NameList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set splits s at commas; "" empties the list.
func (l *NameList) Set(s string) error {
	*l = nil
	if s != "" {
		*l = strings.Split(s, ",")
	}
	return nil
}

// SetItems sets the list to items, each one name whatever it holds.
func (l *NameList) SetItems(items []string) { *l = append(NameList(nil), items...) }
