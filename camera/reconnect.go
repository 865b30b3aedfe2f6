package camera

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Read after (or while) the source is closed.
var ErrClosed = errors.New("source closed")

// Default reconnect backoff when Options leave it zero.
const (
	defaultBackoff    = 500 * time.Millisecond
	defaultMaxBackoff = 10 * time.Second
)

// backoffPolicy doubles a wait from Options.Backoff up to
// Options.MaxBackoff, and starts over after a success.
type backoffPolicy struct {
	first, max, cur time.Duration
}

func newBackoff(o Options) backoffPolicy {
	b := backoffPolicy{first: o.Backoff, max: o.MaxBackoff}
	if b.first <= 0 {
		b.first = defaultBackoff
	}
	if b.max <= 0 {
		b.max = defaultMaxBackoff
	}
	b.max = max(b.max, b.first)
	return b
}

// next returns the wait before the next attempt.
func (b *backoffPolicy) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.first
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoffPolicy) reset() { b.cur = 0 }

// sleepOrDone waits d; false means done closed first.
func sleepOrDone(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

func logf(o Options, format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// logEvery is the most often a logLimiter lets a line through.
const logEvery = time.Second

// logLimiter lets one line a second through and counts the others, so
// that a stream of broken frames cannot flood the journal: the next line
// that goes out says how many were held back. The zero value is ready.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *logLimiter) logf(o Options, format string, args ...any) {
	if o.Logf == nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < logEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if n > 0 {
		msg += fmt.Sprintf(" [%d similar line(s) suppressed]", n)
	}
	o.Logf("%s", msg)
}

// ReconnectingSource keeps a live source going across failures; see
// Reconnecting.
type ReconnectingSource struct {
	uri  string
	open func() (Source, error)
	o    Options

	mu     sync.Mutex // guards cur against Close
	cur    Source
	done   chan struct{}
	closer sync.Once

	seq        uint64
	backoff    backoffPolicy
	failures   int // since the last frame
	reconnects atomic.Uint64
	innerGone  atomic.Uint64 // restarts counted by sources already dropped
	ended      atomic.Bool   // the source returned ErrEnded: it is not reopened
}

// Reconnecting wraps a live source so that it survives a camera being
// unplugged, a driver hiccup or a fifo's writer going away: on a Read
// error (io.EOF included) it closes the source, logs, waits (Options.Backoff
// doubling up to MaxBackoff), reopens it with open and goes on. Read blocks
// until a frame arrives or Close is called; Close interrupts a wait. Frame
// Seq continues across reconnects. uri names the source in the log.
func Reconnecting(uri string, open func() (Source, error), o Options) Source {
	return &ReconnectingSource{uri: uri, open: open, o: o, done: make(chan struct{}), backoff: newBackoff(o)}
}

func (r *ReconnectingSource) Read(f *Frame) error {
	if r.ended.Load() {
		return ErrEnded
	}
	for {
		select {
		case <-r.done:
			return ErrClosed
		default:
		}
		src, err := r.current()
		if err == nil {
			if err = src.Read(f); errors.Is(err, ErrEnded) {
				r.drop(src)
				r.ended.Store(true)
				return err // a finite command is done: nothing to reconnect
			} else if err == nil {
				if r.failures > 0 {
					r.reconnects.Add(1)
					logf(r.o, "%s: reconnected after %d failed attempt(s)", r.uri, r.failures)
					r.failures = 0
				}
				r.backoff.reset()
				f.Seq = r.seq
				r.seq++
				return nil
			}
			r.drop(src)
		}
		select {
		case <-r.done:
			return ErrClosed
		default:
		}
		r.failures++
		wait := r.backoff.next()
		logf(r.o, "%s: %v; reconnecting in %v", r.uri, err, wait)
		if !sleepOrDone(wait, r.done) {
			return ErrClosed
		}
	}
}

// current returns the open source, opening one when there is none.
func (r *ReconnectingSource) current() (Source, error) {
	r.mu.Lock()
	src := r.cur
	r.mu.Unlock()
	if src != nil {
		return src, nil
	}
	src, err := r.open()
	if err != nil {
		return nil, fmt.Errorf("reopen: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done: // closed while opening
		src.Close()
		return nil, ErrClosed
	default:
	}
	r.cur = src
	return src, nil
}

// drop closes a failed source.
func (r *ReconnectingSource) drop(src Source) {
	r.mu.Lock()
	if r.cur == src {
		if c, ok := src.(restartCounter); ok {
			r.innerGone.Add(c.Reconnects())
		}
		r.cur = nil
	}
	r.mu.Unlock()
	src.Close()
}

// restartCounter is a source that restarts itself (a supervised program).
type restartCounter interface{ Reconnects() uint64 }

// Reconnects counts the times the source came back after failing: its
// reopens, and the restarts of the program behind it (a pipe: or csi://
// command restarted by its supervisor).
func (r *ReconnectingSource) Reconnects() uint64 {
	n := r.reconnects.Load() + r.innerGone.Load()
	r.mu.Lock()
	if c, ok := r.cur.(restartCounter); ok {
		n += c.Reconnects()
	}
	r.mu.Unlock()
	return n
}

// Live reports true: Reconnecting is for live sources.
func (r *ReconnectingSource) Live() bool { return true }

// Close closes the current source, which interrupts a blocked Read, and
// stops any wait for a reconnect.
func (r *ReconnectingSource) Close() error {
	var err error
	r.closer.Do(func() {
		r.mu.Lock()
		close(r.done)
		src := r.cur
		r.cur = nil
		r.mu.Unlock()
		if src != nil {
			err = src.Close()
		}
	})
	return err
}
