package main

import (
	"github.com/vggedge/vggedge/firmware/live"

	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/vggedge/vggedge/camera"
)

// Availability payloads (retained; "offline" is also the last will).
const (
	payloadOnline  = "online"
	payloadOffline = "offline"
)

// mqttFlags are run's --mqtt…, --device-id and --snapshot… flags.
type mqttFlags struct {
	url, ca, deviceID string
	passwordFile      string
	when, format      string
	on, off           float64
	dwell, statsEvery time.Duration
	discovery         bool
	queue             int
	snap              snapshotConfig
	snapWhen          string
}

func addMQTTFlags(fs *flag.FlagSet, f *mqttFlags) {
	fs.StringVar(&f.url, "mqtt", "", "publish events, availability and stats to this broker: mqtt://[user:pass@]host[:1883] or mqtts://host[:8883] (default off)")
	fs.StringVar(&f.passwordFile, "mqtt-password-file", "", "read the broker password from this file (one line; instead of a password in the --mqtt URL)")
	fs.StringVar(&f.ca, "mqtt-ca", "", "CA certificate file (PEM) that signs the mqtts:// broker's certificate (default: the system's)")
	fs.StringVar(&f.deviceID, "device-id", "", "this device's id in MQTT topics vggedge/<id>/… ([a-z0-9_-]; default: the hostname)")
	fs.StringVar(&f.when, "mqtt-when", "", "labels whose appearance, change or disappearance is an event, comma-separated (default: any label)")
	fs.Float64Var(&f.on, "mqtt-on-score", 0.8, "score at or above which a label is seen")
	fs.Float64Var(&f.off, "mqtt-off-score", 0.5, "score a seen label must fall below to be gone (< --mqtt-on-score)")
	fs.DurationVar(&f.dwell, "mqtt-dwell", 0, "how long a new state must hold before its event is published, e.g. 500ms")
	fs.StringVar(&f.format, "mqtt-format", "json", "event and stats payloads: json or msgpack")
	fs.DurationVar(&f.statsEvery, "mqtt-stats-every", 30*time.Second, "publish stats this often (0: never)")
	fs.BoolVar(&f.discovery, "mqtt-discovery", false, "publish Home Assistant MQTT discovery configs under homeassistant/")
	fs.IntVar(&f.queue, "mqtt-queue", 256, "events held while the broker is unreachable; beyond it the oldest are dropped (counted)")
	fs.StringVar(&f.snap.dir, "snapshot-dir", "", "save the frame of each event as a JPEG in this folder (default off)")
	fs.StringVar(&f.snapWhen, "snapshot-when", "", "only events of these labels save a snapshot, comma-separated (default: every event that names a label)")
	fs.IntVar(&f.snap.maxFiles, "snapshot-max-files", 1000, "keep at most this many snapshots, deleting the oldest (0: no limit)")
	fs.Int64Var(&f.snap.maxBytes, "snapshot-max-bytes", 100<<20, "keep at most this many bytes of snapshots, deleting the oldest (0: no limit)")
}

// mqttConfig is everything the event sink runs with.
type mqttConfig struct {
	broker   *url.URL // nil: no MQTT, events only take snapshots
	tls      *tls.Config
	deviceID string
	msgpack  bool
	detector detectorConfig
	snap     *snapshotConfig // nil: no snapshots

	statsEvery time.Duration
	discovery  bool
	queueDepth int
	model      string
	board      string

	// Timing; zero values take the defaults (tests shorten them).
	backoffMin, backoffMax time.Duration // reconnect delays
	packetTimeout          time.Duration // wait for a PUBACK
	drainTimeout           time.Duration // Close waits this long for queued events
	connectTimeout         time.Duration // one connection attempt, CONNACK included
	keepAlive              uint16        // seconds
}

