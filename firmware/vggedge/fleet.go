package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/vggedge/vggedge/firmware/mqtt"
)

// A broker can send anything: payloads beyond fleetMaxPayload are ignored
// and at most fleetMaxDevices devices are tracked.
const (
	fleetMaxPayload = 64 << 10
	fleetMaxDevices = 10000
)

// exitFleetFailed is fleet's status when the broker cannot be reached:
// 3, so that a script does not read it as check's 1 ("does not fit") or
// the 2 of bad flags.
const exitFleetFailed = 3

// fleetDevice is what fleet knows of one device.
type fleetDevice struct {
	ID           string          `json:"id"`
	Availability string          `json:"availability"` // online, offline, or unknown (no retained message seen)
	FPS          *float64        `json:"fps"`          // classified frames per second, from the latest stats
	LatencyMs    *float64        `json:"latency_ms"`   // capture to result, median, from the latest stats
	TempC        *float64        `json:"temp_c"`       // null when the board does not say
	Model        string          `json:"model,omitempty"`
	Board        string          `json:"board,omitempty"`
	Stats        json.RawMessage `json:"stats"`      // the latest stats payload as published; null before the first
	LastEvent    json.RawMessage `json:"last_event"` // the latest event payload (msgpack ones as JSON); null before the first
	LastSeen     time.Time       `json:"last_seen"`  // when fleet last heard from it

	eventText string // the last event, short, for the table
}

// fleetState is every device heard of, updated from the MQTT client's
// goroutine and read by the printer.
type fleetState struct {
	mu      sync.Mutex
	devices map[string]*fleetDevice
	changed bool // since the last take
	ignored uint64
	// The last message ignored, and why: shown on the table's header
	// line, so a device sending garbage is seen without one log line per
	// message.
	lastIgnoredTopic, lastIgnoredWhy string
	now                              func() time.Time
}

func newFleetState() *fleetState {
	return &fleetState{devices: map[string]*fleetDevice{}, now: time.Now}
}

