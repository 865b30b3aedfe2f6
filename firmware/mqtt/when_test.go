package mqtt

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer/labels"
)

// --mqtt-when and --snapshot-when name labels as --when does: 'tabby cat'
// and 'Tabby' are ImageNet's label "tabby"; the detector then publishes
// events of frames labelled "tabby" and not of a neighbour's, and only
// those take a snapshot.
func TestMQTTWhenMatchesImageNetLabel(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	AddFlags(fs, &f)
	if err := fs.Parse([]string{"--mqtt", "mqtt://127.0.0.1:1", "--device-id", "porch",
		"--mqtt-when", "tabby cat,Golden Retriever", "--snapshot-dir", t.TempDir(), "--snapshot-when", "Tabby"}); err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFromFlags(&f, labels.ImageNetNames(), "vgg16", "test")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tabby", "golden retriever"}; !slices.Equal(c.detector.When, want) {
		t.Errorf("--mqtt-when resolved to %q, want %q", c.detector.When, want)
	}
	d := newChangeDetector(c.detector)
	var got []string
	for _, r := range resultsOf([]string{"tiger cat:0.95", "tabby:0.9,tiger cat:0.05", "tabby:0.9", "tiger cat:0.97", "golden retriever:0.85"}) {
		if ev, ok := d.observe(&r); ok {
			got = append(got, ev.State+" "+ev.Label)
		}
	}
	if want := []string{"appeared tabby", "disappeared ", "appeared golden retriever"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	s, err := newSnapshotter(*c.snap)
	if err != nil {
		t.Fatal(err)
	}
	if !s.wants("tabby") || s.wants("golden retriever") || s.wants("tiger cat") {
		t.Errorf("--snapshot-when Tabby: wants tabby %v, golden retriever %v, tiger cat %v; want true, false, false",
			s.wants("tabby"), s.wants("golden retriever"), s.wants("tiger cat"))
	}

	f.when = nil
	f.snapWhen = []string{"cat"}
	if _, err := ConfigFromFlags(&f, labels.ImageNetNames(), "vgg16", "test"); err == nil ||
		!strings.HasPrefix(err.Error(), "--snapshot-when cat: not a label of the model; close: tabby (tabby, tabby cat); tiger cat") {
		t.Errorf("--snapshot-when cat: err %v", err)
	}
}