// mqttConfigFromFlags validates the flags. It returns nil when neither
// --mqtt nor --snapshot-dir asks for the event sink.
func mqttConfigFromFlags(f *mqttFlags, labels []string, model, board string) (*mqttConfig, error) {
	if f.snapWhen != "" {
		f.snap.when = strings.Split(f.snapWhen, ",")
	}
	if err := f.snap.validate(labels); err != nil {
		return nil, err
	}
	if f.url == "" {
		for _, bad := range []struct {
			set  bool
			flag string
		}{{f.ca != "", "--mqtt-ca"}, {f.passwordFile != "", "--mqtt-password-file"}, {f.discovery, "--mqtt-discovery"}, {f.deviceID != "", "--device-id"}, {f.format != "json", "--mqtt-format"}} {
			if bad.set {
				return nil, fmt.Errorf("%s needs --mqtt URL", bad.flag)
			}
		}
		if f.snap.dir == "" {
			if f.when != "" {
				return nil, fmt.Errorf("--mqtt-when needs --mqtt URL or --snapshot-dir DIR")
			}
			return nil, nil
		}
	}
	c := &mqttConfig{
		detector:   detectorConfig{on: f.on, off: f.off, dwell: f.dwell},
		statsEvery: f.statsEvery, discovery: f.discovery, queueDepth: f.queue,
		model: model, board: board,
	}
	if f.when != "" {
		c.detector.when = strings.Split(f.when, ",")
	}
	if err := c.detector.validate(labels); err != nil {
		return nil, err
	}
	if f.snap.dir != "" {
		c.snap = &f.snap
	}
	if f.url == "" {
		return c, nil
	}
	var err error
	if c.broker, c.tls, err = parseBrokerURL(f.url, f.ca); err != nil {
		return nil, err
	}
	if f.passwordFile != "" {
		if err := setPasswordFromFile(c.broker, f.passwordFile); err != nil {
			return nil, err
		}
	}
	switch f.format {
	case "json":
	case "msgpack":
		c.msgpack = true
		if f.discovery {
			return nil, fmt.Errorf("--mqtt-discovery needs --mqtt-format json: Home Assistant reads the event's JSON")
		}
	default:
		return nil, fmt.Errorf("--mqtt-format %q: want json or msgpack", f.format)
	}
	if f.statsEvery < 0 {
		return nil, fmt.Errorf("--mqtt-stats-every %v: want a duration ≥ 0 (0: never)", f.statsEvery)
	}
	if f.queue < 1 || f.queue > 1<<16 {
		return nil, fmt.Errorf("--mqtt-queue %d: want 1..65536", f.queue)
	}
	if c.deviceID, err = deviceID(f.deviceID); err != nil {
		return nil, err
	}
	return c, nil
}

// setPasswordFromFile sets u's password to the first line of path
// (--mqtt-password-file): a secret kept out of the URL, the YAML file and
// the process list.
func setPasswordFromFile(u *url.URL, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--mqtt-password-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return fmt.Errorf("--mqtt-password-file %s: %w", path, err)
	}
	if len(b) > 4096 {
		return fmt.Errorf("--mqtt-password-file %s: longer than 4096 bytes: want the password alone", path)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return fmt.Errorf("--mqtt-password-file %s: empty first line: want the password", path)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return fmt.Errorf("--mqtt-password-file %s: --mqtt %s has a password already: give one or the other", path, u.Redacted())
		}
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, pw)
	return nil
}

// redactRawURL is raw with the password of any user:password@ replaced by
// xxxxx, also when raw does not parse as a URL: for messages.
func redactRawURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		return u.Redacted()
	}
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	auth := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth = rest[:i]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(auth[:at], ":")
	if !hasPassword {
		return raw
	}
	return prefix + user + ":xxxxx" + rest[at:]
}

// redactErr replaces u, password and all, in err's text (paho's connect
// errors hold the URL as given) by its redacted form.
func redactErr(err error, u *url.URL) error {
	if err == nil || u == nil || u.User == nil {
		return err
	}
	if _, has := u.User.Password(); !has {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), u.String(), u.Redacted())
	if p, _ := u.User.Password(); len(p) >= 6 { // a short one would mangle the message
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return errors.New(msg)
}

