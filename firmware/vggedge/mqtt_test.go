package main

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/vmihailenco/msgpack/v5"
)

// The tests run a real MQTT broker in-process: mochi-mqtt
// (github.com/mochi-mqtt/server/v2), whose inline client records every
// message published, in the order the broker delivers them.

// brokerMsg is one message the broker delivered to the recorder.
type brokerMsg struct {
	topic   string
	payload []byte
	at      time.Time
}

type testBroker struct {
	srv  *mqtt.Server
	addr string // host:port actually bound

	mu      sync.Mutex
	msgs    []brokerMsg
	changed chan struct{}
	stopped bool
}

// startBroker serves MQTT on addr ("127.0.0.1:0" for any port) and
// records every message on every topic.
func startBroker(t *testing.T, addr string) *testBroker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(l); err != nil {
		t.Fatalf("broker on %s: %v", addr, err)
	}
	b := &testBroker{srv: srv, addr: l.Address(), changed: make(chan struct{}, 1)}
	if err := srv.Subscribe("#", 1, b.record); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	return b
}

func (b *testBroker) record(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
	b.mu.Lock()
	b.msgs = append(b.msgs, brokerMsg{pk.TopicName, bytes.Clone(pk.Payload), time.Now()})
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

func (b *testBroker) stop() {
	b.mu.Lock()
	stopped := b.stopped
	b.stopped = true
	b.mu.Unlock()
	if !stopped {
		b.srv.Close()
	}
}

func (b *testBroker) url() *url.URL { return &url.URL{Scheme: "mqtt", Host: b.addr} }

// on returns the messages recorded on topic so far.
func (b *testBroker) on(topic string) []brokerMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []brokerMsg
	for _, m := range b.msgs {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits (generously: the machine is loaded) until done holds for
// the messages recorded so far.
func (b *testBroker) waitFor(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !done() {
		select {
		case <-b.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			b.mu.Lock()
			n := len(b.msgs)
			b.mu.Unlock()
			t.Fatalf("timed out waiting for %s (%d messages recorded)", what, n)
		}
	}
}

// waitPayload waits for a message on topic with this payload.
func (b *testBroker) waitPayload(t *testing.T, topic, payload string, after int) {
	t.Helper()
	b.waitFor(t, fmt.Sprintf("%q on %s", payload, topic), func() bool {
		ms := b.on(topic)
		for _, m := range ms[min(after, len(ms)):] {
			if string(m.payload) == payload {
				return true
			}
		}
		return false
	})
}

// retained is the broker's retained message on topic, "" when none.
func (b *testBroker) retained(topic string) string {
	for _, pk := range b.srv.Topics.Messages(topic) {
		return string(pk.Payload)
	}
	return ""
}

// testSinkConfig is a sink config with short reconnect delays.
func testSinkConfig(b *testBroker, id string) mqttConfig {
	return mqttConfig{
		broker: b.url(), deviceID: id,
		detector:   detectorConfig{on: 0.8, off: 0.5},
		queueDepth: 256, model: "digits", board: "test",
		backoffMin: 20 * time.Millisecond, backoffMax: 200 * time.Millisecond,
		packetTimeout: 10 * time.Second, drainTimeout: 10 * time.Second,
		// A broker shutting down may accept a connection it never serves.
		connectTimeout: 2 * time.Second,
	}
}

func newTestSink(t *testing.T, c mqttConfig, stats live.StatsSource) (*mqttSink, *syncLog) {
	t.Helper()
	lg := &syncLog{}
	m, err := newMQTTSink(c, stats, lg.logf, lg.logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, lg
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

func parseEvents(t *testing.T, ms []brokerMsg) []eventJSON {
	t.Helper()
	var evs []eventJSON
	for _, m := range ms {
		dec := json.NewDecoder(bytes.NewReader(m.payload))
		dec.DisallowUnknownFields()
		var e eventJSON
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("event %q: %v", m.payload, err)
		}
		if e.State == nil || e.Label == nil || e.Score == nil || e.Previous == nil || e.Frame == nil || e.TS == nil || e.Since == nil {
			t.Fatalf("event %q: a field is missing", m.payload)
		}
		if _, err := time.Parse(time.RFC3339Nano, *e.TS); err != nil {
			t.Fatalf("event %q: ts: %v", m.payload, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// Availability: "online" (retained) once connected; "offline" (retained)
// after a clean Close; and the broker's last will "offline" when the
// connection dies without a DISCONNECT (here: the client's socket closed
// under it), after which the sink reconnects and says "online" again.
func TestMQTTAvailabilityAndWill(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	m, lg := newTestSink(t, testSinkConfig(b, "avail"), nil)
	topic := "vggedge/avail/availability"
	b.waitPayload(t, topic, payloadOnline, 0)
	if got := b.retained(topic); got != payloadOnline {
		t.Fatalf("retained availability %q, want online", got)
	}

	n := len(b.on(topic))
	m.cm.TerminateConnectionForTest() // the TCP connection closes; no DISCONNECT is sent
	b.waitPayload(t, topic, payloadOffline, n)
	b.waitPayload(t, topic, payloadOnline, n+1)
	got := b.on(topic)[n:]
	if string(got[0].payload) != payloadOffline {
		t.Errorf("after the connection died: %q first, want the will %q", got[0].payload, payloadOffline)
	}
	if c := m.connects.Load(); c < 2 {
		t.Errorf("%d connections, want a reconnect", c)
	}

	n = len(b.on(topic))
	m.Close()
	b.waitPayload(t, topic, payloadOffline, n)
	if got := b.retained(topic); got != payloadOffline {
		t.Errorf("retained availability after Close %q, want offline", got)
	}
	t.Logf("log:\n%s", lg)
}

// The issue: a steady label over 500 frames publishes exactly one event;
// a label flickering around the threshold publishes no extra events
// (hysteresis), nor does noise shorter than the dwell.
func TestMQTTEventsOnChangeOnly(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	for i, tt := range []struct {
		name   string
		cfg    detectorConfig
		frames []string
		want   []string // "state label"
	}{
		{"steady", detectorConfig{on: 0.8, off: 0.5}, repeat("7:0.95", 500), []string{"appeared 7"}},
		{"flicker around on-score", detectorConfig{on: 0.8, off: 0.5},
			cat(repeat("7:0.85", 1), flicker(499, "7:0.79", "7:0.81", "7:0.55")), []string{"appeared 7"}},
		{"flicker around off-score with dwell", detectorConfig{on: 0.8, off: 0.5, dwell: 300 * time.Millisecond},
			cat(repeat("7:0.9", 20), flicker(480, "7:0.9", "7:0.45", "7:0.52", "7:0.3")), []string{"appeared 7"}},
		{"noise shorter than the dwell", detectorConfig{on: 0.8, off: 0.5, dwell: 300 * time.Millisecond},
			flicker(500, "7:0.95", "", "", "7:0.9", "1:0.99"), nil},
		{"appear, change, disappear", detectorConfig{on: 0.8, off: 0.5, when: []string{"7", "1"}},
			cat(repeat("", 10), repeat("7:0.9", 100), repeat("1:0.9", 100), repeat("0:0.99", 100)),
			[]string{"appeared 7", "changed 1", "disappeared "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("change%d", i)
			c := testSinkConfig(b, id)
			c.detector = tt.cfg
			m, _ := newTestSink(t, c, nil)
			for _, r := range resultsOf(tt.frames) {
				if err := m.Write(&r); err != nil {
					t.Fatal(err)
				}
			}
			m.Close()
			// "offline" is published after the queue drained: every event is in.
			b.waitPayload(t, "vggedge/"+id+"/availability", payloadOffline, 0)
			var got []string
			for _, e := range parseEvents(t, b.on("vggedge/"+id+"/event")) {
				got = append(got, *e.State+" "+*e.Label)
			}
			if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Errorf("events %q, want %q", got, tt.want)
			}
		})
	}
}

// flicker is n frames cycling through pattern.
func flicker(n int, pattern ...string) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = pattern[i%len(pattern)]
	}
	return s
}

// Event payload fields, in JSON and in msgpack.
func TestMQTTEventPayload(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	for _, format := range []string{"json", "msgpack"} {
		t.Run(format, func(t *testing.T) {
			c := testSinkConfig(b, "payload-"+format)
			c.msgpack = format == "msgpack"
			m, _ := newTestSink(t, c, nil)
			rs := resultsOf(cat(repeat("", 2), repeat("7:0.9", 3), repeat("1:0.875", 3)))
			for i := range rs {
				m.Write(&rs[i])
			}
			topic := "vggedge/payload-" + format + "/event"
			b.waitFor(t, "2 events", func() bool { return len(b.on(topic)) == 2 })
			var got eventPayload
			last := b.on(topic)[1].payload
			var err error
			if c.msgpack {
				err = msgpack.Unmarshal(last, &got)
			} else {
				err = json.Unmarshal(last, &got)
			}
			if err != nil {
				t.Fatalf("%q: %v", last, err)
			}
			want := eventPayload{State: "changed", Label: "1", Score: 0.875, Previous: "7", Frame: 5,
				TS: rs[5].Time.Format(tsLayout), Since: rs[5].Time.Format(tsLayout)}
			if got != want {
				t.Errorf("event\n got %+v\nwant %+v", got, want)
			}
			if b.retained(topic) == "" {
				t.Error("the event is not retained: a subscriber arriving later would not know the state")
			}
		})
	}
}

// The issue: the broker is killed mid-run and restarted on the same port.
// Writing never blocks meanwhile; the sink reconnects; the queued events
// arrive in order; the events that did not fit the queue are dropped
// (oldest first) and counted, so received + dropped = generated.
func TestMQTTBrokerRestart(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	addr := b.addr
	c := testSinkConfig(b, "restart")
	c.queueDepth = 8
	m, lg := newTestSink(t, c, nil)
	topic := "vggedge/restart/event"

	// Every frame alternates 7 and 1: every frame is an event.
	frames := flicker(400, "7:0.95", "1:0.95")
	rs := resultsOf(frames)
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := m.Write(&rs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 50)
	// A queue of 8 drops some of a burst of 50 even with the broker up.
	// mochi sends the PUBACK before it hands the message to subscribers:
	// wait until the recorder holds every event the sink saw acknowledged.
	b.waitFor(t, "the first 50 events out or dropped", func() bool {
		p := m.published.Load()
		return p+m.Dropped() == 50 && uint64(len(b.on(topic))) >= p
	})
	before := b.on(topic)

	d1 := m.Dropped()

	b.stop()
	// Writes while the broker is gone return at once, whatever happens.
	t0 := time.Now()
	write(50, 350)
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("300 writes with the broker down took %v: the sink blocks", d)
	}

	b2 := startBroker(t, addr)
	b2.waitFor(t, "the events queued during the outage", func() bool { return m.published.Load()+m.Dropped() == 350 })
	// Of the 300 events of the outage, the queue (8) and the publish in
	// flight (1) hold the newest; the rest are dropped.
	if d2 := m.Dropped() - d1; d2 < 300-9 || d2 > 300 {
		t.Errorf("%d of the 300 events of the outage dropped, want 291..300", d2)
	}
	write(350, 400)
	m.Close()
	b2.waitPayload(t, "vggedge/restart/availability", payloadOffline, 0)

	var frames2 []uint64
	for _, e := range parseEvents(t, append(before, b2.on(topic)...)) {
		frames2 = append(frames2, *e.Frame)
	}
	// QoS 1 is at least once: a message in flight when the broker died
	// may come twice. Drop repeats, then the order must be strict.
	seen := map[uint64]bool{}
	var uniq []uint64
	for _, f := range frames2 {
		if !seen[f] {
			seen[f] = true
			uniq = append(uniq, f)
		}
	}
	for i := 1; i < len(uniq); i++ {
		if uniq[i] <= uniq[i-1] {
			t.Fatalf("events out of order: frame %d after %d (%v)", uniq[i], uniq[i-1], uniq)
		}
	}
	dropped := m.Dropped()
	t.Logf("400 events: %d before the restart, %d after (%d distinct in all), %d dropped; log:\n%s",
		len(before), len(b2.on(topic)), len(uniq), dropped, lg)
	if uint64(len(uniq))+dropped != 400 {
		t.Errorf("%d events arrived + %d dropped != 400 generated", len(uniq), dropped)
	}
	if c := m.connects.Load(); c < 2 {
		t.Errorf("%d connections: the sink did not reconnect", c)
	}
	// The newest events survive the outage: the last frame written while
	// the broker was down arrived.
	if !seen[349] {
		t.Errorf("frame 349 (the newest while the broker was down) did not arrive; got %v", uniq)
	}
}

// Home Assistant discovery: parse the configs the broker retains.
func TestMQTTDiscovery(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	c := testSinkConfig(b, "ha")
	c.discovery = true
	c.detector.when = []string{"7", "jack-o'-lantern"}
	newTestSink(t, c, nil)
	b.waitFor(t, "3 discovery configs", func() bool {
		return len(b.on("homeassistant/sensor/vggedge_ha/label/config"))+len(b.on("homeassistant/binary_sensor/vggedge_ha/seen_7/config"))+
			len(b.on("homeassistant/binary_sensor/vggedge_ha/seen_jack-o_-lantern/config")) == 3
	})

	type device struct {
		Identifiers []string `json:"identifiers"`
		Name        string   `json:"name"`
	}
	type config struct {
		Name, UniqueID, StateTopic, ValueTemplate, AvailabilityTopic string
		PayloadAvailable, PayloadNotAvailable, PayloadOn, PayloadOff string
		Device                                                       device
	}
	parse := func(topic string) config {
		t.Helper()
		raw := b.retained(topic)
		if raw == "" {
			t.Fatalf("no retained config on %s", topic)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		var c config
		for key, dst := range map[string]*string{
			"name": &c.Name, "unique_id": &c.UniqueID, "state_topic": &c.StateTopic, "value_template": &c.ValueTemplate,
			"availability_topic": &c.AvailabilityTopic, "payload_available": &c.PayloadAvailable, "payload_not_available": &c.PayloadNotAvailable,
		} {
			if err := json.Unmarshal(m[key], dst); err != nil || *dst == "" {
				t.Errorf("%s: %s missing or not a string (%s)", topic, key, m[key])
			}
		}
		json.Unmarshal(m["payload_on"], &c.PayloadOn)
		json.Unmarshal(m["payload_off"], &c.PayloadOff)
		if err := json.Unmarshal(m["device"], &c.Device); err != nil {
			t.Errorf("%s: device: %v", topic, err)
		}
		return c
	}
	label := parse("homeassistant/sensor/vggedge_ha/label/config")
	seven := parse("homeassistant/binary_sensor/vggedge_ha/seen_7/config")
	jack := parse("homeassistant/binary_sensor/vggedge_ha/seen_jack-o_-lantern/config")
	ids := map[string]bool{}
	for _, c := range []config{label, seven, jack} {
		if c.StateTopic != "vggedge/ha/event" || c.AvailabilityTopic != "vggedge/ha/availability" ||
			c.PayloadAvailable != "online" || c.PayloadNotAvailable != "offline" {
			t.Errorf("%s: topics/payloads %+v", c.UniqueID, c)
		}
		if len(c.Device.Identifiers) != 1 || c.Device.Identifiers[0] != "vggedge_ha" {
			t.Errorf("%s: device %+v", c.UniqueID, c.Device)
		}
		ids[c.UniqueID] = true
	}
	if len(ids) != 3 {
		t.Errorf("unique_ids not distinct: %v", ids)
	}
	if seven.PayloadOn != "ON" || seven.PayloadOff != "OFF" || !strings.Contains(seven.ValueTemplate, "value_json.label == '7'") {
		t.Errorf("binary sensor 7: %+v", seven)
	}
	if !strings.Contains(jack.ValueTemplate, `'jack-o\'-lantern'`) {
		t.Errorf("binary sensor template does not escape the quote: %s", jack.ValueTemplate)
	}
}

// Write and ObservePicture cost nothing per frame while nothing changes.
func TestMQTTSinkNoAllocsPerFrame(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	c := testSinkConfig(b, "allocs")
	c.snap = &snapshotConfig{dir: t.TempDir()}
	m, _ := newTestSink(t, c, nil)
	r := resultsOf(repeat("7:0.95", 1))[0]
	f := grayFrame(64, 48, 0)
	m.ObservePicture(f)
	m.Write(&r) // the one event
	for range snapshotRing {
		m.ObservePicture(f) // every ring slot has grown
	}
	if n := testing.AllocsPerRun(500, func() {
		f.Seq++
		r.Frame++
		r.Time = r.Time.Add(frameStep)
		m.ObservePicture(f)
		if err := m.Write(&r); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per frame, want 0", n)
	}
}

// Stats every --mqtt-stats-every, through the real command: the loop's
// numbers (model, frames, fps, stage times) and the MQTT counters.
func TestRunMQTTStats(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, 1)
	go func() {
		_, _, errOut := runLiveCLI(t, ctx, "--source", "bundled:digits?fps=100", "--output", "jsonl:"+os.DevNull,
			"--mqtt", b.url().String(), "--device-id", "stats", "--mqtt-stats-every", "200ms", "--mqtt-when", "1")
		done <- errOut
	}()
	topic := "vggedge/stats/stats"
	b.waitFor(t, "5 stats messages", func() bool { return len(b.on(topic)) >= 5 })
	cancel()
	errOut := <-done
	ms := b.on(topic)
	var last statsPayload
	for i, msg := range ms {
		var s statsPayload
		if err := json.Unmarshal(msg.payload, &s); err != nil {
			t.Fatalf("stats %q: %v", msg.payload, err)
		}
		if s.Model != "digits" || s.Device != "stats" || s.Threads < 1 {
			t.Errorf("stats %d: %+v", i, s)
		}
		if i > 0 && s.Frames < last.Frames {
			t.Errorf("stats %d: frames went back from %d to %d", i, last.Frames, s.Frames)
		}
		last = s
	}
	if last.Frames == 0 || last.FPS <= 0 || last.StagesMs.Inference.Mean <= 0 || last.MQTT.Connects != 1 {
		t.Errorf("last stats: %+v", last)
	}
	if last.MQTT.Published == 0 {
		t.Errorf("no events counted as published in %+v (digit 1 comes up in the bundled digits)", last.MQTT)
	}
	// Cadence: the ticker's period, read from the broker's receive times
	// (median, so one slow tick on a loaded machine does not matter).
	var gaps []time.Duration
	for i := 1; i < len(ms); i++ {
		gaps = append(gaps, ms[i].at.Sub(ms[i-1].at))
	}
	med := medianDuration(gaps)
	t.Logf("%d stats, median gap %v; last %+v", len(ms), med, last)
	if med < 100*time.Millisecond || med > 2*time.Second {
		t.Errorf("median gap between stats %v, want about 200ms", med)
	}
	if !strings.Contains(errOut, "mqtt: ") || !strings.Contains(errOut, "events published") {
		t.Errorf("no mqtt summary in the log:\n%s", errOut)
	}
}

func medianDuration(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// Through `vggedge run --source idx:… --mqtt …`: every frame of an idx
// set is classified, so the events can be checked against the jsonl
// results frame by frame: an "appeared 7" only at a frame where 7 scores
// ≥ on, a "disappeared" only where it scores < off, and between events
// nothing that should have fired.
func TestRunMQTTIDX(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	dir := t.TempDir()
	out := dir + "/results.jsonl"
	code, _, errOut := runLiveCLI(t, context.Background(), "--source", "idx:"+gomnistDir(t), "--max-frames", "1000",
		"--output", "jsonl:"+out, "--mqtt", b.url().String(), "--device-id", "idx", "--mqtt-when", "7")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b.waitPayload(t, "vggedge/idx/availability", payloadOffline, 0)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := parseJSONLines(t, string(raw))
	score7 := func(frame uint64) float64 {
		for _, c := range lines[frame].Top {
			if c.Label == "7" {
				return *c.Score
			}
		}
		return 0
	}
	evs := parseEvents(t, b.on("vggedge/idx/event"))
	if len(evs) < 20 {
		t.Fatalf("%d events over 1000 digits, want one per run of 7s (about 100)", len(evs))
	}
	seen, next := false, uint64(0)
	for _, e := range evs {
		f := *e.Frame
		// Frames since the previous event did not change the state.
		for g := next; g < f; g++ {
			if s := score7(g); (!seen && s >= 0.8) || (seen && s < 0.5) {
				t.Fatalf("frame %d: 7 scores %.3f while seen=%v, but no event until frame %d", g, s, seen, f)
			}
		}
		switch s := score7(f); {
		case !seen && *e.State == eventAppeared && *e.Label == "7" && s >= 0.8:
		case seen && *e.State == eventDisappeared && *e.Previous == "7" && s < 0.5:
		default:
			t.Fatalf("event %s %q at frame %d (7 scores %.3f, seen=%v)", *e.State, *e.Label, f, s, seen)
		}
		seen, next = !seen, f+1
	}
	if !strings.Contains(errOut, "sink-dropped 0,") {
		t.Errorf("results were dropped before the sinks, the check above is void:\n%s", errOut)
	}
	t.Logf("%d events over 1000 frames", len(evs))
}

// The issue: stop the broker mid-run, keep classifying, restart it on the
// same port — through the real command on a live (paced) source.
func TestRunMQTTBrokerRestart(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	addr := b.addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, 1)
	go func() {
		_, _, errOut := runLiveCLI(t, ctx, "--source", "bundled:digits?fps=100", "--output", "jsonl:"+os.DevNull,
			"--mqtt", b.url().String(), "--device-id", "rr", "--mqtt-when", "1", "--mqtt-queue", "4", "--mqtt-stats-every", "0")
		done <- errOut
	}()
	topic := "vggedge/rr/event"
	b.waitFor(t, "4 events", func() bool { return len(b.on(topic)) >= 4 })
	b.stop()
	before := parseEvents(t, b.on(topic))
	lastBefore := *before[len(before)-1].Frame
	// Down for 1.5 s: ~150 frames at 100 fps, ~30 events for a queue of 4.
	time.Sleep(1500 * time.Millisecond)
	b2 := startBroker(t, addr)
	b2.waitFor(t, "events queued during the outage", func() bool { return len(b2.on(topic)) >= 4 })
	cancel()
	errOut := <-done
	after := parseEvents(t, b2.on(topic))
	var frames []uint64
	for _, e := range append(before, after...) {
		frames = append(frames, *e.Frame)
	}
	for i := 1; i < len(frames); i++ {
		if frames[i] < frames[i-1] {
			t.Fatalf("events out of order: %v", frames)
		}
	}
	if *after[0].Frame <= lastBefore+50 {
		t.Errorf("first event after the restart is frame %d, last before %d: the loop did not keep classifying through the outage", *after[0].Frame, lastBefore)
	}
	m := regexp.MustCompile(`mqtt: (\d+) events published, (\d+) dropped`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("no mqtt summary in the log:\n%s", errOut)
	}
	dropped, _ := strconv.Atoi(m[2])
	if dropped == 0 {
		t.Errorf("no events counted as dropped with a queue of 4 over a 1.5 s outage:\n%s", errOut)
	}
	if !strings.Contains(errOut, "reconnected") {
		t.Errorf("no reconnect in the log:\n%s", errOut)
	}
	t.Logf("events: %d before, %d after (first after: frame %d, last before: %d), %d dropped", len(before), len(after), *after[0].Frame, lastBefore, dropped)
}

// The process dies (SIGKILL, no chance to say goodbye): the broker
// publishes the last will "offline". A SIGTERM is a clean stop that
// publishes "offline" itself and exits 0.
func TestRunMQTTLastWillProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	b := startBroker(t, "127.0.0.1:0")
	for _, tt := range []struct {
		id  string
		sig syscall.Signal
	}{{"killed", syscall.SIGKILL}, {"stopped", syscall.SIGTERM}} {
		t.Run(tt.id, func(t *testing.T) {
			args := []string{"--source", "bundled:digits?fps=30", "--output", "jsonl:" + os.DevNull,
				"--mqtt", b.url().String(), "--device-id", tt.id, "--mqtt-stats-every", "0"}
			cmd := exec.Command(os.Args[0], "-test.run=^TestMQTTHelperProcess$")
			argsJSON, _ := json.Marshal(args)
			cmd.Env = append(os.Environ(), "VGGEDGE_MQTT_HELPER="+string(argsJSON))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			topic := "vggedge/" + tt.id + "/availability"
			b.waitPayload(t, topic, payloadOnline, 0)
			cmd.Process.Signal(tt.sig)
			err := cmd.Wait()
			b.waitPayload(t, topic, payloadOffline, 0)
			if got := b.retained(topic); got != payloadOffline {
				t.Errorf("retained availability %q, want offline", got)
			}
			if tt.sig == syscall.SIGTERM {
				if err != nil {
					t.Errorf("SIGTERM: %v; stderr:\n%s", err, stderr.String())
				}
				if !strings.Contains(stderr.String(), "events published") {
					t.Errorf("no clean mqtt shutdown in the log:\n%s", stderr.String())
				}
			}
		})
	}
}

// TestMQTTHelperProcess is `vggedge run` in a subprocess for
// TestRunMQTTLastWillProcess and TestRunOutputsSurviveKill; it does
// nothing in a normal test run.
func TestMQTTHelperProcess(t *testing.T) {
	args := os.Getenv("VGGEDGE_MQTT_HELPER")
	if args == "" {
		t.Skip("helper process of TestRunMQTTLastWillProcess")
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		t.Fatal(err)
	}
	code, err := runRun(argv, io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// Bad MQTT and snapshot flags: exit 2 and one line naming the flag.
func TestRunMQTTFlagErrors(t *testing.T) {
	ca := t.TempDir() + "/ca.pem"
	os.WriteFile(ca, []byte("not a certificate"), 0o644)
	pwFile, emptyFile := t.TempDir()+"/pw", t.TempDir()+"/empty"
	os.WriteFile(pwFile, []byte("secret\n"), 0o600)
	os.WriteFile(emptyFile, []byte("\n"), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--mqtt", "http://host"}, `--mqtt http://host: scheme "http": want mqtt://`},
		{[]string{"--mqtt", "mqtt://"}, `--mqtt mqtt:: want mqtt://[user:pass@]host[:port]`},
		{[]string{"--mqtt", "mqtt://h/topic"}, `--mqtt mqtt://h/topic: want`},
		{[]string{"--mqtt", "mqtt://u:secret@h", "--mqtt-ca", ca}, `--mqtt-ca ` + ca + `: only for mqtts:// brokers, --mqtt is mqtt://u:xxxxx@h:1883`},
		{[]string{"--mqtt", "mqtts://h", "--mqtt-ca", ca}, `--mqtt-ca ` + ca + `: no PEM certificate in it`},
		{[]string{"--mqtt", "mqtts://h", "--mqtt-ca", ca + ".missing"}, `--mqtt-ca: open ` + ca + `.missing: no such file`},
		{[]string{"--mqtt", "mqtt://h", "--device-id", "Kitchen Pi"}, `--device-id "Kitchen Pi": want 1..64 of a-z, 0-9, _ and -`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-format", "xml"}, `--mqtt-format "xml": want json or msgpack`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-format", "msgpack", "--mqtt-discovery"}, `--mqtt-discovery needs --mqtt-format json`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-when", "cat"}, `--mqtt-when cat: not a label of the model`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-off-score", "0.9"}, `--mqtt-off-score 0.9: want 0 ≤ off-score < on-score (0.8)`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-queue", "0"}, `--mqtt-queue 0: want 1..65536`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-stats-every", "-1s"}, `--mqtt-stats-every -1s: want a duration ≥ 0`},
		{[]string{"--mqtt", "mqtt://u:secret@[::1"}, `--mqtt "mqtt://u:xxxxx@[::1": missing ']' in host`},
		{[]string{"--mqtt", "u:secret@host"}, `--mqtt u:xxxxx@host: scheme "u"`},
		{[]string{"--mqtt-password-file", pwFile}, `--mqtt-password-file needs --mqtt URL`},
		{[]string{"--mqtt", "mqtt://u:secret@h", "--mqtt-password-file", pwFile}, `--mqtt-password-file ` + pwFile + `: --mqtt mqtt://u:xxxxx@h:1883 has a password already`},
		{[]string{"--mqtt", "mqtt://u@h", "--mqtt-password-file", pwFile + ".missing"}, `--mqtt-password-file: open ` + pwFile + `.missing: no such file`},
		{[]string{"--mqtt", "mqtt://u@h", "--mqtt-password-file", emptyFile}, `--mqtt-password-file ` + emptyFile + `: empty first line`},
		{[]string{"--mqtt-discovery"}, `--mqtt-discovery needs --mqtt URL`},
		{[]string{"--mqtt-when", "7"}, `--mqtt-when needs --mqtt URL or --snapshot-dir DIR`},
		{[]string{"--snapshot-when", "7"}, `--snapshot-when needs --snapshot-dir DIR`},
		{[]string{"--snapshot-dir", t.TempDir(), "--snapshot-when", "cat"}, `--snapshot-when cat: not a label of the model`},
		{[]string{"--snapshot-dir", t.TempDir(), "--snapshot-max-files", "-1"}, `--snapshot-max-files -1: want ≥ 0`},
	} {
		args := append([]string{"--source", "bundled:digits?fps=0", "--max-frames", "1"}, tt.args...)
		code, _, errOut := runLiveCLI(t, context.Background(), args...)
		if code != exitBadInput || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 2 and %q", tt.args, code, errOut, tt.want)
		}
		if strings.Contains(errOut, "secret") {
			t.Errorf("%q: the password is in the log:\n%s", tt.args, errOut)
		}
	}
}

// --mqtt-password-file gives the password; every log line about the
// broker — paho's connect errors hold the URL as given — shows it as xxxxx.
func TestMQTTPasswordFileRedacted(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("topsecret\r\nignored\n"), 0o600)
	f := mqttFlags{url: "mqtt://vggedge@127.0.0.1:" + strconv.Itoa(freePort(t)), passwordFile: pw, format: "json", on: 0.8, off: 0.5, queue: 4}
	c, err := mqttConfigFromFlags(&f, []string{"0", "1"}, "digits", "test")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.broker.User.Password(); p != "topsecret" || c.broker.User.Username() != "vggedge" {
		t.Fatalf("broker user %v, want vggedge with the file's first line", c.broker.User)
	}
	c.backoffMin, c.backoffMax, c.connectTimeout = 10*time.Millisecond, 20*time.Millisecond, time.Second
	m, lg := newTestSink(t, *c, nil)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(lg.String(), "attempts so far"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no connect error logged in 30 s:\n%s", lg)
		}
	}
	m.Close()
	if l := lg.String(); strings.Contains(l, "topsecret") || !strings.Contains(l, "vggedge:xxxxx@127.0.0.1") {
		t.Errorf("want the password redacted in every line:\n%s", l)
	}
}

