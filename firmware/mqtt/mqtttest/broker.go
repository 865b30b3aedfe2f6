package mqtttest

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Msg is one message the broker delivered to the recorder.
type Msg struct {
	Topic   string
	Payload []byte
	At      time.Time
}

// Broker is a running broker and what it recorded.
type Broker struct {
	srv  *mqtt.Server
	Addr string // host:port actually bound

	mu      sync.Mutex
	msgs    []Msg
	changed chan struct{}
	stopped bool
}

// Start serves MQTT on addr ("127.0.0.1:0" for any port) and
// records every message on every topic.
func Start(t *testing.T, addr string) *Broker {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(l); err != nil {
		t.Fatalf("broker on %s: %v", addr, err)
	}
	b := &Broker{srv: srv, Addr: l.Address(), changed: make(chan struct{}, 1)}
	if err := srv.Subscribe("#", 1, b.record); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

func (b *Broker) record(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
	b.Record(pk.TopicName, pk.Payload)
}

// NewRecorder is a Broker that serves nothing: a test's own MQTT client
// fills it with Record, and On and WaitFor read it.
func NewRecorder() *Broker { return &Broker{changed: make(chan struct{}, 1), stopped: true} }

// Record adds a message as if the broker had delivered it.
func (b *Broker) Record(topic string, payload []byte) {
	b.mu.Lock()
	b.msgs = append(b.msgs, Msg{topic, bytes.Clone(payload), time.Now()})
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

func (b *Broker) Stop() {
	b.mu.Lock()
	stopped := b.stopped
	b.stopped = true
	b.mu.Unlock()
	if !stopped {
		b.srv.Close()
	}
}

func (b *Broker) URL() *url.URL { return &url.URL{Scheme: "mqtt", Host: b.Addr} }

// On returns the messages recorded on topic so far.
func (b *Broker) On(topic string) []Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Msg
	for _, m := range b.msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor waits (generously: the machine is loaded) until done holds for
// the messages recorded so far.
func (b *Broker) WaitFor(t *testing.T, what string, done func() bool) {
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

// WaitPayload waits for a message on topic with this payload.
func (b *Broker) WaitPayload(t *testing.T, topic, payload string, after int) {
	t.Helper()
	b.WaitFor(t, fmt.Sprintf("%q on %s", payload, topic), func() bool {
		ms := b.On(topic)
		for _, m := range ms[min(after, len(ms)):] {
			if string(m.Payload) == payload {
				return true
			}
		}
		return false
	})
}

// Retained is the broker's retained message on topic, "" when none.
func (b *Broker) Retained(topic string) string {
	for _, pk := range b.srv.Topics.Messages(topic) {
		return string(pk.Payload)
	}
	return ""
}
