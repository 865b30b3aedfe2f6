package output

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vggedge/vggedge/firmware/stream"
)

// MsgpackEncoder turns Results into the stream format (firmware/stream)
// in a reused buffer: hand-encoded, 0 allocations per frame.
type MsgpackEncoder struct {
	header []byte // the encoded header, sent first on every file/connection
	model  string
	labels []string
	res    stream.Result
	buf    []byte
}

// NewMsgpackEncoder encodes results of model (with its labels, topK classes
// each); one per sink, since sinks run on their own goroutines.
func NewMsgpackEncoder(model string, labels []string, topK int) *MsgpackEncoder {
	return &MsgpackEncoder{
		header: stream.AppendHeader(nil, &stream.Header{Model: model, Labels: labels}),
		model:  model, labels: labels,
		res: stream.Result{Top: make([]stream.Class, 0, topK)},
		buf: make([]byte, 0, 1024),
	}
}

func (e *MsgpackEncoder) encode(r *live.Result) []byte {
	e.res.Frame, e.res.Time, e.res.LatencyMs = r.Frame, r.Time, r.LatencyMs
	e.res.Truth = ""
	if r.Truth >= 0 {
		e.res.Truth = r.TruthLabel
	}
	e.res.Top = e.res.Top[:0]
	for _, c := range r.Top {
		e.res.Top = append(e.res.Top, stream.Class{Label: c.Label, Score: c.Score})
	}
	e.buf = stream.AppendResult(e.buf[:0], &e.res)
	return e.buf
}

// MsgpackFile writes the stream to a file opened for append: a new
// file starts with the header; an existing stream is continued after its
// last complete record (a torn one, left by a SIGKILL or a power cut, is
// cut off), with a fresh header only when the model or labels changed.
// Readers may follow it while it grows.
type MsgpackFile struct {
	path   string
	enc    *MsgpackEncoder
	logf   func(string, ...any)
	f      *os.File
	w      *bufio.Writer
	reopen atomic.Bool // SIGHUP: reopen path at the next write
	rot    Rotation

	// As jsonlSink: a failed write drops and counts the records since the
	// last good flush and cuts the file back, instead of sticking.
	pending uint64
	good    int64
	lost    atomic.Uint64
	failing bool
}

// Dropped counts records lost to failed writes.
func (s *MsgpackFile) Dropped() uint64 { return s.lost.Load() }

func (s *MsgpackFile) markGood() {
	s.pending = 0
	if off, err := s.f.Seek(0, io.SeekCurrent); err == nil {
		s.good = off
	}
	if s.failing {
		s.logf("output msgpack:%s: writing again (%d results lost so far)", s.path, s.lost.Load())
		s.failing = false
	}
}

func (s *MsgpackFile) failed(extra uint64) {
	s.failing = true
	s.lost.Add(s.pending + extra)
	s.pending = 0
	s.w.Reset(s.f)
	s.f.Truncate(s.good)
}

// RequestReopen asks the sink to reopen its path before its next write
// (SIGHUP, after logrotate moved the file).
func (s *MsgpackFile) RequestReopen() { s.reopen.Store(true) }

// reopenFile flushes and closes the file and opens path again: a new file
// gets the header, an existing stream is continued. If that fails the old
// file is kept, and the reason logged.
func (s *MsgpackFile) reopenFile() {
	s.reopen.Store(false)
	oldF, oldW := s.f, s.w
	if err := oldW.Flush(); err != nil {
		s.failed(0) // counted, and the old file cut back to whole records
		s.logf("output msgpack:%s: flush before reopening: %v", s.path, err)
	}
	if err := s.open(); err != nil {
		s.f, s.w = oldF, oldW
		s.logf("%v; still writing to the file opened before", err)
		return
	}
	oldF.Close()
}