// parseBrokerURL reads --mqtt (and --mqtt-ca for mqtts).
func parseBrokerURL(raw, caFile string) (*url.URL, *tls.Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which holds the password
		}
		return nil, nil, fmt.Errorf("--mqtt %q: %v", redactRawURL(raw), err)
	}
	want := "want mqtt://[user:pass@]host[:port] or mqtts://host[:port]"
	if u.Scheme != "mqtt" && u.Scheme != "mqtts" {
		return nil, nil, fmt.Errorf("--mqtt %s: scheme %q: %s", redactRawURL(raw), u.Scheme, want)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, nil, fmt.Errorf("--mqtt %s: %s", u.Redacted(), want)
	}
	if u.Port() == "" {
		port := "1883"
		if u.Scheme == "mqtts" {
			port = "8883"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Scheme == "mqtt" {
		if caFile != "" {
			return nil, nil, fmt.Errorf("--mqtt-ca %s: only for mqtts:// brokers, --mqtt is %s", caFile, u.Redacted())
		}
		return u, nil, nil
	}
	cfg := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--mqtt-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--mqtt-ca %s: no PEM certificate in it", caFile)
		}
	}
	return u, cfg, nil
}

// deviceID is --device-id, checked, or the hostname made fit for a topic.
func deviceID(flagValue string) (string, error) {
	if flagValue != "" {
		if len(flagValue) > 64 || sanitizeID(flagValue) != flagValue {
			return "", fmt.Errorf("--device-id %q: want 1..64 of a-z, 0-9, _ and -", flagValue)
		}
		return flagValue, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "vggedge", nil
	}
	id := sanitizeID(host)
	return id[:min(len(id), 64)], nil
}

// mqttMessage is one queued PUBLISH. Payload capacity is reused.
type mqttMessage struct {
	topic   string
	payload []byte
	retain  bool
}

func (m *mqttMessage) set(topic string, payload []byte, retain bool) {
	m.topic, m.payload, m.retain = topic, append(m.payload[:0], payload...), retain
}

// mqttSink publishes on-change events, availability, stats and Home
// Assistant discovery, and saves snapshots. The loop calls Write from the
// sink queue's goroutine: it runs the change detector (no allocation
// while nothing changes) and, when an event fires, saves the snapshot and
// queues the event. A publisher goroutine sends the queue in order with
// QoS 1 once the broker is there; a broker that is down or slow only
// fills the queue, whose oldest events are then dropped and counted.
type mqttSink struct {
	cfg   mqttConfig
	stats live.StatsSource
	logf  func(string, ...any) // warnings
	infof func(string, ...any)

	det  *changeDetector
	snap *snapshotter

	topicAvail, topicEvent, topicStats string

	cm     *autopaho.ConnectionManager // nil without --mqtt
	ctx    context.Context             // the connection's life
	cancel context.CancelFunc

	mu            sync.Mutex
	wake          chan struct{} // cap 1: queue, connection or closing changed
	up            bool
	gen           uint64 // connections made
	ring          []mqttMessage
	head, n       int
	statsMsg      mqttMessage
	statsPending  bool
	closing       bool
	closeDeadline time.Time
	attemptCancel context.CancelFunc // the publish in flight
	attemptGen    uint64             // the connection it started on

	published    atomic.Uint64 // events acknowledged by the broker
	dropped      atomic.Uint64 // events pushed out of a full queue or left at Close
	statsSent    atomic.Uint64
	statsSkipped atomic.Uint64 // stats replaced by newer ones before they went out
	connects     atomic.Uint64
	connectFails atomic.Uint64
	snapErrors   atomic.Uint64

	pubDone   chan struct{}
	statsStop chan struct{}
	statsDone chan struct{}
	closeOnce sync.Once
}