// handle applies one message; it reports whether the message was one of
// fleet's topics with a payload it understood.
func (s *fleetState) handle(topic string, payload []byte) bool {
	parts := strings.Split(topic, "/")
	if len(parts) != 3 || parts[0] != mqtt.TopicRoot || parts[1] == "" {
		return s.ignore(topic, "not a "+mqtt.TopicRoot+"/<device>/<kind> topic")
	}
	if len(payload) > fleetMaxPayload {
		return s.ignore(topic, "payload over 64 KiB")
	}
	id, kind := parts[1], parts[2]
	var apply func(d *fleetDevice) bool
	switch kind {
	case mqtt.KindAvailability:
		apply = func(d *fleetDevice) bool {
			switch p := string(payload); p {
			case "online", "offline":
				d.Availability = p
			case "": // a retained message cleared
				d.Availability = "unknown"
			default:
				return false
			}
			return true
		}
	case mqtt.KindStats:
		apply = func(d *fleetDevice) bool { return d.applyStats(payload) }
	case mqtt.KindEvent:
		apply = func(d *fleetDevice) bool { return d.applyEvent(payload) }
	default:
		return s.ignore(topic, "unknown kind (want availability, stats or event)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[id]
	if d == nil {
		if len(s.devices) >= fleetMaxDevices {
			s.ignoreLocked(topic, "over 10000 devices")
			return false
		}
		d = &fleetDevice{ID: id, Availability: "unknown"}
	}
	if !apply(d) {
		switch kind {
		case mqtt.KindAvailability:
			s.ignoreLocked(topic, `not "online" or "offline"`)
		default:
			s.ignoreLocked(topic, "not a JSON object or msgpack map of "+map[string]string{mqtt.KindStats: "a stats", mqtt.KindEvent: "an event"}[kind]+" payload")
		}
		return false
	}
	s.devices[id] = d
	d.LastSeen = s.now()
	s.changed = true
	return true
}

func (s *fleetState) ignore(topic, why string) bool {
	s.mu.Lock()
	s.ignoreLocked(topic, why)
	s.mu.Unlock()
	return false
}

func (s *fleetState) ignoreLocked(topic, why string) {
	s.ignored++
	s.lastIgnoredTopic, s.lastIgnoredWhy = topic, why
}

// applyStats reads the fields the table shows from a stats payload,
// decoded into the publisher's own statsPayload; the payload is kept
// whole for --json (msgpack converted to JSON).
func (d *fleetDevice) applyStats(payload []byte) bool {
	// Absent or null numbers stay NaN (JSON null leaves a field alone):
	// shown as "-", not as 0.
	nan := math.NaN()
	fresh := func() mqtt.StatsPayload {
		var st mqtt.StatsPayload
		st.FPS = nan
		st.StagesMs.Latency = mqtt.StatsStage{Mean: nan, P50: nan, P99: nan}
		return st
	}
	st := fresh()
	raw := payload
	if err := json.Unmarshal(payload, &st); err != nil || !isJSONObject(payload) {
		// --mqtt-format msgpack: the same keys.
		st = fresh()
		if mqtt.Unmarshal(payload, &st) != nil {
			return false
		}
		c := st // JSON has no NaN
		for _, x := range []*float64{&c.FPS, &c.StagesMs.Latency.Mean, &c.StagesMs.Latency.P50, &c.StagesMs.Latency.P99} {
			if math.IsNaN(*x) || math.IsInf(*x, 0) {
				*x = 0
			}
		}
		if raw, err = json.Marshal(&c); err != nil {
			return false
		}
	}
	d.FPS = finite(st.FPS)
	d.LatencyMs = finite(st.StagesMs.Latency.P50)
	if d.LatencyMs == nil {
		d.LatencyMs = finite(st.StagesMs.Latency.Mean)
	}
	d.TempC = nil
	if st.TempC != nil {
		d.TempC = finite(*st.TempC)
	}
	d.Model, d.Board = st.Model, st.Board
	d.Stats = json.RawMessage(bytes.Clone(raw))
	return true
}

func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// applyEvent keeps an event payload, decoded into the publisher's own
// eventPayload: JSON as it is, msgpack (--mqtt-format msgpack) converted
// to JSON.
func (d *fleetDevice) applyEvent(payload []byte) bool {
	var ev mqtt.EventPayload
	raw := payload
	if err := json.Unmarshal(payload, &ev); err != nil || !isJSONObject(payload) {
		ev = mqtt.EventPayload{}
		if mqtt.Unmarshal(payload, &ev) != nil {
			return false
		}
		if raw, err = json.Marshal(&ev); err != nil {
			return false
		}
	}
	d.LastEvent = json.RawMessage(bytes.Clone(raw))
	var t []string
	switch {
	case ev.State == "disappeared" && ev.Previous != "":
		t = append(t, ev.Previous, ev.State)
	case ev.Label != "":
		t = append(t, ev.Label)
		if ev.State != "" {
			t = append(t, ev.State)
		}
		t = append(t, strconv.FormatFloat(float64(ev.Score), 'f', 2, 32))
	case ev.State != "":
		t = append(t, ev.State)
	}
	if at, err := time.Parse(time.RFC3339Nano, ev.TS); err == nil {
		t = append(t, "at "+at.Local().Format("15:04:05"))
	}
	d.eventText = strings.Join(t, " ")
	return true
}

// isJSONObject reports whether b is a JSON object (json.Unmarshal into a
// struct also accepts null).
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// fleetSnapshot is fleet --json's document.
type fleetSnapshot struct {
	Broker      string         `json:"broker"` // without its password
	CollectS    float64        `json:"collected_s"`
	Online      int            `json:"online"`
	Offline     int            `json:"offline"`
	Devices     []*fleetDevice `json:"devices"` // sorted by id
	Ignored     uint64         `json:"ignored_messages"`
	LastIgnored string         `json:"last_ignored,omitempty"` // topic: why (the topic escaped)
	Generated   time.Time      `json:"generated"`
}

// snapshot copies the devices, sorted by id, and clears changed.
func (s *fleetState) snapshot() fleetSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := fleetSnapshot{Devices: []*fleetDevice{}, Ignored: s.ignored, Generated: s.now()}
	if s.ignored > 0 {
		snap.LastIgnored = termSafe(s.lastIgnoredTopic, 100) + ": " + s.lastIgnoredWhy
	}
	for _, d := range s.devices {
		c := *d
		snap.Devices = append(snap.Devices, &c)
		switch d.Availability {
		case "online":
			snap.Online++
		case "offline":
			snap.Offline++
		}
	}
	slices.SortFunc(snap.Devices, func(a, b *fleetDevice) int { return strings.Compare(a.ID, b.ID) })
	s.changed = false
	return snap
}

// ignoredSince reports how many messages were ignored beyond shown, and
// the last one.
func (s *fleetState) ignoredSince(shown uint64) (uint64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ignored <= shown {
		return 0, ""
	}
	return s.ignored - shown, termSafe(s.lastIgnoredTopic, 100) + ": " + s.lastIgnoredWhy
}

func (s *fleetState) hasChanged() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// writeFleetTable prints the devices as a table.
func writeFleetTable(w io.Writer, snap fleetSnapshot, now time.Time) error {
	num := func(x *float64, prec int, unit string) string {
		if x == nil {
			return "-"
		}
		return strconv.FormatFloat(*x, 'f', prec, 64) + unit
	}
	t := table{leftCols: 3}
	t.add("DEVICE", "STATE", "LAST EVENT", "FPS", "LATENCY", "TEMP", "SEEN")
	for _, d := range snap.Devices {
		ev := d.eventText
		if ev == "" {
			ev = "-"
		}
		seen := now.Sub(d.LastSeen).Round(time.Second)
		// Ids and labels come from the broker: never raw to a terminal.
		t.add(termSafe(d.ID, 64), d.Availability, termSafe(ev, 80), num(d.FPS, 1, ""), num(d.LatencyMs, 1, " ms"), num(d.TempC, 1, " °C"), seen.String()+" ago")
	}
	if _, err := fmt.Fprintf(w, "%s  broker %s: %d online, %d offline, %d devices\n", now.Format("15:04:05"), termSafe(snap.Broker, 200), snap.Online, snap.Offline, len(snap.Devices)); err != nil {
		return err
	}
	if snap.Ignored > 0 {
		if _, err := fmt.Fprintf(w, "ignored %s (last: %s)\n", plural(snap.Ignored, "message"), snap.LastIgnored); err != nil {
			return err
		}
	}
	if len(snap.Devices) == 0 {
		_, err := fmt.Fprintf(w, "no devices yet (waiting for %s/+/%s)\n", mqtt.TopicRoot, mqtt.KindAvailability)
		return err
	}
	return t.write(w)
}

// fleetFlags are fleet's flags.
type fleetFlags struct {
	broker, ca string
	asJSON     bool
	wait       time.Duration
}

func runFleet(args []string, stdout io.Writer) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return fleetLive(ctx, args, stdout)
}

