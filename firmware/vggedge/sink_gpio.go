package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// gpioSink drives one output pin from the watched labels' score, with
// hysteresis: the pin goes High as soon as a watched label scores ≥ on, and
// goes Low only once the score has stayed below off (< on) for hold. A
// score between off and on changes nothing, so noise around one threshold
// cannot make the pin flicker; and since it always falls after hold below
// off, it never latches. A watched label missing from the top-k scores 0.
//
// Time is the frames' capture time, not the wall clock, so the behaviour
// depends only on the frames (and tests replay exact sequences).
type gpioSink struct {
	name    string
	pin     gpio.PinOut
	watch   []string // labels
	on, off float32
	hold    time.Duration

	high       bool
	below      bool      // in a run of frames below off while high
	belowSince time.Time // the first frame of that run
}

// gpioConfig is what --gpio, --when, --on-score, --off-score and --hold say.
type gpioConfig struct {
	pin     string
	when    []string
	on, off float64
	hold    time.Duration
}

func (c *gpioConfig) validate(labels []string) error {
	if c.pin == "" {
		if len(c.when) > 0 {
			return fmt.Errorf("--when needs --gpio PIN")
		}
		return nil
	}
	if len(c.when) == 0 {
		return fmt.Errorf("--gpio %s needs --when LABEL[,LABEL…]", c.pin)
	}
	if !(c.on > 0 && c.on <= 1) {
		return fmt.Errorf("--on-score %v: want a probability in (0, 1]", c.on)
	}
	if !(c.off >= 0 && c.off < c.on) {
		return fmt.Errorf("--off-score %v: want 0 ≤ off-score < on-score (%v), so that the pin does not flicker", c.off, c.on)
	}
	if c.hold < 0 {
		return fmt.Errorf("--hold %v: want a duration ≥ 0", c.hold)
	}
	for _, w := range c.when {
		if !contains(labels, w) {
			return fmt.Errorf("--when %s: not a label of the model (labels: %s)", w, labelList(labels))
		}
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// labelList shows the first few labels for an error message.
func labelList(labels []string) string {
	if len(labels) > 12 {
		return strings.Join(labels[:12], ", ") + fmt.Sprintf(", … (%d in all)", len(labels))
	}
	return strings.Join(labels, ", ")
}

// newGPIOSink drives pin (already resolved) per c; it starts Low.
func newGPIOSink(name string, pin gpio.PinOut, c gpioConfig) (*gpioSink, error) {
	if err := pin.Out(gpio.Low); err != nil {
		return nil, fmt.Errorf("gpio %s: set low: %w", name, err)
	}
	return &gpioSink{name: name, pin: pin, watch: c.when, on: float32(c.on), off: float32(c.off), hold: c.hold}, nil
}

// openGPIOPin finds a pin by name through periph: "17" means "GPIO17".
func openGPIOPin(name string) (string, gpio.PinOut, error) {
	if _, err := strconv.Atoi(name); err == nil {
		name = "GPIO" + name
	}
	if _, err := host.Init(); err != nil {
		return name, nil, fmt.Errorf("gpio %s: periph host init: %w", name, err)
	}
	p := gpioreg.ByName(name)
	if p == nil {
		var have []string
		for _, q := range gpioreg.All() {
			have = append(have, q.Name())
		}
		sort.Strings(have)
		found := "periph found none"
		if len(have) > 0 {
			found = "periph found " + labelList(have)
		}
		return name, nil, fmt.Errorf("gpio %s: no such pin on this board (%s)", name, found)
	}
	return name, p, nil
}

// score is the best score of a watched label in r's top-k.
func (s *gpioSink) score(r *Result) float32 {
	var best float32
	for _, c := range r.Top {
		if c.Score > best && contains(s.watch, c.Label) {
			best = c.Score
		}
	}
	return best
}

func (s *gpioSink) Write(r *Result) error {
	v := s.score(r)
	switch {
	case !s.high && v >= s.on:
		s.below = false
		return s.set(gpio.High)
	case s.high && v >= s.off:
		s.below = false
	case s.high: // below off
		if !s.below {
			s.below, s.belowSince = true, r.Time
		}
		if r.Time.Sub(s.belowSince) >= s.hold {
			s.below = false
			return s.set(gpio.Low)
		}
	}
	return nil
}

func (s *gpioSink) set(l gpio.Level) error {
	if err := s.pin.Out(l); err != nil {
		return fmt.Errorf("gpio %s: set %v: %w", s.name, l, err)
	}
	s.high = l == gpio.High
	return nil
}

// Close leaves the pin Low: a stopped classifier asserts nothing.
func (s *gpioSink) Close() error {
	return s.set(gpio.Low)
}