// newMQTTSink starts connecting (in the background: a broker that is
// down at start is retried with backoff, it does not fail the run).
func newMQTTSink(c mqttConfig, stats live.StatsSource, logf, infof func(string, ...any)) (*mqttSink, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if infof == nil {
		infof = func(string, ...any) {}
	}
	if c.queueDepth <= 0 {
		c.queueDepth = 256
	}
	if c.backoffMin <= 0 {
		c.backoffMin = 500 * time.Millisecond
	}
	if c.backoffMax <= c.backoffMin {
		c.backoffMax = max(60*time.Second, 2*c.backoffMin)
	}
	if c.packetTimeout <= 0 {
		c.packetTimeout = 10 * time.Second
	}
	if c.drainTimeout <= 0 {
		c.drainTimeout = 3 * time.Second
	}
	if c.connectTimeout <= 0 {
		c.connectTimeout = 10 * time.Second
	}
	if c.keepAlive == 0 {
		c.keepAlive = 30
	}
	m := &mqttSink{
		cfg: c, stats: stats, logf: logf, infof: infof,
		det:        newChangeDetector(c.detector),
		topicAvail: "vggedge/" + c.deviceID + "/availability",
		topicEvent: "vggedge/" + c.deviceID + "/event",
		topicStats: "vggedge/" + c.deviceID + "/stats",
		wake:       make(chan struct{}, 1),
		pubDone:    make(chan struct{}),
		statsStop:  make(chan struct{}),
		statsDone:  make(chan struct{}),
	}
	if c.snap != nil {
		s, err := newSnapshotter(*c.snap)
		if err != nil {
			return nil, err
		}
		m.snap = s
	}
	if c.broker == nil {
		close(m.pubDone)
		close(m.statsDone)
		return m, nil
	}
	m.ring = make([]mqttMessage, c.queueDepth)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	cc := autopaho.ClientConfig{
		ServerUrls: []*url.URL{c.broker},
		TlsCfg:     c.tls,
		KeepAlive:  c.keepAlive,
		// A persistent session from the first connection: mosquitto keeps
		// (and persists across its own restarts) only the session of a
		// client that connected with CleanStart=0. The sink only
		// publishes, so a previous run's session holds nothing it could
		// be handed back.
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         600, // resume the session across reconnects and broker restarts
		ReconnectBackoff:              autopaho.NewExponentialBackoff(c.backoffMin, c.backoffMax, min(4*c.backoffMin, c.backoffMax), 2),
		ConnectTimeout:                c.connectTimeout,
		OnConnectionUp:                m.connectionUp,
		OnConnectionDown:              m.connectionDown,
		OnConnectError:                m.connectError,
		WillMessage:                   &paho.WillMessage{Topic: m.topicAvail, Payload: []byte(payloadOffline), QoS: 1, Retain: true},
		ClientConfig:                  paho.ClientConfig{ClientID: "vggedge-" + c.deviceID, PacketTimeout: c.packetTimeout},
	}
	if u := c.broker.User; u != nil {
		cc.ConnectUsername = u.Username()
		if p, ok := u.Password(); ok {
			cc.ConnectPassword = []byte(p)
		}
	}
	cm, err := autopaho.NewConnection(m.ctx, cc)
	if err != nil {
		m.cancel()
		return nil, fmt.Errorf("--mqtt %s: %w", c.broker.Redacted(), redactErr(err, c.broker))
	}
	m.cm = cm
	go m.publishLoop()
	if c.statsEvery > 0 && stats != nil {
		go m.statsLoop()
	} else {
		close(m.statsDone)
	}
	infof("mqtt: publishing to %s as vggedge/%s/ (events on change%s)", c.broker.Redacted(), c.deviceID, m.whenText())
	return m, nil
}

func (m *mqttSink) whenText() string {
	if m.cfg.detector.when == nil {
		return " of any label"
	}
	return " of " + strings.Join(m.cfg.detector.when, ",")
}

