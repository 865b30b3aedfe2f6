package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/vggedge/vggedge/firmware/mqtt"
	"github.com/vmihailenco/msgpack/v5"
)

// startFleetBroker serves MQTT on a free loopback port with an in-process
// mochi broker (which also publishes, as its inline client) and returns
// it with its mqtt:// URL.
func startFleetBroker(t *testing.T) (*mochi.Server, string) {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "fleet", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, "mqtt://" + l.Address()
}

// fleetDoc is fleet --json's document as a reader parses it.
type fleetDoc struct {
	Broker      string  `json:"broker"`
	CollectS    float64 `json:"collected_s"`
	Online      int     `json:"online"`
	Offline     int     `json:"offline"`
	Ignored     uint64  `json:"ignored_messages"`
	LastIgnored string  `json:"last_ignored"`
	Devices     []struct {
		ID           string          `json:"id"`
		Availability string          `json:"availability"`
		FPS          *float64        `json:"fps"`
		LatencyMs    *float64        `json:"latency_ms"`
		TempC        *float64        `json:"temp_c"`
		Model        string          `json:"model"`
		Board        string          `json:"board"`
		Stats        json.RawMessage `json:"stats"`
		LastEvent    json.RawMessage `json:"last_event"` // the payload as published: see lastEvent
		LastSeen     time.Time       `json:"last_seen"`
	} `json:"devices"`
	Generated time.Time `json:"generated"`
}

// fleetEventFields are the event fields the tests look at.
type fleetEventFields struct {
	Label string  `json:"label"`
	State string  `json:"state"`
	Score float64 `json:"score"`
}

func lastEvent(t *testing.T, raw json.RawMessage) *fleetEventFields {
	t.Helper()
	if raw == nil || string(raw) == "null" {
		return nil
	}
	var e fleetEventFields
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("last_event %s: %v", raw, err)
	}
	return &e
}

func parseFleetDoc(t *testing.T, out string) fleetDoc {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var d fleetDoc
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("fleet --json output %q: %v", out, err)
	}
	if dec.More() {
		t.Fatalf("fleet --json printed more than one document: %q", out)
	}
	return d
}

