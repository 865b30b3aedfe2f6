package camera

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fifoSource reads GRAY8 frames of n bytes from a named pipe; a closed
// writer is io.EOF, as for a camera that went away.
type fifoSource struct {
	f *os.File
	n int
}

func (s *fifoSource) Read(fr *Frame) error {
	fr.Data = resizeData(fr.Data, s.n)
	if _, err := io.ReadFull(s.f, fr.Data); err != nil {
		return err
	}
	fr.Format, fr.Width, fr.Height, fr.Label = GRAY8, s.n, 1, -1
	return nil
}

func (s *fifoSource) Close() error { return s.f.Close() }

// A fifo whose writer closes and comes back: Reconnecting reopens it and
// the reader gets every frame, numbered on, and the log says so.
func TestReconnectingFifo(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "camera.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	var log syncLog
	opens := 0
	// A fifo has EOF only while no writer has it open, so the writer
	// comes back only once the reader saw the EOF and is reopening.
	reopening := make(chan struct{}, 3)
	src := Reconnecting("fifo:"+fifo, func() (Source, error) {
		opens++
		reopening <- struct{}{}
		f, err := os.Open(fifo) // blocks until a writer opens the fifo
		if err != nil {
			return nil, err
		}
		return &fifoSource{f: f, n: 4}, nil
	}, Options{Logf: log.logf, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	defer src.Close()

	writerDone := make(chan error, 1)
	go func() {
		// Three sessions of three frames each; the writer closes between.
		for session := range 3 {
			<-reopening
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				writerDone <- err
				return
			}
			for i := range 3 {
				v := byte(session*3 + i)
				if _, err := w.Write([]byte{v, v, v, v}); err != nil {
					writerDone <- err
					return
				}
			}
			w.Close()
		}
		writerDone <- nil
	}()
	var f Frame
	for i := range 9 {
		if err := src.Read(&f); err != nil {
			t.Fatal(err)
		}
		if f.Seq != uint64(i) || f.Data[0] != byte(i) {
			t.Fatalf("frame %d: seq %d data %v", i, f.Seq, f.Data)
		}
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	if n := src.(*ReconnectingSource).Reconnects(); n != 2 || opens != 3 {
		t.Errorf("%d reconnects, %d opens; want 2 and 3", n, opens)
	}
	if s := log.String(); !strings.Contains(s, "fifo:"+fifo+": EOF; reconnecting in 1ms") || !strings.Contains(s, "reconnected after 1 failed attempt(s)") {
		t.Errorf("log:\n%s", s)
	}
}

// A source whose reopening fails keeps backing off (doubling to the
// maximum) until it works.
func TestReconnectingBackoff(t *testing.T) {
	var log syncLog
	fails := 4
	src := Reconnecting("flaky", func() (Source, error) {
		if fails > 0 {
			fails--
			return nil, errors.New("device busy")
		}
		return Open("synthetic:?fps=0&w=64&h=16", Options{})
	}, Options{Logf: log.logf, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	defer src.Close()
	var f Frame
	if err := src.Read(&f); err != nil {
		t.Fatal(err)
	}
	want := []string{"in 1ms", "in 2ms", "in 4ms", "in 4ms", "reconnected after 4 failed"}
	s := log.String()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("log lacks %q:\n%s", w, s)
		}
	}
	if !strings.Contains(s, "flaky: reopen: device busy; reconnecting in 1ms") {
		t.Errorf("log:\n%s", s)
	}
}

func TestReconnectingCloseInterruptsWait(t *testing.T) {
	src := Reconnecting("gone", func() (Source, error) {
		return nil, errors.New("unplugged")
	}, Options{Backoff: time.Hour})
	res := make(chan error)
	go func() { res <- src.Read(&Frame{}) }()
	time.Sleep(10 * time.Millisecond) // let Read reach its wait; the result is the same if not
	src.Close()
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("read: %v, want ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not interrupt the reconnect wait")
	}
}

// Close also interrupts a Read blocked inside the wrapped source.
func TestReconnectingCloseInterruptsRead(t *testing.T) {
	src := Reconnecting("pipe", func() (Source, error) {
		return Open("pipe:exec sleep 600", Options{Format: GRAY8, Width: 4, Height: 4})
	}, Options{})
	res := make(chan error)
	go func() { res <- src.Read(&Frame{}) }()
	time.Sleep(10 * time.Millisecond)
	src.Close()
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("read: %v, want ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not interrupt Read")
	}
}

// restartingSource is a source that restarted its program n times and
// then fails.
type restartingSource struct{ n uint64 }

func (s *restartingSource) Read(*Frame) error  { return errors.New("broken") }
func (s *restartingSource) Close() error       { return nil }
func (s *restartingSource) Live() bool         { return true }
func (s *restartingSource) Reconnects() uint64 { return s.n }

// The restarts of a supervised program count as the wrapper's
// reconnects (the stats' "reconnects"), also after it was reopened.
func TestReconnectingCountsInnerRestarts(t *testing.T) {
	opened := 0
	r := Reconnecting("x", func() (Source, error) { opened++; return &restartingSource{n: 2}, nil }, Options{Backoff: time.Millisecond})
	defer r.Close()
	rs := r.(*ReconnectingSource)
	if _, err := rs.current(); err != nil {
		t.Fatal(err)
	}
	if got := rs.Reconnects(); got != 2 {
		t.Errorf("%d reconnects with the program restarted twice, want 2", got)
	}
	rs.drop(rs.cur)
	if _, err := rs.current(); err != nil {
		t.Fatal(err)
	}
	if got := rs.Reconnects(); got != 4 || opened != 2 {
		t.Errorf("%d reconnects after a reopen (%d opens), want 2 + 2", got, opened)
	}
}