func (m *mqttSink) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// connectionUp runs on autopaho's goroutine after each CONNACK. When the
// broker kept no session (it restarted), a publish waiting for its PUBACK
// will never get one: cancel it so the publisher sends it again.
func (m *mqttSink) connectionUp(_ *autopaho.ConnectionManager, ack *paho.Connack) {
	m.mu.Lock()
	m.gen++
	m.up = true
	if !ack.SessionPresent && m.attemptCancel != nil && m.attemptGen < m.gen {
		m.attemptCancel()
	}
	n := m.connects.Add(1) // before the publisher can see the connection
	m.mu.Unlock()
	if n == 1 {
		m.infof("mqtt: connected to %s", m.cfg.broker.Redacted())
	} else {
		m.logf("mqtt: reconnected to %s (connection %d, session resumed: %t)", m.cfg.broker.Redacted(), n, ack.SessionPresent)
	}
	m.connectFails.Store(0)
	m.poke()
}

func (m *mqttSink) connectionDown() bool {
	m.mu.Lock()
	m.up = false
	closing := m.closing
	m.mu.Unlock()
	if !closing {
		m.logf("mqtt: connection to %s lost; reconnecting (events queue meanwhile, up to %d)", m.cfg.broker.Redacted(), m.cfg.queueDepth)
	}
	m.poke()
	return true
}

// connectError logs the first failed attempt and then every doubling, so
// a broker that is down for hours does not flood the journal.
func (m *mqttSink) connectError(err error) {
	if n := m.connectFails.Add(1); n&(n-1) == 0 {
		m.logf("mqtt: %v (%d attempts so far; retrying with backoff)", redactErr(err, m.cfg.broker), n)
	}
}

// ObservePicture keeps a copy of the frame when snapshots are on; it runs
// on the inference goroutine and only copies.
func (m *mqttSink) ObservePicture(f *camera.Frame) {
	if m.snap != nil {
		m.snap.ObservePicture(f)
	}
}

// Write runs the change detector; only an event costs anything more.
func (m *mqttSink) Write(r *live.Result) error {
	ev, ok := m.det.observe(r)
	if !ok {
		return nil
	}
	var snapName string
	var snapErr error
	if m.snap != nil && m.snap.wants(ev.Label) {
		snapName, snapErr = m.snap.save(r.Frame, ev.Label)
		if snapErr != nil {
			m.snapErrors.Add(1)
		}
	}
	if m.cm == nil {
		m.infof("event: %s %s (%.2f) at frame %d%s", ev.State, eventLabel(&ev), ev.Score, ev.Frame, snapText(snapName))
		return snapErr
	}
	payload, err := m.encode(eventPayloadOf(&ev, snapName))
	if err != nil {
		return errors.Join(snapErr, fmt.Errorf("mqtt event: %w", err))
	}
	m.enqueue(payload)
	return snapErr
}

func eventLabel(ev *labelEvent) string {
	if ev.State == eventDisappeared {
		return ev.Previous
	}
	return ev.Label
}

func snapText(name string) string {
	if name == "" {
		return ""
	}
	return ", snapshot " + name
}

// enqueue appends an event, dropping the oldest when the ring is full.
func (m *mqttSink) enqueue(payload []byte) {
	m.mu.Lock()
	if m.n == len(m.ring) {
		m.head = (m.head + 1) % len(m.ring)
		m.n--
		m.dropped.Add(1)
	}
	m.ring[(m.head+m.n)%len(m.ring)].set(m.topicEvent, payload, true)
	m.n++
	m.mu.Unlock()
	m.poke()
}

// Dropped counts events lost to a full queue (the loop adds it to
// Stats.SinkDropped).
func (m *mqttSink) Dropped() uint64 { return m.dropped.Load() }

// The wire format of the MQTT messages, defined once: vggedge run
// publishes these structs and vggedge fleet decodes into the same ones
// (bounded: a struct never allocates from a length prefix the way a
// map[string]any does).