// fleetPublisher plays devices: it publishes their stats and events every
// interval (as vggedge run does every --mqtt-stats-every) until stopped.
func fleetPublisher(t *testing.T, srv *mochi.Server, every time.Duration, msgs map[string][]byte) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			for topic, payload := range msgs {
				if err := srv.Publish(topic, payload, false, 0); err != nil {
					t.Errorf("publish %s: %v", topic, err)
				}
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// fleet --json shows retained availability, the latest stats and event
// (a JSON one and a msgpack one), counts payloads it cannot read, and
// ignores topics that are not a device's.
func TestFleetJSON(t *testing.T) {
	srv, url := startFleetBroker(t)
	for id, state := range map[string]string{"dev-a": "online", "dev-b": "offline", "dev-c": "online"} {
		if err := srv.Publish("vggedge/"+id+"/availability", []byte(state), true, 1); err != nil {
			t.Fatal(err)
		}
	}
	evB, err := msgpack.Marshal(map[string]any{"state": "disappeared", "label": "", "previous": "3", "score": 0.31, "frame": 9})
	if err != nil {
		t.Fatal(err)
	}
	stop := fleetPublisher(t, srv, 100*time.Millisecond, map[string][]byte{
		// The stats vggedge run publishes (firmware/mqtt.go), trimmed.
		"vggedge/dev-a/stats": []byte(`{"ts":"2026-01-02T03:04:05Z","device":"dev-a","model":"digits","fps":12.5,"stages_ms":{"latency":{"mean":41,"p50":40.5,"p99":60}},"temp_c":51.2}`),
		"vggedge/dev-a/event": []byte(`{"state":"appeared","label":"7","score":0.93,"previous":"","frame":42,"ts":"2026-01-02T03:04:05Z"}`),
		"vggedge/dev-b/event": evB,
		"vggedge/dev-c/stats": []byte(`{"fps":3,"stages_ms":{"latency":{"mean":7,"p50":null}},"temp_c":null}`),
		// Not understood: counted, never fatal.
		"vggedge/dev-a/availability-x": []byte("x"),
		"vggedge/dev-d/stats":          []byte("not json"),
		"vggedge/dev-e/availability":   []byte("maybe"),
	})
	defer stop()

	code, out, errOut := runCLI(t, "fleet", "--mqtt", url, "--json", "--wait", "1500ms")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	d := parseFleetDoc(t, out)
	if d.Online != 2 || d.Offline != 1 || len(d.Devices) != 3 || d.Broker != url || d.CollectS != 1.5 {
		t.Fatalf("online %d offline %d devices %d broker %q collected %v; want 2, 1, 3, %q, 1.5:\n%s", d.Online, d.Offline, len(d.Devices), d.Broker, d.CollectS, url, out)
	}
	if d.Ignored < 2 {
		t.Errorf("ignored %d messages, want ≥ 2 (bad stats, bad availability)", d.Ignored)
	}
	if !strings.HasPrefix(d.LastIgnored, "vggedge/") || !strings.Contains(d.LastIgnored, ": not ") {
		t.Errorf("last_ignored %q, want the topic and why", d.LastIgnored)
	}
	a, b, c := d.Devices[0], d.Devices[1], d.Devices[2]
	if a.ID != "dev-a" || b.ID != "dev-b" || c.ID != "dev-c" {
		t.Fatalf("devices %s, %s, %s; want sorted dev-a, dev-b, dev-c", a.ID, b.ID, c.ID)
	}
	if a.Availability != "online" || a.FPS == nil || *a.FPS != 12.5 || a.LatencyMs == nil || *a.LatencyMs != 40.5 ||
		a.TempC == nil || *a.TempC != 51.2 || a.Model != "digits" || !strings.Contains(string(a.Stats), `"p99": 60`) || time.Since(a.LastSeen) > time.Minute {
		t.Errorf("dev-a: %+v", a)
	}
	if e := lastEvent(t, a.LastEvent); e == nil || e.Label != "7" || e.State != "appeared" || e.Score != 0.93 {
		t.Errorf("dev-a last event %s", a.LastEvent)
	}
	if e := lastEvent(t, b.LastEvent); b.Availability != "offline" || b.FPS != nil || string(b.Stats) != "null" || e == nil || e.State != "disappeared" || e.Score != 0.31 {
		t.Errorf("dev-b (msgpack event, no stats): %+v", b)
	}
	if c.FPS == nil || *c.FPS != 3 || c.LatencyMs == nil || *c.LatencyMs != 7 || c.TempC != nil {
		t.Errorf("dev-c (null p50 and temperature): %+v", c)
	}
}

// lockedBuffer is a bytes.Buffer written by fleet and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Without a terminal the live table is plain text, printed when something
// changed; it follows a device going offline; a signal (the context)
// stops it with status 0.
func TestFleetTable(t *testing.T) {
	srv, url := startFleetBroker(t)
	if err := srv.Publish("vggedge/porch/availability", []byte("online"), true, 1); err != nil {
		t.Fatal(err)
	}
	stop := fleetPublisher(t, srv, 200*time.Millisecond, map[string][]byte{
		"vggedge/porch/stats": []byte(`{"fps":14.25,"stages_ms":{"latency":{"p50":33.3}},"temp_c":48.5}`),
		"vggedge/porch/event": []byte(`{"state":"changed","label":"cat","previous":"dog","score":0.875,"ts":"2026-01-02T03:04:05Z"}`),
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := fleetLive(ctx, []string{"--mqtt", url}, &out)
		done <- result{code, err}
	}()
	waitOutput := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s in 30 s; output:\n%s", what, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	row := regexp.MustCompile(`(?m)^porch\s+online\s+cat changed 0\.88 at \d\d:\d\d:\d\d\s+14\.2\s+33\.3 ms\s+48\.5 °C\s+\d+s ago$`)
	waitOutput("row for porch", func(s string) bool { return row.MatchString(s) })
	if s := out.String(); strings.Contains(s, "\x1b[") || !strings.Contains(s, "DEVICE  STATE") || !strings.Contains(s, "1 online, 0 offline, 1 devices") {
		t.Errorf("table without a terminal:\n%q", s)
	}
	stop()
	if err := srv.Publish("vggedge/porch/availability", []byte("offline"), true, 1); err != nil {
		t.Fatal(err)
	}
	waitOutput("porch offline", func(s string) bool { return strings.Contains(s, "0 online, 1 offline, 1 devices") })
	cancel()
	select {
	case r := <-done:
		if r.code != exitOK || r.err != nil {
			t.Errorf("stopped: exit %d, %v", r.code, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("fleet did not stop within 30 s of its context")
	}
}

// Bad flags exit 2 with one line; a broker that is not there exits 1 at
// once (no retry loop for a one-shot --json).
func TestFleetErrors(t *testing.T) {
	ca := writeConfig(t, "not a certificate\n")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitBadInput, "--mqtt URL is required"},
		{[]string{"--mqtt", "http://x"}, exitBadInput, `--mqtt http://x: scheme "http": want mqtt://[user:pass@]host[:port] or mqtts://`},
		{[]string{"--mqtt", "broker.local"}, exitBadInput, `--mqtt broker.local: scheme "": want mqtt://`},
		{[]string{"--mqtt", "mqtt://x", "--wait", "0s"}, exitBadInput, "--wait 0s: want a duration in (0, 1h]"},
		{[]string{"--mqtt", "mqtt://x", "--mqtt-ca", ca}, exitBadInput, "only for mqtts:// brokers"},
		{[]string{"--mqtt", "mqtts://x", "--mqtt-ca", ca}, exitBadInput, "no PEM certificate in it"},
		{[]string{"--mqtt", "mqtts://x", "--mqtt-ca", "/nonexistent.pem"}, exitBadInput, "--mqtt-ca: open /nonexistent.pem"},
		{[]string{"--mqtt", "mqtt://127.0.0.1:1", "--json"}, 3, "broker mqtt://127.0.0.1:1: "},
		{[]string{"--mqtt", "mqtt://u:secret@127.0.0.1:1", "--json"}, exitFleetFailed, "broker mqtt://u@127.0.0.1:1: "},
		{[]string{"--mqtt", "mqtt://x", "extra"}, exitBadInput, `unexpected argument "extra"`},
	} {
		code, out, errOut := runCLI(t, append([]string{"fleet"}, tt.args...)...)
		if code != tt.code || out != "" || !strings.HasPrefix(errOut, "vggedge fleet: ") || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and a line with %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
		if strings.Contains(errOut, "secret") {
			t.Errorf("%v: the password is printed: %q", tt.args, errOut)
		}
	}
}

// Required by the issue: ten vggedge processes (a built binary, distinct
// device ids) publish to one broker; vggedge fleet --json (the same
// binary) shows all ten online, then the one killed with SIGKILL offline
// (the broker publishes its last will), the other nine still online.
func TestFleetTenProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs ten processes")
	}
	bin := buildVggedge(t)
	_, url := startFleetBroker(t)
	source := "idx:" + gomnistDir(t) + "?loop=1"
	const n = 10
	procs := make([]*exec.Cmd, n)
	stderrs := make([]*lockedBuffer, n)
	for i := range procs {
		stderrs[i] = &lockedBuffer{}
		cmd := exec.Command(bin, "run", "--source", source, "--mqtt", url, "--device-id", fmt.Sprintf("dev-%d", i),
			"--threads", "1", "--mqtt-stats-every", "1s", "--mqtt-when", "7", "--quiet")
		cmd.Stdout = nil // results to /dev/null
		cmd.Stderr = stderrs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Ten busy loops on a small machine: let the broker and fleet
		// have the CPU first.
		syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 19)
		procs[i] = cmd
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.ProcessState == nil {
				p.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, p := range procs {
			if p.ProcessState == nil {
				p.Wait()
			}
		}
	})

	// fleet polls until want holds (or 45 s pass).
	fleet := func(what string, want func(fleetDoc) bool) fleetDoc {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			cmd := exec.Command(bin, "fleet", "--mqtt", url, "--json", "--wait", "1500ms")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("vggedge fleet: %v: %s", err, stderr.String())
			}
			d := parseFleetDoc(t, string(out))
			if want(d) {
				return d
			}
			if time.Now().After(deadline) {
				for i, s := range stderrs {
					t.Logf("dev-%d stderr: %s", i, s.String())
				}
				t.Fatalf("%s: not within 45 s; last:\n%s", what, out)
			}
		}
	}
	state := func(d fleetDoc) map[string]string {
		m := map[string]string{}
		for _, dev := range d.Devices {
			if dev.FPS != nil && *dev.FPS > 0 {
				m[dev.ID] = dev.Availability
			} else {
				m[dev.ID] = dev.Availability + " (no stats in the window)"
			}
		}
		return m
	}
	d := fleet("all ten online with stats", func(d fleetDoc) bool {
		m := state(d)
		for i := range n {
			if m[fmt.Sprintf("dev-%d", i)] != "online" {
				return false
			}
		}
		return d.Online == n && len(d.Devices) == n
	})
	t.Logf("ten online: %v", state(d))

	const victim = 3
	if err := procs[victim].Process.Kill(); err != nil { // SIGKILL: no clean offline, only the will
		t.Fatal(err)
	}
	procs[victim].Wait()
	d = fleet("dev-3 offline, nine online", func(d fleetDoc) bool {
		m := state(d)
		for i := range n {
			want := "online"
			if i == victim {
				want = "offline"
			}
			if !strings.HasPrefix(m[fmt.Sprintf("dev-%d", i)], want) {
				return false
			}
		}
		return d.Online == n-1 && d.Offline == 1
	})
	t.Logf("after SIGKILL of dev-%d: %v", victim, state(d))
	for i, p := range procs {
		if i != victim && p.ProcessState != nil {
			t.Errorf("dev-%d exited early: %v; stderr: %s", i, p.ProcessState, stderrs[i].String())
		}
	}
}

