package output

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vggedge/vggedge/firmware/stream"
)

// acceptOne accepts one connection on ln in the background.
func acceptOne(ln net.Listener) chan net.Conn {
	conn := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(conn)
			return
		}
		conn <- c
	}()
	return conn
}

// The TCP output connects out, drops results while the peer is away
// (counted), reconnects with backoff, and sends a header on every
// connection, so each connection — and their concatenation — is a valid
// stream.
func TestMsgpackTCPReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the peer is away at start

	var logs strings.Builder
	logf := func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) }
	sink, err := OpenMsgpack("tcp:"+addr, NewMsgpackEncoder("digits", []string{"0", "1"}, 2), logf)
	if err != nil {
		t.Fatal(err)
	}
	s := sink.(*MsgpackNet)
	clock := time.Now()
	s.now = func() time.Time { return clock } // backoff without sleeping
	frame := uint64(0)
	write := func() {
		r := live.Result{Frame: frame, Time: clock, Top: []live.Class{{Index: 0, Label: "0", Score: 0.75}, {Index: 1, Label: "1", Score: 0.25}}, LatencyMs: 1, Truth: -1}
		frame++
		if err := s.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		write() // within the backoff: dropped without dialling
	}
	if s.Dropped() != 5 {
		t.Fatalf("dropped %d while the peer was away, want 5", s.Dropped())
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	conns := acceptOne(ln)
	clock = clock.Add(time.Second) // past the backoff: the next Write dials
	for range 5 {
		write() // frames 5..9
	}
	c := <-conns
	if c == nil {
		t.Fatal("no connection")
	}
	// The peer reads frames 5..9, then goes away.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	r1 := stream.NewReader(c)
	var f1 []uint64
	for range 5 {
		res, err := r1.Next()
		if err != nil {
			t.Fatalf("first connection: %v", err)
		}
		f1 = append(f1, res.Frame)
	}
	h1 := r1.Header()
	ln.Close()
	c.Close()
	// Writes fail once the peer's reset arrives; until then the kernel
	// takes them.
	deadline := time.Now().Add(10 * time.Second)
	for s.conn != nil {
		if time.Now().After(deadline) {
			t.Fatal("writes to a closed peer never failed")
		}
		write()
		time.Sleep(5 * time.Millisecond)
	}
	lostAt := frame
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer ln.Close()
	conns = acceptOne(ln)
	clock = clock.Add(time.Second)
	for range 3 {
		write()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c = <-conns
	if c == nil {
		t.Fatal("no second connection")
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b2, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	all := func(b []byte) (frames []uint64, hdr *stream.Header) {
		r := stream.NewReader(bytes.NewReader(b))
		for {
			res, err := r.Next()
			if err == io.EOF {
				return frames, r.Header()
			}
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			frames = append(frames, res.Frame)
		}
	}
	f2, h2 := all(b2)
	if h1 == nil || h2 == nil || h2.Model != "digits" || len(h2.Labels) != 2 {
		t.Errorf("headers %+v and %+v", h1, h2)
	}
	if f1[0] != 5 || f1[4] != 9 {
		t.Errorf("first connection got frames %v, want 5..9", f1)
	}
	if len(f2) != 3 || f2[0] != lostAt || f2[2] != lostAt+2 {
		t.Errorf("second connection got frames %v, want %d..%d", f2, lostAt, lostAt+2)
	}
	// A second header mid-stream (as a reader of both connections sees).
	fa, _ := all(append(append(stream.AppendHeader(nil, &stream.Header{Model: "x"}), stream.AppendResult(nil, &stream.Result{Frame: 1})...), b2...))
	if len(fa) != 1+len(f2) {
		t.Errorf("the concatenated stream holds %d frames, want %d", len(fa), 1+len(f2))
	}
	if delivered := uint64(len(f1) + len(f2)); s.Dropped() < 6 || s.Dropped()+delivered > frame {
		t.Errorf("dropped %d, delivered %d, written %d", s.Dropped(), delivered, frame)
	}
	if !strings.Contains(logs.String(), "dropping results until it is back") || !strings.Contains(logs.String(), "reconnecting") {
		t.Errorf("log:\n%s", logs.String())
	}
}

func TestMsgpackOutputErrors(t *testing.T) {
	enc := NewMsgpackEncoder("m", nil, 1)
	for _, tt := range []struct{ target, want string }{
		{"", "want msgpack:PATH"},
		{"tcp:localhost", "output msgpack:tcp:localhost: want HOST:PORT"},
		{"unix:", "want the socket's path"},
		{"/no/such/dir/out.msgpack", "output msgpack:/no/such/dir/out.msgpack: open /no/such/dir/out.msgpack: no such file or directory"},
	} {
		if _, err := OpenMsgpack(tt.target, enc, t.Logf); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.target, err, tt.want)
		}
	}
}

// A reader that disconnects loses nothing uncounted (issue 14: one result
// per disconnect went into the closed connection without being counted):
// every result is either read by a reader or counted as dropped.
func TestMsgpackTCPDisconnectCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := acceptOne(ln)
	sink, err := OpenMsgpack("tcp:"+ln.Addr().String(), NewMsgpackEncoder("digits", []string{"0", "1"}, 2), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	s := sink.(*MsgpackNet)
	clock := time.Now()
	s.now = func() time.Time { return clock }
	written := uint64(0)
	write := func(n int) {
		for range n {
			r := live.Result{Frame: written, Time: clock, Top: []live.Class{{Index: 0, Label: "0", Score: 0.75}, {Index: 1, Label: "1", Score: 0.25}}, LatencyMs: 1, Truth: -1}
			written++
			if err := s.Write(&r); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func(c net.Conn, n int) []uint64 {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		r := stream.NewReader(c)
		var got []uint64
		for len(got) < n {
			res, err := r.Next()
			if err != nil {
				t.Fatalf("after %d results: %v", len(got), err)
			}
			got = append(got, res.Frame)
		}
		return got
	}
	c := <-conns
	if c == nil {
		t.Fatal("no connection")
	}
	write(5)
	got := read(c, 5)
	conns = acceptOne(ln)
	c.Close() // the reader goes away having read all it was sent
	deadline := time.Now().Add(10 * time.Second)
	for !s.peerGone.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the sink never noticed the reader hung up")
		}
		time.Sleep(time.Millisecond)
	}
	write(3) // no reader: all dropped, the first one too
	if d := s.Dropped(); d != 3 {
		t.Errorf("dropped %d of the 3 results written after the reader hung up, want 3", d)
	}
	clock = clock.Add(time.Second) // past the backoff: the next write redials
	write(4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c = <-conns
	if c == nil {
		t.Fatal("no second connection")
	}
	defer c.Close()
	got = append(got, read(c, 4)...)
	if n := uint64(len(got)) + s.Dropped(); n != written {
		t.Errorf("%d results read + %d dropped = %d, want the %d written (read %v)", len(got), s.Dropped(), n, written, got)
	}
}