// eventPayload is the event message: JSON, or msgpack with the same keys.
type eventPayload struct {
	State    string    `json:"state" msgpack:"state"`
	Label    string    `json:"label" msgpack:"label"`
	Score    wireScore `json:"score" msgpack:"score"`
	Previous string    `json:"previous" msgpack:"previous"`
	Frame    uint64    `json:"frame" msgpack:"frame"`
	TS       string    `json:"ts" msgpack:"ts"`
	Since    string    `json:"since" msgpack:"since"`
	Snapshot string    `json:"snapshot,omitempty" msgpack:"snapshot,omitempty"`
}

// wireScore is a score on the wire: written as a float32, read from a
// msgpack float32 or float64 (other publishers write doubles).
type wireScore float32

func (s *wireScore) DecodeMsgpack(d *msgpack.Decoder) error {
	v, err := d.DecodeFloat64()
	*s = wireScore(v)
	return err
}

const tsLayout = "2006-01-02T15:04:05.000Z07:00"

func eventPayloadOf(ev *labelEvent, snapshot string) *eventPayload {
	return &eventPayload{
		State: ev.State, Label: ev.Label, Score: wireScore(ev.Score), Previous: ev.Previous, Frame: ev.Frame,
		TS: ev.Time.UTC().Format(tsLayout), Since: ev.Since.UTC().Format(tsLayout), Snapshot: snapshot,
	}
}

func (m *mqttSink) encode(v any) ([]byte, error) {
	if m.cfg.msgpack {
		return msgpack.Marshal(v)
	}
	return json.Marshal(v)
}

// publishLoop sends, in order: "online" and the discovery configs after
// each (re)connection, then the queued events, then the newest stats. A
// message leaves the queue only once the broker acknowledged it (QoS 1:
// at least once); after a failure it is sent again on the next connection.
func (m *mqttSink) publishLoop() {
	defer close(m.pubDone)
	var announced uint64
	var cur mqttMessage
	var has, curIsStats bool
	for {
		m.mu.Lock()
		up, gen, closing, deadline := m.up, m.gen, m.closing, m.closeDeadline
		if up && announced == gen && !has {
			switch {
			case m.n > 0:
				s := &m.ring[m.head]
				cur, *s = *s, mqttMessage{payload: cur.payload[:0]} // swap buffers: no copy
				m.head = (m.head + 1) % len(m.ring)
				m.n--
				has, curIsStats = true, false
			case m.statsPending:
				cur.set(m.statsMsg.topic, m.statsMsg.payload, m.statsMsg.retain)
				m.statsPending = false
				has, curIsStats = true, true
			}
		}
		m.mu.Unlock()

		if closing && !time.Now().Before(deadline) {
			m.mu.Lock()
			left := m.n
			m.mu.Unlock()
			if has && !curIsStats {
				left++
			}
			if left > 0 {
				m.dropped.Add(uint64(left))
				m.logf("mqtt: %d queued events not delivered within %v of shutdown", left, m.cfg.drainTimeout)
			}
			return
		}
		switch {
		case !up:
			m.waitWake(closing, deadline)
			continue
		case announced != gen:
			if err := m.announce(gen); err != nil {
				m.pause(err)
				continue
			}
			announced = gen
			continue
		case !has:
			if closing {
				if err := m.publishOnce(gen, &mqttMessage{topic: m.topicAvail, payload: []byte(payloadOffline), retain: true}); err != nil {
					m.logf("mqtt: publish %s: %v", payloadOffline, err)
				}
				return
			}
			m.waitWake(false, time.Time{})
			continue
		}
		if err := m.publishOnce(gen, &cur); err != nil {
			m.pause(err)
			continue
		}
		has = false
		if curIsStats {
			m.statsSent.Add(1)
		} else {
			m.published.Add(1)
		}
	}
}

// waitWake blocks until something changes (or the close deadline).
func (m *mqttSink) waitWake(closing bool, deadline time.Time) {
	if !closing {
		<-m.wake
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-m.wake:
	case <-t.C:
	}
}

