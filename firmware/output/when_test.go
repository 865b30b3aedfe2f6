package output

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vggedge/vggedge/firmware/live"
	"github.com/vggedge/vggedge/infer/labels"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// --when names a label by its text, a comma-separated part of it or (for
// ImageNet's labels) a WordNet synonym or id, in any case; Validate turns
// the names into the model's labels once, and the pin then follows the
// frames that carry that label — and not a neighbour's.
func TestGPIOWhenMatchesLabel(t *testing.T) {
	imagenet := labels.ImageNetNames()
	user := []string{"person", "tabby, tabby cat", "dog"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		model []string
		when  []string
		want  []string // When after Validate
		label string   // the label the frames carry
	}{
		{imagenet, []string{"tabby cat"}, []string{"tabby"}, "tabby"},
		{imagenet, []string{"Tabby"}, []string{"tabby"}, "tabby"},
		{imagenet, []string{"TABBY CAT"}, []string{"tabby"}, "tabby"},
		{imagenet, []string{"n02123045"}, []string{"tabby"}, "tabby"},
		{imagenet, []string{"tabby, tabby cat"}, []string{"tabby"}, "tabby"},
		{imagenet, []string{"golden_retriever", "tabby cat"}, []string{"golden retriever", "tabby"}, "tabby"},
		{user, []string{"tabby cat"}, []string{"tabby, tabby cat"}, "tabby, tabby cat"},
		{user, []string{"Tabby"}, []string{"tabby, tabby cat"}, "tabby, tabby cat"},
		{user, []string{"PERSON"}, []string{"person"}, "person"},
	} {
		name := strings.Join(tt.when, ",")
		c := GPIOConfig{Pin: "GPIO17", Hysteresis: Hysteresis{When: tt.when, On: 0.8, Off: 0.5}}
		if err := c.Validate(tt.model); err != nil {
			t.Fatalf("--when %s: %v", name, err)
		}
		if !slices.Equal(c.When, tt.want) {
			t.Errorf("--when %s resolved to %q, want %q", name, c.When, tt.want)
		}
		pin := &recordingPin{Pin: gpiotest.Pin{N: "GPIO17", Num: 17}}
		s, err := NewGPIO("GPIO17", pin, c)
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		// A neighbour scores high, then the label, then nothing.
		for i, top := range [][]live.Class{
			{{Label: "tiger cat", Score: 0.95}, {Label: tt.label, Score: 0.04}},
			{{Label: tt.label, Score: 0.9}, {Label: "tiger cat", Score: 0.05}},
			{{Label: "tiger cat", Score: 0.97}, {Label: "Egyptian cat", Score: 0.02}},
		} {
			r := live.Result{Time: base.Add(time.Duration(i) * 30 * time.Millisecond), Truth: -1, Top: top}
			if err := s.Write(&r); err != nil {
				t.Fatal(err)
			}
			got.WriteString(map[gpio.Level]string{gpio.High: "H", gpio.Low: "L"}[pin.Read()])
		}
		if got.String() != "LHL" {
			t.Errorf("--when %s: pin %s, want LHL", name, got.String())
		}
		// The per-frame path stays allocation-free with resolved labels.
		r := live.Result{Time: base, Truth: -1, Top: []live.Class{{Label: "tiger cat", Score: 0.9}, {Label: tt.label, Score: 0.1}}}
		if n := testing.AllocsPerRun(100, func() { r.Time = r.Time.Add(time.Millisecond); _ = s.Write(&r) }); n != 0 {
			t.Errorf("--when %s: Write allocates %v times a frame", name, n)
		}
	}
}

func TestWhenUnknownLabel(t *testing.T) {
	for _, tt := range []struct {
		model []string
		when  string
		want  []string
	}{
		{labels.ImageNetNames(), "cat", []string{"--when cat: not a label of the model; close: tabby (tabby, tabby cat); tiger cat;", "(labels: tench, goldfish"}},
		{labels.ImageNetNames(), "person", []string{"--when person: not a label of the model"}},
		{[]string{"0", "1", "7"}, "cat", []string{"--when cat: not a label of the model (labels: 0, 1, 7)"}},
	} {
		c := GPIOConfig{Pin: "GPIO17", Hysteresis: Hysteresis{When: []string{tt.when}, On: 0.8, Off: 0.5}}
		err := c.Validate(tt.model)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("--when %s: err %v, want %q", tt.when, err, w)
			}
		}
	}
}

func TestNameList(t *testing.T) {
	var l NameList
	for _, tt := range []struct {
		set  string
		want []string
	}{{"person,dog", []string{"person", "dog"}}, {"tabby cat", []string{"tabby cat"}}, {"", nil}} {
		if err := l.Set(tt.set); err != nil || !slices.Equal(l, tt.want) {
			t.Errorf("Set(%q) = %q, %v; want %q", tt.set, l, err, tt.want)
		}
	}
	l.SetItems([]string{"tabby, tabby cat", "dog"})
	if !slices.Equal(l, NameList{"tabby, tabby cat", "dog"}) || l.String() != "tabby, tabby cat,dog" {
		t.Errorf("SetItems: %q", l)
	}
}
