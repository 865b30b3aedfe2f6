package mqtt

import (
	"github.com/vggedge/vggedge/firmware/live"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/vggedge/vggedge/camera"
)

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
type Sink struct {
	cfg   Config
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
func NewSink(c Config, stats live.StatsSource, logf, infof func(string, ...any)) (*Sink, error) {
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
	m := &Sink{
		cfg: c, stats: stats, logf: logf, infof: infof,
		det:        newChangeDetector(c.detector),
		topicAvail: Topic(c.deviceID, KindAvailability),
		topicEvent: Topic(c.deviceID, KindEvent),
		topicStats: Topic(c.deviceID, KindStats),
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
		WillMessage:                   &paho.WillMessage{Topic: m.topicAvail, Payload: []byte(PayloadOffline), QoS: 1, Retain: true},
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

func (m *Sink) whenText() string {
	if m.cfg.detector.When == nil {
		return " of any label"
	}
	return " of " + strings.Join(m.cfg.detector.When, ",")
}

func (m *Sink) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// connectionUp runs on autopaho's goroutine after each CONNACK. When the
// broker kept no session (it restarted), a publish waiting for its PUBACK
// will never get one: cancel it so the publisher sends it again.
func (m *Sink) connectionUp(_ *autopaho.ConnectionManager, ack *paho.Connack) {
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

func (m *Sink) connectionDown() bool {
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
func (m *Sink) connectError(err error) {
	if n := m.connectFails.Add(1); n&(n-1) == 0 {
		m.logf("mqtt: %v (%d attempts so far; retrying with backoff)", redactErr(err, m.cfg.broker), n)
	}
}

// ObservePicture keeps a copy of the frame when snapshots are on; it runs
// on the inference goroutine and only copies.
func (m *Sink) ObservePicture(f *camera.Frame) {
	if m.snap != nil {
		m.snap.ObservePicture(f)
	}
}

// Write runs the change detector; only an event costs anything more.
func (m *Sink) Write(r *live.Result) error {
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
	if ev.State == EventDisappeared {
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
func (m *Sink) enqueue(payload []byte) {
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
func (m *Sink) Dropped() uint64 { return m.dropped.Load() }

func eventPayloadOf(ev *labelEvent, snapshot string) *EventPayload {
	return &EventPayload{
		State: ev.State, Label: ev.Label, Score: Score(ev.Score), Previous: ev.Previous, Frame: ev.Frame,
		TS: ev.Time.UTC().Format(TimeLayout), Since: ev.Since.UTC().Format(TimeLayout), Snapshot: snapshot,
	}
}

func (m *Sink) encode(v any) ([]byte, error) {
	if m.cfg.msgpack {
		return msgpack.Marshal(v)
	}
	return json.Marshal(v)
}

// publishLoop sends, in order: "online" and the discovery configs after
// each (re)connection, then the queued events, then the newest stats. A
// message leaves the queue only once the broker acknowledged it (QoS 1:
// at least once); after a failure it is sent again on the next connection.
func (m *Sink) publishLoop() {
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
				if err := m.publishOnce(gen, &mqttMessage{topic: m.topicAvail, payload: []byte(PayloadOffline), retain: true}); err != nil {
					m.logf("mqtt: publish %s: %v", PayloadOffline, err)
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
func (m *Sink) waitWake(closing bool, deadline time.Time) {
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
func (m *Sink) pause(err error) {
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
func (m *Sink) announce(gen uint64) error {
	msgs := []mqttMessage{{topic: m.topicAvail, payload: []byte(PayloadOnline), retain: true}}
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
func (m *Sink) publishOnce(gen uint64, msg *mqttMessage) error {
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
func (m *Sink) statsLoop() {
	defer close(m.statsDone)
	t := time.NewTicker(m.cfg.statsEvery)
	defer t.Stop()
	for {
		select {
		case <-m.statsStop:
			return
		case <-t.C:
		}
		payload, err := m.encode(m.StatsPayload())
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

func stageOfStats(s live.StageStats) StatsStage { return StatsStage{s.Mean, s.P50, s.P99} }

func (m *Sink) StatsPayload() *StatsPayload {
	s := m.stats.Stats()
	p := &StatsPayload{
		TS: time.Now().UTC().Format(TimeLayout), Device: m.cfg.deviceID,
		Model: s.Model, Board: s.Board, Source: s.Source, Kernel: s.Kernel, Threads: s.Threads,
		UptimeS: s.Uptime.Seconds(), Frames: s.Frames, FPS: s.LoopFPS, InferFPS: s.InferFPS,
		Dropped: s.Dropped, SinkDropped: s.SinkDropped, Reconnects: s.Reconnects,
		StagesMs: StatsStages{
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

func (m *Sink) counters() StatsCounters {
	m.mu.Lock()
	queued := m.n
	m.mu.Unlock()
	return StatsCounters{
		Published: m.published.Load(), Dropped: m.dropped.Load(), Queued: queued,
		StatsSkipped: m.statsSkipped.Load(), Connects: m.connects.Load(),
	}
}

// Close stops the stats, gives the queued events drainTimeout to go out,
// publishes "offline" (a clean stop is not a lost connection, so the
// will would not fire) and disconnects.
func (m *Sink) Close() error {
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
