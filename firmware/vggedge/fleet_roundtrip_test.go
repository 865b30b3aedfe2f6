package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/vggedge/vggedge/firmware/mqtt"
	"github.com/vggedge/vggedge/firmware/mqtt/mqtttest"
)

// The publisher (vggedge run --mqtt) and the reader (vggedge fleet) share
// one definition of the payloads, firmware/mqtt. This round trip holds
// them to it: run publishes, in JSON and in msgpack, through a real broker;
// every message it published is one fleet understands (none ignored); the
// stats reach fleet's table; and the last event — read by `vggedge fleet
// --json` from the broker's retained message — carries the label and
// score of the frame it names, exactly as run's own JSON line for that
// frame has them, the same in both formats (msgpack writes the score as a
// float32: fleet once dropped it, issue 14).
func TestFleetRoundTripFromRun(t *testing.T) {
	b := mqtttest.Start(t, "127.0.0.1:0")
	url := b.URL().String()
	type got struct {
		label, state string
		score        float32
		frame        uint64
	}
	var last []got
	var frames []string // the frame numbers each run classified
	for _, format := range []string{"json", "msgpack"} {
		id := "rt-" + format
		code, out, errOut := runLiveCLI(t, context.Background(), "--source", "bundled:digits?fps=0", "--max-frames", "1000",
			"--mqtt", url, "--device-id", id, "--mqtt-format", format, "--mqtt-stats-every", "100ms", "--quiet")
		if code != exitOK {
			t.Fatalf("%s: run exit %d: %s", format, code, errOut)
		}
		results := parseJSONLines(t, out)
		var fs []uint64
		for _, l := range results {
			fs = append(fs, *l.Frame)
		}
		frames = append(frames, fmt.Sprint(fs))

		// Every message run published, decoded by fleet's own code.
		s := newFleetState()
		var stats, events int
		for _, kind := range []string{mqtt.KindAvailability, mqtt.KindStats, mqtt.KindEvent} {
			for _, m := range b.On(mqtt.Topic(id, kind)) {
				if !s.handle(m.Topic, m.Payload) {
					t.Errorf("%s: fleet ignored %s %q", format, m.Topic, m.Payload)
				}
				stats += map[bool]int{true: 1}[kind == mqtt.KindStats]
				events += map[bool]int{true: 1}[kind == mqtt.KindEvent]
			}
		}
		if stats == 0 || events == 0 {
			t.Fatalf("%s: %d stats and %d events published; the test needs both", format, stats, events)
		}
		raw, err := json.Marshal(s.snapshot())
		if err != nil {
			t.Fatal(err)
		}
		d := parseFleetDoc(t, string(raw))
		if len(d.Devices) != 1 || d.Devices[0].ID != id || d.Devices[0].Model != "digits" || d.Devices[0].FPS == nil || *d.Devices[0].FPS <= 0 {
			t.Errorf("%s: fleet's view of the published messages: %s", format, raw)
		}

		// The retained event, as `vggedge fleet --json` reads it.
		code, fout, ferr := runCLI(t, "fleet", "--mqtt", url, "--json", "--wait", "1s")
		if code != exitOK {
			t.Fatalf("fleet: exit %d: %s", code, ferr)
		}
		var dev *struct {
			Frame uint64 `json:"frame"`
			fleetEventFields
		}
		for _, fd := range parseFleetDoc(t, fout).Devices {
			if fd.ID == id {
				if err := json.Unmarshal(fd.LastEvent, &dev); err != nil || dev == nil {
					t.Fatalf("%s: last_event %s: %v", format, fd.LastEvent, err)
				}
			}
		}
		if dev == nil {
			t.Fatalf("%s: device %s not in fleet's output:\n%s", format, id, fout)
		}
		// Find the frame's line by its number.
		line := slices.IndexFunc(results, func(l jsonLine) bool { return *l.Frame == dev.Frame })
		if line < 0 || dev.State == "disappeared" {
			t.Fatalf("%s: last event %+v: want an appeared or changed event of one of the %d frames", format, dev, len(results))
		}
		var want *float64
		for _, c := range results[line].Top {
			if c.Label == dev.Label {
				want = c.Score
			}
		}
		if want == nil || float32(*want) != float32(dev.Score) {
			t.Errorf("%s: fleet shows %s %.7g for frame %d; run's JSON line for it: %+v", format, dev.Label, dev.Score, dev.Frame, results[line].Top)
		}
		last = append(last, got{dev.Label, dev.State, float32(dev.Score), dev.Frame})
		t.Logf("%s: %d results, %d stats, %d events; fleet's last event: frame %d %s %s %.7g", format, len(results), stats, events, dev.Frame, dev.State, dev.Label, dev.Score)
	}
	// fps=0: the bundled source is not live, so no frame is dropped and
	// both runs classify the same 1000 frames.
	if frames[0] != frames[1] {
		t.Errorf("the two runs classified different frames")
	}
	if fmt.Sprint(last[0]) != fmt.Sprint(last[1]) {
		t.Errorf("the same frames give different last events: json %+v, msgpack %+v", last[0], last[1])
	}
}