// fleetLive is fleet with its context given, for tests.
func fleetLive(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	var ff fleetFlags
	fs := newFlags("fleet", stdout)
	fs.StringVar(&ff.broker, "mqtt", "", "the broker: mqtt://[user:pass@]host[:1883] or mqtts://host[:8883] (required)")
	fs.StringVar(&ff.ca, "mqtt-ca", "", "PEM CA certificates for mqtts:// (default: the system's)")
	fs.BoolVar(&ff.asJSON, "json", false, "collect for --wait, print one JSON document and exit")
	fs.DurationVar(&ff.wait, "wait", 3*time.Second, "how long --json collects messages")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	if ff.broker == "" {
		return exitBadInput, errors.New("--mqtt URL is required, e.g. --mqtt mqtt://broker.local:1883")
	}
	if ff.wait <= 0 || ff.wait > time.Hour {
		return exitBadInput, fmt.Errorf("--wait %v: want a duration in (0, 1h]", ff.wait)
	}
	cfg, shown, err := fleetClientConfig(ff.broker, ff.ca)
	if err != nil {
		return exitBadInput, err
	}

	state := newFleetState()
	subscribed := make(chan struct{})
	var once sync.Once
	var connMu sync.Mutex
	var connErr error
	connStatus := "connecting"        // "" while connected and subscribed
	connFailed := make(chan struct{}) // --json: the first attempt failed
	var failOnce sync.Once
	secret := cfg.ServerUrls[0].String()
	cfg.OnConnectError = func(err error) {
		if secret != shown {
			// paho's message holds the URL, password and all.
			err = errors.New(strings.ReplaceAll(err.Error(), secret, shown))
		}
		connMu.Lock()
		connErr, connStatus = err, "not connected"
		connMu.Unlock()
		failOnce.Do(func() { close(connFailed) })
	}
	cfg.OnConnectionDown = func() bool {
		connMu.Lock()
		connErr, connStatus = nil, "connection lost; reconnecting"
		connMu.Unlock()
		return true
	}
	cfg.OnConnectionUp = func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
		// Must not block: subscribe on another goroutine. Retained
		// availability messages arrive right after the SUBACK.
		go func() {
			var subs []paho.SubscribeOptions
			for _, k := range []string{mqtt.KindAvailability, mqtt.KindStats, mqtt.KindEvent} {
				subs = append(subs, paho.SubscribeOptions{Topic: mqtt.TopicRoot + "/+/" + k, QoS: 1})
			}
			if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
				connMu.Lock()
				connErr, connStatus = err, "not subscribed"
				connMu.Unlock()
				return
			}
			connMu.Lock()
			connErr, connStatus = nil, ""
			connMu.Unlock()
			once.Do(func() { close(subscribed) })
		}()
	}
	cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
		func(p paho.PublishReceived) (bool, error) {
			state.handle(p.Packet.Topic, p.Packet.Payload)
			return true, nil
		},
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cm, err := autopaho.NewConnection(cctx, cfg)
	if err != nil {
		return exitBadInput, fmt.Errorf("--mqtt %s: %w", shown, err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		cm.Disconnect(dctx)
	}()

	if ff.asJSON {
		timer := time.NewTimer(cfg.ConnectTimeout + 5*time.Second)
		defer timer.Stop()
		// A one-shot look fails at once when the broker cannot be reached
		// or refuses; the live table keeps retrying instead.
		select {
		case <-subscribed:
		case <-connFailed:
			connMu.Lock()
			defer connMu.Unlock()
			return exitFleetFailed, fmt.Errorf("broker %s: %v", shown, connErr)
		case <-timer.C:
			return exitFleetFailed, fmt.Errorf("broker %s: not connected and subscribed after %v", shown, cfg.ConnectTimeout+5*time.Second)
		case <-ctx.Done():
			return exitOK, nil
		}
		select {
		case <-time.After(ff.wait):
		case <-ctx.Done():
		}
		snap := state.snapshot()
		snap.Broker, snap.CollectS = shown, ff.wait.Seconds()
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(snap); err != nil {
			return exitFleetFailed, err
		}
		return exitOK, nil
	}

	// The live table: redraw every second on a terminal; otherwise print
	// plain text when something changed.
	tty := isTerminal(stdout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	printed, lastStatus := false, ""
	var ignoredShown uint64 // the ignored count last printed, and when
	var ignoredAt time.Time
	for {
		connMu.Lock()
		status := connStatus
		if status != "" && connErr != nil {
			status += ": " + oneLine(connErr)
		}
		connMu.Unlock()
		if tty || !printed || state.hasChanged() || status != lastStatus {
			printed, lastStatus = true, status
			snap := state.snapshot()
			snap.Broker = shown
			var b bytes.Buffer
			if tty {
				b.WriteString("\x1b[H\x1b[2J") // home, clear screen
			} else {
				b.WriteByte('\n')
			}
			writeFleetTable(&b, snap, time.Now())
			if status != "" {
				b.WriteString(status + "\n")
			}
			if _, err := stdout.Write(b.Bytes()); err != nil {
				return exitFleetFailed, err
			}
			ignoredShown, ignoredAt = snap.Ignored, time.Now()
		} else if n, last := state.ignoredSince(ignoredShown); n > 0 && time.Since(ignoredAt) >= 10*time.Second {
			// Garbage from the broker: one line at most every 10 s, not
			// a table (or a line) per message.
			ignoredShown, ignoredAt = ignoredShown+n, time.Now()
			if _, err := fmt.Fprintf(stdout, "ignored %s more (last: %s)\n", plural(n, "message"), last); err != nil {
				return exitFleetFailed, err
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return exitOK, nil
		}
	}
}

// fleetClientConfig makes the MQTT client's settings from --mqtt and
// --mqtt-ca, read as vggedge run reads them (mqtt.ParseBrokerURL); shown is
// the URL without its password, for messages.
func fleetClientConfig(raw, caFile string) (cfg autopaho.ClientConfig, shown string, err error) {
	u, tc, err := mqtt.ParseBrokerURL(raw, caFile)
	if err != nil {
		return cfg, "", err
	}
	if u.User != nil {
		cfg.ConnectUsername = u.User.Username()
		if p, ok := u.User.Password(); ok {
			cfg.ConnectPassword = []byte(p)
		}
	}
	cfg.TlsCfg = tc
	shownURL := *u
	if u.User != nil {
		shownURL.User = url.User(u.User.Username())
	}
	cfg.ServerUrls = []*url.URL{u}
	cfg.KeepAlive = 20
	cfg.CleanStartOnInitialConnection = true
	cfg.ConnectTimeout = 10 * time.Second
	cfg.ReconnectBackoff = autopaho.NewExponentialBackoff(500*time.Millisecond, 10*time.Second, time.Second, 2)
	cfg.ClientID = fmt.Sprintf("vggedge-fleet-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	return cfg, shownURL.String(), nil
}

// plural is "1 message", "2 messages".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}