// pause waits a little after a failed publish that the connection did not
// explain (a broker refusing, or timing out), so a misbehaving broker is
// not hammered.
func (m *mqttSink) pause(err error) {
	m.mu.Lock()
	up, closing, deadline := m.up, m.closing, m.closeDeadline
	m.mu.Unlock()
	if !up || errors.Is(err, context.Canceled) {
		return // the connection went; connectionUp wakes us
	}
	if !errors.Is(err, autopaho.ConnectionDownError) {
		m.logf("mqtt: publish: %v; retrying", redactErr(err, m.cfg.broker))
	} // else: lost, and connectionDown is on its way
	d := m.cfg.backoffMin
	if closing {
		d = min(d, time.Until(deadline))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.ctx.Done():
	}
}

// announce publishes "online" and the discovery configs (all retained).
func (m *mqttSink) announce(gen uint64) error {
	msgs := []mqttMessage{{topic: m.topicAvail, payload: []byte(payloadOnline), retain: true}}
	if m.cfg.discovery {
		d, err := m.discoveryMessages()
		if err != nil {
			return err
		}
		msgs = append(msgs, d...)
	}
	for i := range msgs {
		if err := m.publishOnce(gen, &msgs[i]); err != nil {
			return err
		}
	}
	return nil
}

// publishOnce sends one message with QoS 1 and waits for the PUBACK. The
// attempt can be cancelled by connectionUp (the broker lost the session)
// and is bounded by the close deadline while closing.
func (m *mqttSink) publishOnce(gen uint64, msg *mqttMessage) error {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.packetTimeout)
	defer cancel()
	m.mu.Lock()
	if m.closing {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, m.closeDeadline)
		defer c2()
	}
	m.attemptCancel, m.attemptGen = cancel, gen
	m.mu.Unlock()
	_, err := m.cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: msg.topic, Payload: msg.payload, Retain: msg.retain})
	m.mu.Lock()
	m.attemptCancel = nil
	m.mu.Unlock()
	return err
}

// statsLoop queues a stats message every statsEvery; only the newest
// waits for the broker.
func (m *mqttSink) statsLoop() {
	defer close(m.statsDone)
	t := time.NewTicker(m.cfg.statsEvery)
	defer t.Stop()
	for {
		select {
		case <-m.statsStop:
			return
		case <-t.C:
		}
		payload, err := m.encode(m.statsPayload())
		if err != nil {
			m.logf("mqtt stats: %v", err)
			continue
		}
		m.mu.Lock()
		if m.statsPending {
			m.statsSkipped.Add(1)
		}
		m.statsMsg.set(m.topicStats, payload, false)
		m.statsPending = true
		m.mu.Unlock()
		m.poke()
	}
}

// statsPayload is the stats message: the loop's Stats plus the MQTT
// counters. NaN temperatures become null.
type statsPayload struct {
	TS          string          `json:"ts" msgpack:"ts"`
	Device      string          `json:"device" msgpack:"device"`
	Model       string          `json:"model" msgpack:"model"`
	Board       string          `json:"board" msgpack:"board"`
	Source      string          `json:"source" msgpack:"source"`
	Kernel      string          `json:"kernel" msgpack:"kernel"`
	Threads     int             `json:"threads" msgpack:"threads"`
	UptimeS     float64         `json:"uptime_s" msgpack:"uptime_s"`
	Frames      uint64          `json:"frames" msgpack:"frames"`
	FPS         float64         `json:"fps" msgpack:"fps"`
	InferFPS    float64         `json:"infer_fps" msgpack:"infer_fps"`
	Dropped     uint64          `json:"dropped" msgpack:"dropped"`
	SinkDropped uint64          `json:"sink_dropped" msgpack:"sink_dropped"`
	Reconnects  uint64          `json:"source_reconnects" msgpack:"source_reconnects"`
	StagesMs    statsStages     `json:"stages_ms" msgpack:"stages_ms"`
	TempC       *float64        `json:"temp_c" msgpack:"temp_c"`
	Throttled   string          `json:"throttled" msgpack:"throttled"`
	MQTT        mqttStatsFields `json:"mqtt" msgpack:"mqtt"`
}