// The device table parses any payload without panicking and keeps its
// limits.
func FuzzFleetHandle(f *testing.F) {
	f.Add("vggedge/a/stats", []byte(`{"fps":1,"stages_ms":{"latency":{"p50":2}},"temp_c":3}`))
	f.Add("vggedge/a/event", []byte(`{"state":"appeared","label":"7","score":0.9,"ts":"2026-01-02T03:04:05Z"}`))
	f.Add("vggedge/a/event", []byte{0x81, 0xa5, 's', 't', 'a', 't', 'e', 0xa1, 'x'})
	f.Add("vggedge/a/availability", []byte("online"))
	f.Add("vggedge/a/stats", []byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add("vggedge/a\x1b[2J/event", []byte{0x81, 0xa5, 'l', 'a', 'b', 'e', 'l', 0xa2, 0x1b, '['})
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		s := newFleetState()
		ok := s.handle(topic, payload)
		snap := s.snapshot()
		if ok != (len(snap.Devices) == 1) || (!ok && snap.Ignored != 1) {
			t.Fatalf("%q %q: handled %v, snapshot %+v", topic, payload, ok, snap)
		}
		if _, err := json.Marshal(snap); err != nil {
			t.Fatalf("%q %q: snapshot does not marshal: %v", topic, payload, err)
		}
		var b bytes.Buffer
		writeFleetTable(&b, snap, time.Now())
		for _, r := range b.String() {
			if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
				t.Fatalf("%q %q: control character %U in the table %q", topic, payload, r, b.String())
			}
		}
	})
}