// CreateMsgpackFile opens (or continues) the stream file at path.
func CreateMsgpackFile(path string, enc *MsgpackEncoder, logf func(string, ...any)) (*MsgpackFile, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &MsgpackFile{path: path, enc: enc, logf: logf}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open opens (or reopens) the file and positions the stream's end.
func (s *MsgpackFile) open() error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("output msgpack:%s: %w", s.path, err)
	}
	needHeader, err := continueStream(f, s.enc, s.logf)
	if err != nil {
		f.Close()
		return fmt.Errorf("output msgpack:%s: %w", s.path, err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	if needHeader {
		// Written through at once: a later failed write cuts the file back
		// to its last good size, which must never be before the header.
		if _, err := w.Write(s.enc.header); err == nil {
			err = w.Flush()
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("output msgpack:%s: %w", s.path, err)
		}
	}
	s.f, s.w = f, w
	s.markGood()
	return nil
}

// continueStream reads the stream already in f (a regular file; anything
// else, such as /dev/null or a FIFO, is written to as it is) and cuts off
// a torn last record. It says whether a header must be written: the file
// is empty, or its newest header is for another model or labels.
func continueStream(f *os.File, enc *MsgpackEncoder, logf func(string, ...any)) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return true, nil
	}
	r := stream.NewReader(io.NewSectionReader(f, 0, fi.Size()))
	for err == nil {
		_, err = r.Next()
	}
	if err != io.EOF {
		return false, fmt.Errorf("the file holds something other than a results stream to continue (%v); move it away or choose another path", err)
	}
	if r.Torn() {
		if err := f.Truncate(r.Offset()); err != nil {
			return false, fmt.Errorf("cut off the torn last record: %w", err)
		}
		logf("output msgpack:%s: cut off a torn last record (%d bytes at byte %d, left by an unclean stop)", f.Name(), fi.Size()-r.Offset(), r.Offset())
	}
	h := r.Header()
	if h == nil {
		return true, nil
	}
	return h.Model != enc.model || !slices.Equal(h.Labels, enc.labels), nil
}

func (s *MsgpackFile) Write(r *live.Result) error {
	if s.reopen.Load() {
		s.reopenFile()
	}
	if _, err := s.w.Write(s.enc.encode(r)); err != nil {
		s.failed(1)
		return err
	}
	s.pending++
	return nil
}

func (s *MsgpackFile) Flush() error {
	if err := s.w.Flush(); err != nil {
		s.failed(0)
		return err
	}
	s.markGood()
	if s.rot.maxBytes > 0 && s.good >= s.rot.maxBytes {
		if err := shiftFiles(s.path, s.rot.keep); err != nil {
			s.logf("output msgpack:%s: rotate: %v; going on in the same file", s.path, err)
		} else {
			s.reopenFile() // a new PATH, starting with the header
		}
	}
	return nil
}