type statsStages struct {
	Capture    statsStage `json:"capture" msgpack:"capture"`
	Preprocess statsStage `json:"preprocess" msgpack:"preprocess"`
	Inference  statsStage `json:"inference" msgpack:"inference"`
	Sinks      statsStage `json:"sinks" msgpack:"sinks"`
	Latency    statsStage `json:"latency" msgpack:"latency"`
}

type statsStage struct {
	Mean float64 `json:"mean" msgpack:"mean"`
	P50  float64 `json:"p50" msgpack:"p50"`
	P99  float64 `json:"p99" msgpack:"p99"`
}

// mqttStatsFields are the MQTT output's own counters.
type mqttStatsFields struct {
	Published    uint64 `json:"events_published" msgpack:"events_published"`
	Dropped      uint64 `json:"events_dropped" msgpack:"events_dropped"`
	Queued       int    `json:"events_queued" msgpack:"events_queued"`
	StatsSkipped uint64 `json:"stats_skipped" msgpack:"stats_skipped"`
	Connects     uint64 `json:"connects" msgpack:"connects"`
}

func stageOfStats(s live.StageStats) statsStage { return statsStage{s.Mean, s.P50, s.P99} }

func (m *mqttSink) statsPayload() *statsPayload {
	s := m.stats.Stats()
	p := &statsPayload{
		TS: time.Now().UTC().Format(tsLayout), Device: m.cfg.deviceID,
		Model: s.Model, Board: s.Board, Source: s.Source, Kernel: s.Kernel, Threads: s.Threads,
		UptimeS: s.Uptime.Seconds(), Frames: s.Frames, FPS: s.LoopFPS, InferFPS: s.InferFPS,
		Dropped: s.Dropped, SinkDropped: s.SinkDropped, Reconnects: s.Reconnects,
		StagesMs: statsStages{
			Capture: stageOfStats(s.Capture), Preprocess: stageOfStats(s.Preprocess),
			Inference: stageOfStats(s.Inference), Sinks: stageOfStats(s.Sinks), Latency: stageOfStats(s.Latency),
		},
		Throttled: s.Throttled,
		MQTT:      m.counters(),
	}
	if p.Model == "" {
		p.Model, p.Board = m.cfg.model, m.cfg.board
	}
	if !math.IsNaN(s.TempC) {
		t := s.TempC
		p.TempC = &t
	}
	return p
}

func (m *mqttSink) counters() mqttStatsFields {
	m.mu.Lock()
	queued := m.n
	m.mu.Unlock()
	return mqttStatsFields{
		Published: m.published.Load(), Dropped: m.dropped.Load(), Queued: queued,
		StatsSkipped: m.statsSkipped.Load(), Connects: m.connects.Load(),
	}
}

// Close stops the stats, gives the queued events drainTimeout to go out,
// publishes "offline" (a clean stop is not a lost connection, so the
// will would not fire) and disconnects.
func (m *mqttSink) Close() error {
	m.closeOnce.Do(func() {
		close(m.statsStop)
		<-m.statsDone
		if m.cm == nil {
			return
		}
		m.mu.Lock()
		m.closing = true
		m.closeDeadline = time.Now().Add(m.cfg.drainTimeout)
		m.mu.Unlock()
		m.poke()
		<-m.pubDone
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := m.cm.Disconnect(ctx); err != nil {
			m.logf("mqtt: disconnect: %v", err)
		}
		m.cancel()
		c := m.counters()
		m.infof("mqtt: %d events published, %d dropped, %d stats sent (%d skipped), %d connection(s)",
			c.Published, c.Dropped, m.statsSent.Load(), c.StatsSkipped, c.Connects)
	})
	return nil
}