// Five bytes of msgpack claiming a map of 4 billion entries: decoded into
// the bounded payload structs they cost almost nothing and are ignored
// (into map[string]any, as fleet used to, they cost ~84 MB).
func TestFleetHostilePayloadAllocatesLittle(t *testing.T) {
	bomb := []byte{0xdf, 0xff, 0xff, 0xff, 0xff}
	for _, topic := range []string{"vggedge/x/stats", "vggedge/x/event"} {
		s := newFleetState()
		var ok bool
		n := allocatedBytes(func() { ok = s.handle(topic, bomb) })
		if ok || n > 1<<20 {
			t.Errorf("%s: handled %t, %d bytes allocated; want ignored, < 1 MiB", topic, ok, n)
		}
		t.Logf("%s: %d bytes allocated", topic, n)
	}
	var m map[string]any
	t.Logf("for comparison, into map[string]any: %d bytes allocated", allocatedBytes(func() { msgpack.Unmarshal(bomb, &m) }))
}

func allocatedBytes(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// What fleet ignores is counted and the last one named, once, on the
// table's header (a device publishing garbage is visible without a line
// per message).
func TestFleetIgnoredShown(t *testing.T) {
	for _, tc := range []struct {
		topic   string
		payload []byte
		want    string
	}{
		{"vggedge/x/stats", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, "ignored 1 message (last: vggedge/x/stats: not a JSON object or msgpack map of a stats payload)"},
		{"vggedge/x/event", []byte("\x81\xa500\xdb\xdb\xdb\xdb\xdb0000"), "(last: vggedge/x/event: not a JSON object or msgpack map of an event payload)"},
		{"vggedge/x/availability", []byte("maybe"), `(last: vggedge/x/availability: not "online" or "offline")`},
		{"vggedge/x\x1b[2J/sneeze", []byte("{}"), `(last: vggedge/x\x1b[2J/sneeze: unknown kind`},
		{"other/x/stats", []byte("{}"), "(last: other/x/stats: not a vggedge/<device>/<kind> topic)"},
		{"vggedge/x/stats", make([]byte, fleetMaxPayload+1), "(last: vggedge/x/stats: payload over 64 KiB)"},
	} {
		s := newFleetState()
		s.handle("vggedge/good/availability", []byte("online"))
		if s.handle(tc.topic, tc.payload) {
			t.Errorf("%q %q: handled, want ignored", tc.topic, tc.payload)
			continue
		}
		var b bytes.Buffer
		writeFleetTable(&b, s.snapshot(), time.Now())
		if !strings.Contains(b.String(), tc.want) || strings.Count(b.String(), "ignored") != 1 {
			t.Errorf("%q: table does not say %q once:\n%s", tc.topic, tc.want, b.String())
		}
		if n, _ := s.ignoredSince(1); n != 0 {
			t.Errorf("%q: %d ignored beyond the one shown", tc.topic, n)
		}
	}
}

// An event vggedge run publishes as msgpack (a float32 score) shows its
// score in the table, as a JSON one does.
func TestFleetMsgpackEventScore(t *testing.T) {
	s := newFleetState()
	now := time.Now().UTC().Format(mqtt.TimeLayout)
	ev, err := msgpack.Marshal(&mqtt.EventPayload{State: "appeared", Label: "cat", Score: 0.875, Frame: 3, TS: now, Since: now})
	if err != nil {
		t.Fatal(err)
	}
	if !s.handle("vggedge/m/event", ev) {
		t.Fatalf("msgpack event %x not handled", ev)
	}
	var b bytes.Buffer
	writeFleetTable(&b, s.snapshot(), time.Now())
	if !strings.Contains(b.String(), "cat appeared 0.88") {
		t.Errorf("table without the msgpack event's score:\n%s", b.String())
	}
}

// Device ids (from topics) and labels (from payloads) are the broker's:
// a terminal escape in either is printed escaped, never raw.
func TestFleetTableSanitizes(t *testing.T) {
	s := newFleetState()
	s.handle("vggedge/evil\x1b]0;pwned\x07/availability", []byte("online"))
	s.handle("vggedge/evil\x1b]0;pwned\x07/event", []byte(`{"state":"appeared","label":"\u001b[2J\u202eboom","score":0.9}`))
	var b bytes.Buffer
	writeFleetTable(&b, s.snapshot(), time.Now())
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\u202e") {
		t.Errorf("raw control characters in the table: %q", out)
	}
	if !strings.Contains(out, `evil\x1b]0;pwned\a`) || !strings.Contains(out, `\x1b[2J\u202eboom appeared`) {
		t.Errorf("table does not show the escaped id and label:\n%s", out)
	}
}

// A payload claiming an 800 MB string in 14 bytes, again and again: with
// msgpack.Unmarshal's pooled decoders each one grew a kept buffer by a
// megabyte (2000 of them: 13 GB). Checked first, they cost nothing lasting.
func TestFleetRepeatedHostilePayloads(t *testing.T) {
	p := []byte("\x81\xa500\xdb\xdb\xdb\xdb\xdb0000")
	s := newFleetState()
	n := allocatedBytes(func() {
		for range 2000 {
			s.handle("vggedge/x/event", p)
		}
	})
	if n > 8<<20 {
		t.Errorf("2000 hostile payloads allocated %d bytes", n)
	}
	t.Logf("2000 hostile payloads: %d bytes allocated in all", n)
}
