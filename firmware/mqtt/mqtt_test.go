package mqtt

import (
	"github.com/vggedge/vggedge/firmware/live"
	"github.com/vggedge/vggedge/firmware/mqtt/mqtttest"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/vmihailenco/msgpack/v5"
)

// The tests run a real MQTT broker in-process (mqtttest).

// testSinkConfig is a sink config with short reconnect delays.
func testSinkConfig(b *mqtttest.Broker, id string) Config {
	return Config{
		broker: b.URL(), deviceID: id,
		detector:   detectorConfig{On: 0.8, Off: 0.5},
		queueDepth: 256, model: "digits", board: "test",
		backoffMin: 20 * time.Millisecond, backoffMax: 200 * time.Millisecond,
		packetTimeout: 10 * time.Second, drainTimeout: 10 * time.Second,
		// A broker shutting down may accept a connection it never serves.
		connectTimeout: 2 * time.Second,
	}
}

func newTestSink(t *testing.T, c Config, stats live.StatsSource) (*Sink, *syncLog) {
	t.Helper()
	lg := &syncLog{}
	m, err := NewSink(c, stats, lg.logf, lg.logf)
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

// Availability: "online" (retained) once connected; "offline" (retained)
// after a clean Close; and the broker's last will "offline" when the
// connection dies without a DISCONNECT (here: the client's socket closed
// under it), after which the sink reconnects and says "online" again.
func TestMQTTAvailabilityAndWill(t *testing.T) {
	b := mqtttest.Start(t, "127.0.0.1:0")
	m, lg := newTestSink(t, testSinkConfig(b, "avail"), nil)
	topic := "vggedge/avail/availability"
	b.WaitPayload(t, topic, PayloadOnline, 0)
	if got := b.Retained(topic); got != PayloadOnline {
		t.Fatalf("retained availability %q, want online", got)
	}

	n := len(b.On(topic))
	m.cm.TerminateConnectionForTest() // the TCP connection closes; no DISCONNECT is sent
	b.WaitPayload(t, topic, PayloadOffline, n)
	b.WaitPayload(t, topic, PayloadOnline, n+1)
	got := b.On(topic)[n:]
	if string(got[0].Payload) != PayloadOffline {
		t.Errorf("after the connection died: %q first, want the will %q", got[0].Payload, PayloadOffline)
	}
	// The "online" above may be the first connection's, sent again on the
	// resumed session before connectionUp counts the new connection (a CI
	// run saw 1 here, then "reconnected … connection 2" in the log): wait
	// for the count rather than assume the order.
	deadline := time.Now().Add(10 * time.Second)
	for m.connects.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c := m.connects.Load(); c < 2 {
		t.Errorf("%d connections after 10 s, want a reconnect", c)
	}

	n = len(b.On(topic))
	m.Close()
	b.WaitPayload(t, topic, PayloadOffline, n)
	if got := b.Retained(topic); got != PayloadOffline {
		t.Errorf("retained availability after Close %q, want offline", got)
	}
	t.Logf("log:\n%s", lg)
}

// The issue: a steady label over 500 frames publishes exactly one event;
// a label flickering around the threshold publishes no extra events
// (hysteresis), nor does noise shorter than the dwell.
func TestMQTTEventsOnChangeOnly(t *testing.T) {
	b := mqtttest.Start(t, "127.0.0.1:0")
	for i, tt := range []struct {
		name   string
		cfg    detectorConfig
		frames []string
		want   []string // "state label"
	}{
		{"steady", detectorConfig{On: 0.8, Off: 0.5}, repeat("7:0.95", 500), []string{"appeared 7"}},
		{"flicker around on-score", detectorConfig{On: 0.8, Off: 0.5},
			cat(repeat("7:0.85", 1), flicker(499, "7:0.79", "7:0.81", "7:0.55")), []string{"appeared 7"}},
		{"flicker around off-score with dwell", detectorConfig{On: 0.8, Off: 0.5, Hold: 300 * time.Millisecond},
			cat(repeat("7:0.9", 20), flicker(480, "7:0.9", "7:0.45", "7:0.52", "7:0.3")), []string{"appeared 7"}},
		{"noise shorter than the dwell", detectorConfig{On: 0.8, Off: 0.5, Hold: 300 * time.Millisecond},
			flicker(500, "7:0.95", "", "", "7:0.9", "1:0.99"), nil},
		{"appear, change, disappear", detectorConfig{On: 0.8, Off: 0.5, When: []string{"7", "1"}},
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
			b.WaitPayload(t, "vggedge/"+id+"/availability", PayloadOffline, 0)
			var got []string
			for _, e := range parseEvents(t, b.On("vggedge/"+id+"/event")) {
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
	b := mqtttest.Start(t, "127.0.0.1:0")
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
			b.WaitFor(t, "2 events", func() bool { return len(b.On(topic)) == 2 })
			var got EventPayload
			last := b.On(topic)[1].Payload
			var err error
			if c.msgpack {
				err = msgpack.Unmarshal(last, &got)
			} else {
				err = json.Unmarshal(last, &got)
			}
			if err != nil {
				t.Fatalf("%q: %v", last, err)
			}
			want := EventPayload{State: "changed", Label: "1", Score: 0.875, Previous: "7", Frame: 5,
				TS: rs[5].Time.Format(TimeLayout), Since: rs[5].Time.Format(TimeLayout)}
			if got != want {
				t.Errorf("event\n got %+v\nwant %+v", got, want)
			}
			if b.Retained(topic) == "" {
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
	b := mqtttest.Start(t, "127.0.0.1:0")
	addr := b.Addr
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
	b.WaitFor(t, "the first 50 events out or dropped", func() bool {
		p := m.published.Load()
		return p+m.Dropped() == 50 && uint64(len(b.On(topic))) >= p
	})
	before := b.On(topic)

	d1 := m.Dropped()

	b.Stop()
	// Writes while the broker is gone return at once, whatever happens.
	t0 := time.Now()
	write(50, 350)
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("300 writes with the broker down took %v: the sink blocks", d)
	}

	b2 := mqtttest.Start(t, addr)
	b2.WaitFor(t, "the events queued during the outage", func() bool { return m.published.Load()+m.Dropped() == 350 })
	// Of the 300 events of the outage, the queue (8) and the publish in
	// flight (1) hold the newest; the rest are dropped.
	if d2 := m.Dropped() - d1; d2 < 300-9 || d2 > 300 {
		t.Errorf("%d of the 300 events of the outage dropped, want 291..300", d2)
	}
	write(350, 400)
	m.Close()
	b2.WaitPayload(t, "vggedge/restart/availability", PayloadOffline, 0)

	var frames2 []uint64
	for _, e := range parseEvents(t, append(before, b2.On(topic)...)) {
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
		len(before), len(b2.On(topic)), len(uniq), dropped, lg)
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
	b := mqtttest.Start(t, "127.0.0.1:0")
	c := testSinkConfig(b, "ha")
	c.discovery = true
	c.detector.When = []string{"7", "jack-o'-lantern"}
	newTestSink(t, c, nil)
	b.WaitFor(t, "3 discovery configs", func() bool {
		return len(b.On("homeassistant/sensor/vggedge_ha/label/config"))+len(b.On("homeassistant/binary_sensor/vggedge_ha/seen_7/config"))+
			len(b.On("homeassistant/binary_sensor/vggedge_ha/seen_jack-o_-lantern/config")) == 3
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
		raw := b.Retained(topic)
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
	b := mqtttest.Start(t, "127.0.0.1:0")
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

// --mqtt-password-file gives the password; every log line about the
// broker — paho's connect errors hold the URL as given — shows it as xxxxx.
func TestMQTTPasswordFileRedacted(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("topsecret\r\nignored\n"), 0o600)
	f := Flags{url: "mqtt://vggedge@127.0.0.1:" + strconv.Itoa(freePort(t)), passwordFile: pw, format: "json", on: 0.8, off: 0.5, queue: 4}
	c, err := ConfigFromFlags(&f, []string{"0", "1"}, "digits", "test")
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
		if got := RedactURL(raw); got != want {
			t.Errorf("redactRawURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// Fuzz --mqtt: never a panic; whatever is accepted names a host and port
// and a scheme autopaho dials.
func FuzzParseBrokerURL(f *testing.F) {
	for _, s := range []string{"mqtt://h", "mqtts://u:p@h:8883", "mqtt://[::1]:1883", "mqtt://h/x", "tcp://h", "mqtt://%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, _, err := ParseBrokerURL(raw, "")
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
func subscribe(t *testing.T, u *url.URL, filter string, backoff time.Duration) *mqtttest.Broker {
	t.Helper()
	rec := mqtttest.NewRecorder()
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
				rec.Record(pr.Packet.Topic, pr.Packet.Payload)
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
func distinctFrames(t *testing.T, ms []mqtttest.Msg) (frames []uint64, inOrder bool) {
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

	c := Config{
		broker: u, deviceID: "mosq", detector: detectorConfig{On: 0.8, Off: 0.5}, queueDepth: 16,
		backoffMin: 20 * time.Millisecond, backoffMax: 200 * time.Millisecond,
		packetTimeout: 10 * time.Second, drainTimeout: 10 * time.Second, connectTimeout: 2 * time.Second,
	}
	m, lg := newTestSink(t, c, nil)
	avail, events := "vggedge/mosq/availability", "vggedge/mosq/event"
	rec.WaitPayload(t, avail, PayloadOnline, 0)

	n := len(rec.On(avail))
	m.cm.TerminateConnectionForTest()
	rec.WaitPayload(t, avail, PayloadOffline, n)
	rec.WaitPayload(t, avail, PayloadOnline, n+1)

	rs := resultsOf(flicker(40, "7:0.95", "1:0.95"))
	for i := range 10 {
		m.Write(&rs[i])
	}
	rec.WaitFor(t, "10 events", func() bool { return len(rec.On(events)) == 10 })

	broker.Process.Signal(syscall.SIGTERM)
	broker.Wait()
	for i := 10; i < 20; i++ {
		m.Write(&rs[i]) // queued: the broker is gone
	}
	startMosquitto(t, bin, port, dir)
	rec.WaitFor(t, "the 10 events queued while mosquitto was down", func() bool {
		f, _ := distinctFrames(t, rec.On(events))
		return len(f) >= 20
	})
	m.Close()
	rec.WaitPayload(t, avail, PayloadOffline, 0)

	frames, inOrder := distinctFrames(t, rec.On(events))
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
	c := Config{
		broker: u, deviceID: "mosqr", detector: detectorConfig{On: 0.8, Off: 0.5}, queueDepth: queue,
		backoffMin: 20 * time.Millisecond, backoffMax: 100 * time.Millisecond,
		packetTimeout: 10 * time.Second, drainTimeout: 10 * time.Second, connectTimeout: 2 * time.Second,
	}
	m, lg := newTestSink(t, c, nil)
	avail, events := "vggedge/mosqr/availability", "vggedge/mosqr/event"
	rec.WaitPayload(t, avail, PayloadOnline, 0)

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
		rec.WaitFor(t, what, func() bool {
			f, _ := distinctFrames(t, rec.On(events))
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
		f0, _ := distinctFrames(t, rec.On(events))
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

		f1, _ := distinctFrames(t, rec.On(events))
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
	rec.WaitPayload(t, avail, PayloadOffline, 0)
	frames, inOrder := distinctFrames(t, rec.On(events))
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
