package output

import (
	"github.com/vggedge/vggedge/firmware/live"
	"github.com/vggedge/vggedge/infer/labels"

	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// GPIO drives one output pin from the watched labels' score, with
// hysteresis: the pin goes High as soon as a watched label scores ≥ on, and
// goes Low only once the score has stayed below off (< on) for hold. A
// score between off and on changes nothing, so noise around one threshold
// cannot make the pin flicker; and since it always falls after hold below
// off, it never latches. A watched label missing from the top-k scores 0.
//
// Time is the frames' capture time, not the wall clock, so the behaviour
// depends only on the frames (and tests replay exact sequences).
type GPIO struct {
	name    string
	pin     gpio.PinOut
	watch   []string // labels
	on, off float32
	hold    time.Duration

	high       bool
	below      bool      // in a run of frames below off while high
	belowSince time.Time // the first frame of that run
}

// GPIOConfig is what --gpio, --when, --on-score, --off-score and --hold say.
type GPIOConfig struct {
	Pin string
	Hysteresis
}

// gpioFlags are the flags GPIOConfig's Hysteresis comes from.
var gpioFlags = HysteresisFlags{When: "--when", On: "--on-score", Off: "--off-score", Hold: "--hold", Steady: "the pin does not flicker"}

// Validate checks c against the model's labels; the errors name the flags.
func (c *GPIOConfig) Validate(labels []string) error {
	if c.Pin == "" {
		if len(c.When) > 0 {
			return fmt.Errorf("--when needs --gpio PIN")
		}
		return nil
	}
	if len(c.When) == 0 {
		return fmt.Errorf("--gpio %s needs --when LABEL[,LABEL…]", c.Pin)
	}
	return c.Hysteresis.Validate(labels, gpioFlags)
}

// LabelList shows the first few labels (or names) for an error message.
func LabelList(names []string) string { return labels.List(names) }

// NewGPIO drives pin (already resolved) per c; it starts Low.
func NewGPIO(name string, pin gpio.PinOut, c GPIOConfig) (*GPIO, error) {
	if err := pin.Out(gpio.Low); err != nil {
		return nil, fmt.Errorf("gpio %s: set low: %w", name, err)
	}
	return &GPIO{name: name, pin: pin, watch: c.When, on: float32(c.On), off: float32(c.Off), hold: c.Hold}, nil
}

// OpenGPIOPin finds a pin by name through periph: "17" means "GPIO17".
func OpenGPIOPin(name string) (string, gpio.PinOut, error) {
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
			found = "periph found " + LabelList(have)
		}
		return name, nil, fmt.Errorf("gpio %s: no such pin on this board (%s)", name, found)
	}
	return name, p, nil
}

// score is the best score of a watched label in r's top-k.
func (s *GPIO) score(r *live.Result) float32 {
	var best float32
	for _, c := range r.Top {
		if c.Score > best && slices.Contains(s.watch, c.Label) {
			best = c.Score
		}
	}
	return best
}

func (s *GPIO) Write(r *live.Result) error {
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

func (s *GPIO) set(l gpio.Level) error {
	if err := s.pin.Out(l); err != nil {
		return fmt.Errorf("gpio %s: set %v: %w", s.name, l, err)
	}
	s.high = l == gpio.High
	return nil
}

// Close leaves the pin Low: a stopped classifier asserts nothing.
func (s *GPIO) Close() error {
	return s.set(gpio.Low)
}
