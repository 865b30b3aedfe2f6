package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"image/jpeg"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vggedge/vggedge/firmware/mqtt/mqtttest"
)

// syncLog collects log lines from any goroutine.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// stderrWriter collects a child's stderr in a syncLog (the child writes
// from its own goroutine).
type stderrWriter struct{ l *syncLog }

func (w stderrWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.b.Write(p)
}

// eventJSON is the event payload as a consumer parses it; every field
// must be present.
type eventJSON struct {
	State    *string  `json:"state"`
	Label    *string  `json:"label"`
	Score    *float64 `json:"score"`
	Previous *string  `json:"previous"`
	Frame    *uint64  `json:"frame"`
	TS       *string  `json:"ts"`
	Since    *string  `json:"since"`
	Snapshot string   `json:"snapshot"`
}

func parseEvents(t *testing.T, ms []mqtttest.Msg) []eventJSON {
	t.Helper()
	var evs []eventJSON
	for _, m := range ms {
		dec := json.NewDecoder(bytes.NewReader(m.Payload))
		dec.DisallowUnknownFields()
		var e eventJSON
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("event %q: %v", m.Payload, err)
		}
		if e.State == nil || e.Label == nil || e.Score == nil || e.Previous == nil || e.Frame == nil || e.TS == nil || e.Since == nil {
			t.Fatalf("event %q: a field is missing", m.Payload)
		}
		if _, err := time.Parse(time.RFC3339Nano, *e.TS); err != nil {
			t.Fatalf("event %q: ts: %v", m.Payload, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// decodeJPEGFile decodes a snapshot and returns its size and mean level.
func decodeJPEGFile(t *testing.T, path string) (w, h int, mean float64) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := img.Bounds()
	var sum float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			sum += float64(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
		}
	}
	return r.Dx(), r.Dy(), sum / float64(r.Dx()*r.Dy())
}