func TestRedactRawURL(t *testing.T) {
	for raw, want := range map[string]string{
		"mqtt://u:pw@h:1":   "mqtt://u:xxxxx@h:1",
		"mqtt://u:pw@[::1":  "mqtt://u:xxxxx@[::1",
		"u:pw@h":            "u:xxxxx@h",
		"mqtt://u@h":        "mqtt://u@h",
		"mqtt://h/a:b@c":    "mqtt://h/a:b@c",
		"mqtt://u:p@w@h%zz": "mqtt://u:xxxxx@h%zz",
		"not a URL: pw@h":   "not a URL:xxxxx@h", // when in doubt, hide
	} {
		if got := redactRawURL(raw); got != want {
			t.Errorf("redactRawURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// A broker that is not there at start does not fail the run: the frames
// are classified, the events dropped and counted, and the log says why.
func TestRunMQTTBrokerAbsent(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	addr := b.addr
	b.stop()
	code, out, errOut := runLiveCLI(t, context.Background(), "--source", "idx:"+gomnistDir(t), "--max-frames", "300",
		"--mqtt", "mqtt://"+addr, "--mqtt-queue", "2", "--mqtt-stats-every", "0")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != 300 {
		t.Errorf("%d results, want 300", n)
	}
	sc := bufio.NewScanner(strings.NewReader(errOut))
	var refused, summary bool
	for sc.Scan() {
		refused = refused || strings.Contains(sc.Text(), "connection refused")
		summary = summary || regexp.MustCompile(`mqtt: 0 events published, [1-9]\d* dropped`).MatchString(sc.Text())
	}
	if !refused || !summary {
		t.Errorf("want the refused connection and the dropped events in the log:\n%s", errOut)
	}
}

// Fuzz --mqtt: never a panic; whatever is accepted names a host and port
// and a scheme autopaho dials.
func FuzzParseBrokerURL(f *testing.F) {
	for _, s := range []string{"mqtt://h", "mqtts://u:p@h:8883", "mqtt://[::1]:1883", "mqtt://h/x", "tcp://h", "mqtt://%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, _, err := parseBrokerURL(raw, "")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("%q: multi-line error %q", raw, err)
			}
			return
		}
		if (u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Hostname() == "" || u.Port() == "" {
			t.Errorf("%q accepted as %v", raw, u)
		}
	})
}

// mosquittoPath finds Debian's broker (apt package mosquitto); tests
// that need it skip without it, except under CI=true where it must be
// installed.
func mosquittoPath(t *testing.T) string {
	t.Helper()
	return requireTool(t, "mosquitto")
}

// startMosquitto runs mosquitto on 127.0.0.1:port, persisting its
// sessions in dir (so that a restarted broker still holds the test
// subscriber's subscription and queues its messages). Started as root,
// mosquitto drops to user mosquitto, which cannot write a t.TempDir():
// "user root" keeps it able to save its database there. It saves after
// every change (autosave_interval 1 with autosave_on_changes), so even a
// SIGKILL loses no subscription or queued message it had acknowledged
// well before.
func startMosquitto(t *testing.T, bin string, port int, dir string) *exec.Cmd {
	t.Helper()
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("user root\nlistener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n"+
		"autosave_on_changes true\nautosave_interval 1\nmax_queued_messages 100000\n", port, dir)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	stderr := &syncLog{}
	cmd.Stderr = stderrWriter{stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if s := stderr.String(); strings.Contains(s, "Error") {
			t.Errorf("mosquitto on port %d logged an error:\n%s", port, s)
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto on %s: %v\n%s", addr, err, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stderrWriter collects a child's stderr in a syncLog (the child writes
// from its own goroutine).
type stderrWriter struct{ l *syncLog }

func (w stderrWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.b.Write(p)
}

// subscribe records every message on filter through a real MQTT client
// with a persistent session from its first connection (CleanStart=0 and
// a session expiry: a broker keeps, and queues for, only such a session),
// which also resubscribes after a reconnect. It retries every backoff, so
// a test can make the sink reconnect to a restarted broker first.
func subscribe(t *testing.T, u *url.URL, filter string, backoff time.Duration) *testBroker {
	t.Helper()
	rec := &testBroker{changed: make(chan struct{}, 1), stopped: true}
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 30, CleanStartOnInitialConnection: false,
		SessionExpiryInterval: 3600, // the broker queues for us while we reconnect
		ReconnectBackoff:      autopaho.NewConstantBackoff(backoff),
		ConnectTimeout:        2 * time.Second,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
		},
		ClientConfig: paho.ClientConfig{
			ClientID: "test-subscriber-" + u.Port(),
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				rec.record(nil, packets.Subscription{}, packets.Packet{TopicName: pr.Packet.Topic, Payload: pr.Packet.Payload})
				return true, nil
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		cm.Disconnect(dctx)
		cancel()
	})
	return rec
}

// distinctFrames is the frames of the events in ms, each once (QoS 1 is
// at least once: a message in flight when a broker died may come twice),
// and whether they came in strictly increasing order.
func distinctFrames(t *testing.T, ms []brokerMsg) (frames []uint64, inOrder bool) {
	t.Helper()
	seen := map[uint64]bool{}
	inOrder = true
	for _, e := range parseEvents(t, ms) {
		f := *e.Frame
		if seen[f] {
			continue
		}
		if len(frames) > 0 && f < frames[len(frames)-1] {
			inOrder = false
		}
		seen[f] = true
		frames = append(frames, f)
	}
	return frames, inOrder
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The same story against Debian's mosquitto: availability, the last will
// when the connection dies, and a broker stopped (SIGTERM) and restarted
// on the same port while events are written: the sink reconnects (before
// the subscriber does) and the queued events arrive in order.
func TestMQTTMosquitto(t *testing.T) {
	bin := mosquittoPath(t)
	port := freePort(t)
	dir := t.TempDir()
	broker := startMosquitto(t, bin, port, dir)
	u := &url.URL{Scheme: "mqtt", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	rec := subscribe(t, u, "vggedge/mosq/#", 500*time.Millisecond)

	c := mqttConfig{
		broker: u, deviceID: "mosq", detector: detectorConfig{on: 0.8, off: 0.5}, queueDepth: 16,
		backoffMin: 20 * time.Millisecond, backoffMax: 200 * time.Millisecond,
		packetTimeout: 10 * time.Second, drainTimeout: 10 * time.Second, connectTimeout: 2 * time.Second,
	}
	m, lg := newTestSink(t, c, nil)
	avail, events := "vggedge/mosq/availability", "vggedge/mosq/event"
	rec.waitPayload(t, avail, payloadOnline, 0)

	n := len(rec.on(avail))
	m.cm.TerminateConnectionForTest()
	rec.waitPayload(t, avail, payloadOffline, n)
	rec.waitPayload(t, avail, payloadOnline, n+1)

	rs := resultsOf(flicker(40, "7:0.95", "1:0.95"))
	for i := range 10 {
		m.Write(&rs[i])
	}
	rec.waitFor(t, "10 events", func() bool { return len(rec.on(events)) == 10 })

	broker.Process.Signal(syscall.SIGTERM)
	broker.Wait()
	for i := 10; i < 20; i++ {
		m.Write(&rs[i]) // queued: the broker is gone
	}
	startMosquitto(t, bin, port, dir)
	rec.waitFor(t, "the 10 events queued while mosquitto was down", func() bool {
		f, _ := distinctFrames(t, rec.on(events))
		return len(f) >= 20
	})
	m.Close()
	rec.waitPayload(t, avail, payloadOffline, 0)

	frames, inOrder := distinctFrames(t, rec.on(events))
	if len(frames) != 20 || !inOrder || frames[0] != 0 || frames[19] != 19 {
		t.Errorf("events of frames %v, want 0..19 in order", frames)
	}
	if m.Dropped() != 0 {
		t.Errorf("%d dropped with a queue of 16 for 10 events", m.Dropped())
	}
	if !strings.Contains(lg.String(), "session resumed: true") {
		t.Errorf("the sink's session did not survive the broker's restart:\n%s", lg)
	}
	t.Logf("log:\n%s", lg)
}

// Debian's mosquitto stopped (SIGTERM) and killed (SIGKILL), by turns, and
// restarted on the same port while events are written; the subscriber
// reconnects well after the sink. Each round: events with the broker up,
// an outage with fewer events than the queue holds (none may be lost),
// and in the last round an outage with more (the oldest are dropped and
// counted). Received + dropped = generated, in order, every round.
// VGGEDGE_MOSQ_ROUNDS and VGGEDGE_MOSQ_DOWN (a duration) make it longer.
func TestMQTTMosquittoRestarts(t *testing.T) {
	bin := mosquittoPath(t)
	rounds, down := 4, 300*time.Millisecond
	if v := os.Getenv("VGGEDGE_MOSQ_ROUNDS"); v != "" {
		rounds, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("VGGEDGE_MOSQ_DOWN"); v != "" {
		down, _ = time.ParseDuration(v)
	}
	port := freePort(t)
	dir := t.TempDir()
	broker := startMosquitto(t, bin, port, dir)
	u := &url.URL{Scheme: "mqtt", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	rec := subscribe(t, u, "vggedge/mosqr/#", 500*time.Millisecond)
	const queue = 16
	c := mqttConfig{
		broker: u, deviceID: "mosqr", detector: detectorConfig{on: 0.8, off: 0.5}, queueDepth: queue,
		backoffMin: 20 * time.Millisecond, backoffMax: 100 * time.Millisecond,
		packetTimeout: 10 * time.Second, drainTimeout: 10 * time.Second, connectTimeout: 2 * time.Second,
	}
	m, lg := newTestSink(t, c, nil)
	avail, events := "vggedge/mosqr/availability", "vggedge/mosqr/event"
	rec.waitPayload(t, avail, payloadOnline, 0)

	const upEvents, shortOutage, longOutage = 5, queue - 2, 3 * queue
	rs := resultsOf(flicker(rounds*(upEvents+longOutage), "7:0.95", "1:0.95"))
	next := 0
	write := func(n int) {
		for range n {
			if err := m.Write(&rs[next]); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	// settled: every event generated so far arrived or was dropped.
	settled := func(what string) {
		rec.waitFor(t, what, func() bool {
			f, _ := distinctFrames(t, rec.on(events))
			return uint64(len(f))+m.Dropped() == uint64(next)
		})
	}
	t.Logf("round  signal  down     events  received  dropped  session resumed")
	for r := range rounds {
		sig, sigName := syscall.SIGTERM, "TERM"
		if r%2 == 1 {
			sig, sigName = syscall.SIGKILL, "KILL"
		}
		gen0, drop0 := next, m.Dropped()
		resumed0 := strings.Count(lg.String(), "session resumed: true")
		f0, _ := distinctFrames(t, rec.on(events))
		write(upEvents)
		settled(fmt.Sprintf("round %d: %d events with the broker up", r, upEvents))

		broker.Process.Signal(sig)
		broker.Wait()
		t0 := time.Now()
		outage := shortOutage
		if r == rounds-1 {
			outage = longOutage
		}
		write(outage)
		time.Sleep(down - time.Since(t0)) // the outage's length, not synchronisation
		broker = startMosquitto(t, bin, port, dir)
		settled(fmt.Sprintf("round %d: the %d events of the outage (%v)", r, outage, sig))

		f1, _ := distinctFrames(t, rec.on(events))
		got, dropped := len(f1)-len(f0), m.Dropped()-drop0
		resumed := strings.Count(lg.String(), "session resumed: true") > resumed0
		t.Logf("%5d  %-6s  %-7v  %6d  %8d  %7d  %t", r, sigName, down, next-gen0, got, dropped, resumed)
		if !resumed {
			t.Errorf("round %d: the sink's session did not survive the broker's restart (%v)", r, sigName)
		}
		if outage < queue && dropped != 0 {
			t.Errorf("round %d: %d dropped in an outage of %d events with a queue of %d", r, dropped, outage, queue)
		}
		if outage > queue+1 && (dropped < uint64(outage-queue-1) || dropped > uint64(outage-queue)) {
			t.Errorf("round %d: %d dropped in an outage of %d events, want %d..%d (the queue and the publish in flight hold the newest)",
				r, dropped, outage, outage-queue-1, outage-queue)
		}
	}
	m.Close()
	rec.waitPayload(t, avail, payloadOffline, 0)
	frames, inOrder := distinctFrames(t, rec.on(events))
	if !inOrder {
		t.Errorf("events out of order: %v", frames)
	}
	if uint64(len(frames))+m.Dropped() != uint64(next) {
		t.Errorf("%d events arrived + %d dropped != %d generated", len(frames), m.Dropped(), next)
	}
	if len(frames) == 0 || frames[len(frames)-1] != uint64(next-1) {
		t.Errorf("the newest event (frame %d) did not arrive: %v", next-1, frames)
	}
	t.Logf("%d events: %d received, %d dropped; log:\n%s", next, len(frames), m.Dropped(), lg)
}

// Snapshots through the real command, without a broker: each event of
// --snapshot-when saves the picture (28x28 digits), the log names it,
// and rotation keeps the newest --snapshot-max-files.
func TestRunSnapshots(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runLiveCLI(t, context.Background(), "--source", "bundled:digits?fps=100", "--max-frames", "300",
		"--output", "jsonl:"+os.DevNull, "--mqtt-when", "1,7", "--snapshot-dir", dir, "--snapshot-when", "1", "--snapshot-max-files", "4")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	re := regexp.MustCompile(`event: (appeared|changed|disappeared) (\S+) \([0-9.]+\) at frame (\d+)(?:, snapshot (\S+))?`)
	var names []string
	var exact, events int
	for _, m := range re.FindAllStringSubmatch(errOut, -1) {
		events++
		wantSnap := m[1] != eventDisappeared && m[2] == "1"
		if (m[4] != "") != wantSnap {
			t.Errorf("%q: snapshot %q, want one only for 1 appearing or changing to 1", m[0], m[4])
		}
		if m[4] == "" {
			continue
		}
		names = append(names, m[4])
		var snapFrame uint64
		fmt.Sscanf(m[4][strings.Index(m[4], "-f")+2:], "%d", &snapFrame)
		frame, _ := strconv.ParseUint(m[3], 10, 64)
		if snapFrame < frame {
			t.Errorf("%q: the snapshot shows an older frame than the event's", m[0])
		}
		if snapFrame == frame {
			exact++
		}
	}
	if len(names) < 5 {
		t.Fatalf("%d snapshots over %d events, want more than 4 to see rotation:\n%s", len(names), events, errOut)
	}
	var have []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		have = append(have, e.Name())
		if w, h, _ := decodeJPEGFile(t, filepath.Join(dir, e.Name())); w != 28 || h != 28 {
			t.Errorf("%s: %dx%d, want the 28x28 digit", e.Name(), w, h)
		}
	}
	if want := names[len(names)-4:]; strings.Join(have, " ") != strings.Join(want, " ") {
		t.Errorf("folder holds %q, want the newest 4 %q", have, want)
	}
	t.Logf("%d events, %d snapshots, %d of the event's own frame", events, len(names), exact)
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"source pipe:ffmpeg -i rtsp://admin:hunter2@cam/x -f rawvideo -": "source pipe:ffmpeg -i rtsp://admin:xxxxx@cam/x -f rawvideo -",
		"gocv:rtsp://a:b@1.2.3.4:554/s and mqtt://u:p@w@h:1883":          "gocv:rtsp://a:xxxxx@1.2.3.4:554/s and mqtt://u:xxxxx@h:1883",
		"mqtt://u@h:1883 http://h/a:b@c":                                 "mqtt://u@h:1883 http://h/a:b@c",
		"want mqtt://[user:pass@]host[:port]":                            "want mqtt://[user:pass@]host[:port]",
		"rtsp://admin:p%40ss:w0rd@cam":                                   "rtsp://admin:xxxxx@cam",
		"no url":                                                         "no url",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// A log line quoting something from outside (a child's stderr, a broker's
// reason string) reaches the terminal with its escapes escaped.
func TestRunLogEscapes(t *testing.T) {
	var b bytes.Buffer
	newRunLog(&b, false).warnf("camera said %q… raw: %s", "x", "\x1b]0;owned\x07 and rtsp://a:b@c")
	if got := b.String(); strings.ContainsAny(got[:len(got)-1], "\x1b\x07\n") || !strings.Contains(got, `\x1b]0;owned\a and rtsp://a:xxxxx@c`) {
		t.Errorf("log line %q", got)
	}
}