func (s *MsgpackFile) Close() error {
	err := s.w.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// MsgpackNet sends the stream to a TCP or unix-socket listener. It
// connects out, sends the header on every connection, and while the peer
// is away drops results (counted) and redials with doubling backoff. It
// never buffers more than one frame: a live stream is only worth its
// newest results.
type MsgpackNet struct {
	network, addr string
	enc           *MsgpackEncoder
	logf          func(string, ...any)

	conn     net.Conn
	peerGone *atomic.Bool // set by watchPeer when conn's reader hung up
	nextDial time.Time
	backoff  time.Duration
	now      func() time.Time

	dropped atomic.Uint64 // results not sent because there was no connection
}

// Backoff between dials: the first retry is quick, a peer that stays away
// costs one dial every maxNetBackoff.
const (
	minNetBackoff = 250 * time.Millisecond
	maxNetBackoff = 10 * time.Second
	netTimeout    = 2 * time.Second // dial and per-write deadline
)

func newMsgpackNetSink(network, addr string, enc *MsgpackEncoder, logf func(string, ...any)) *MsgpackNet {
	s := &MsgpackNet{network: network, addr: addr, enc: enc, logf: logf, backoff: minNetBackoff, now: time.Now}
	s.dial() // a listener that is up at start gets every frame
	return s
}

func (s *MsgpackNet) name() string { return "msgpack:" + s.network + ":" + s.addr }

func (s *MsgpackNet) dial() {
	c, err := net.DialTimeout(s.network, s.addr, netTimeout)
	if err == nil {
		c.SetWriteDeadline(time.Now().Add(netTimeout))
		_, err = c.Write(s.enc.header)
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		if s.backoff == minNetBackoff {
			s.logf("output %s: %v; dropping results until it is back (retrying with backoff up to %v)", s.name(), err, maxNetBackoff)
		}
		s.nextDial = s.now().Add(s.backoff)
		s.backoff = min(2*s.backoff, maxNetBackoff)
		return
	}
	if s.backoff > minNetBackoff {
		s.logf("output %s: connected (%d results dropped so far)", s.name(), s.dropped.Load())
	}
	s.conn, s.backoff = c, minNetBackoff
	s.peerGone = new(atomic.Bool)
	go watchPeer(c, s.peerGone)
}

// watchPeer reads conn until it fails, then sets gone. A reader never
// sends anything, so this is how a disconnect shows before a write fails:
// after the reader hung up the kernel still accepts a write (and the
// peer answers it with a reset), so without it the first result after
// every disconnect was lost without being counted. Close ends it.
func watchPeer(c net.Conn, gone *atomic.Bool) {
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			gone.Store(true)
			return
		}
	}
}

func (s *MsgpackNet) Write(r *live.Result) error {
	if s.conn == nil && !s.now().Before(s.nextDial) {
		s.dial()
	}
	if s.conn == nil {
		s.dropped.Add(1)
		return nil
	}
	if s.peerGone.Load() {
		s.conn.Close()
		s.conn = nil
		s.dropped.Add(1)
		s.logf("output %s: the reader closed the connection; reconnecting", s.name())
		s.backoff = minNetBackoff
		s.nextDial = s.now().Add(s.backoff)
		return nil
	}
	s.conn.SetWriteDeadline(s.now().Add(netTimeout))
	if _, err := s.conn.Write(s.enc.encode(r)); err != nil {
		s.conn.Close()
		s.conn = nil
		s.dropped.Add(1)
		s.logf("output %s: %v; reconnecting", s.name(), err)
		s.backoff = minNetBackoff
		s.nextDial = s.now().Add(s.backoff)
		return nil
	}
	return nil
}

// Dropped counts results lost while disconnected; the loop adds it to
// Stats.SinkDropped.
func (s *MsgpackNet) Dropped() uint64 { return s.dropped.Load() }

func (s *MsgpackNet) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// OpenMsgpack opens "PATH", "tcp:HOST:PORT" or "unix:PATH" (what
// follows "msgpack:" in --output).
func OpenMsgpack(target string, enc *MsgpackEncoder, logf func(string, ...any)) (live.Sink, error) {
	if target == "" {
		return nil, fmt.Errorf("output msgpack: want msgpack:PATH, msgpack:tcp:HOST:PORT or msgpack:unix:PATH")
	}
	if addr, ok := strings.CutPrefix(target, "tcp:"); ok {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("output msgpack:tcp:%s: want HOST:PORT (%v)", addr, err)
		}
		return newMsgpackNetSink("tcp", addr, enc, logf), nil
	}
	if path, ok := strings.CutPrefix(target, "unix:"); ok {
		if path == "" {
			return nil, fmt.Errorf("output msgpack:unix: want the socket's path")
		}
		return newMsgpackNetSink("unix", path, enc, logf), nil
	}
	path, rot, err := SplitRotation(target)
	if err != nil {
		return nil, fmt.Errorf("output msgpack:%s: %w", target, err)
	}
	s, err := CreateMsgpackFile(path, enc, logf)
	if err != nil {
		return nil, err
	}
	s.rot = rot
	return s, nil
}
