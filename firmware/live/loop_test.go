package live

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/camera"
)

// recordSink keeps copies of what it is given.
type recordSink struct {
	mu      sync.Mutex
	results []Result
	closed  bool
}

func (s *recordSink) Write(r *Result) error {
	c := *r
	c.Top = append([]Class(nil), r.Top...)
	s.mu.Lock()
	s.results = append(s.results, c)
	s.mu.Unlock()
	return nil
}

func (s *recordSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// stuckSink blocks in Write until release is closed: a sink on a dead
// NFS mount, a pipe nobody reads.
type stuckSink struct {
	release chan struct{}
	entered atomic.Int64
}

func (s *stuckSink) Write(*Result) error {
	s.entered.Add(1)
	<-s.release
	return nil
}

func (s *stuckSink) Close() error { return nil }

// A sink that blocks forever costs its own results, never the loop's:
// every frame is still classified and reaches the other sink, the stuck
// sink's drops are counted, and shutdown gives up on it after the timeout.
func TestLoopStuckSinkNeverStalls(t *testing.T) {
	stuck := &stuckSink{release: make(chan struct{})}
	defer close(stuck.release)
	rec := &recordSink{}
	l := NewTestLoop(t, "idx:"+GomnistDir(t), Config{
		Outputs:    []NamedSink{{"stuck", stuck}, {"record", rec}},
		MaxFrames:  500,
		QueueDepth: 8,
		// Large enough for the record sink to drain on a loaded machine.
		CloseTimeout: 3 * time.Second,
	})
	err := l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "output stuck: still writing after 3s; 8 queued results lost") {
		t.Errorf("Run: %v, want the stuck sink reported", err)
	}
	s := l.Stats()
	if s.Frames != 500 {
		t.Errorf("%d frames classified, want 500", s.Frames)
	}
	// One result is inside Write, 8 wait in the ring: the rest is dropped.
	stuckDropped, recDropped := l.queues[0].dropped.Load(), l.queues[1].dropped.Load()
	if stuckDropped != 500-1-8 || stuck.entered.Load() != 1 {
		t.Errorf("stuck sink: %d dropped, entered Write %d times; want %d and 1", stuckDropped, stuck.entered.Load(), 500-1-8)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if uint64(len(rec.results))+recDropped != 500 || s.SinkDropped != stuckDropped+recDropped {
		t.Errorf("healthy sink: %d results + %d dropped, want 500; total sink-dropped %d", len(rec.results), recDropped, s.SinkDropped)
	}
	if !rec.closed {
		t.Error("the healthy sink was not closed")
	}
	// The healthy sink's queue is 8 deep too, so under load it may drop
	// (counted above); what it gets comes in order.
	if len(rec.results) == 0 {
		t.Fatal("the healthy sink got nothing")
	}
	for i := 1; i < len(rec.results); i++ {
		if rec.results[i].Frame <= rec.results[i-1].Frame {
			t.Fatalf("results out of order: %d after %d", rec.results[i].Frame, rec.results[i-1].Frame)
		}
	}
}

// slowPictureSink makes inference slow by taking its time in
// ObservePicture (which runs on the inference goroutine).
type slowPictureSink struct {
	recordSink
	delay time.Duration
	seen  []uint64
}

func (s *slowPictureSink) ObservePicture(f *camera.Frame) {
	s.seen = append(s.seen, f.Seq)
	time.Sleep(s.delay)
}

// A live source faster than inference: the loop keeps only the newest
// frame, counts the others as dropped, and never works on a backlog.
func TestLoopLiveKeepsNewest(t *testing.T) {
	slow := &slowPictureSink{delay: 50 * time.Millisecond}
	l := NewTestLoop(t, "bundled:digits?fps=500", Config{
		Outputs:   []NamedSink{{"slow", slow}},
		MaxFrames: 20,
	})
	if !l.live {
		t.Fatal("bundled:digits?fps=500 is not live")
	}
	if err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	if s.Frames != 20 || len(slow.seen) != 20 {
		t.Fatalf("%d frames, %d observed", s.Frames, len(slow.seen))
	}
	// 50 ms per frame against a frame every 2 ms: most frames are
	// replaced before inference gets to them.
	gaps := 0
	for i := 1; i < len(slow.seen); i++ {
		if slow.seen[i] <= slow.seen[i-1] {
			t.Fatalf("frame %d after %d", slow.seen[i], slow.seen[i-1])
		}
		if slow.seen[i] > slow.seen[i-1]+1 {
			gaps++
		}
	}
	last := slow.seen[len(slow.seen)-1]
	t.Logf("classified %v; dropped %d; latency p50 %.1f ms p99 %.1f ms", slow.seen, s.Dropped, s.Latency.P50, s.Latency.P99)
	if gaps == 0 || s.Dropped == 0 {
		t.Errorf("no frames skipped (dropped %d): the loop is not keeping the newest", s.Dropped)
	}
	// Every frame before the last classified one was either classified
	// or counted as dropped (capture goes on during the last step, so
	// more may be dropped after it).
	if s.Frames+s.Dropped < last+1 {
		t.Errorf("frames %d + dropped %d < %d frames up to the last classified one", s.Frames, s.Dropped, last+1)
	}
}

// Stats after a run: counters, rolling stage times, the last result as a
// copy the caller owns.
func TestLoopStats(t *testing.T) {
	rec := &recordSink{}
	l := NewTestLoop(t, "idx:"+GomnistDir(t), Config{
		Outputs: []NamedSink{{"record", rec}}, MaxFrames: 300, TopK: 3, Model: "digits", Board: "test", Kernel: "k",
	})
	if err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	rec.mu.Lock()
	got := uint64(len(rec.results))
	rec.mu.Unlock()
	if s.Frames != 300 || s.Dropped != 0 || got+s.SinkDropped != 300 {
		t.Errorf("frames %d, dropped %d, sink got %d + dropped %d", s.Frames, s.Dropped, got, s.SinkDropped)
	}
	if s.Model != "digits" || s.Board != "test" || s.Kernel != "k" || s.Threads != 1 || s.Source == "" || s.Uptime <= 0 {
		t.Errorf("identity fields: %+v", s)
	}
	for name, st := range map[string]StageStats{"inference": s.Inference, "latency": s.Latency, "preprocess": s.Preprocess, "capture": s.Capture} {
		if st.Mean < 0 || st.P50 > st.P99 || (name != "preprocess" && name != "capture" && st.P99 <= 0) {
			t.Errorf("%s: %+v", name, st)
		}
	}
	if s.LoopFPS <= 0 || s.InferFPS <= 0 {
		t.Errorf("loop %.1f fps, inference %.1f fps", s.LoopFPS, s.InferFPS)
	}
	if s.Last == nil || s.Last.Frame != 299 || len(s.Last.Top) != 3 || s.Last.Truth < 0 {
		t.Fatalf("last %+v", s.Last)
	}
	s.Last.Top[0].Label = "changed"
	if l.Stats().Last.Top[0].Label == "changed" {
		t.Error("Stats().Last shares its Top with the loop")
	}
	if !math.IsNaN(s.TempC) && (s.TempC < -40 || s.TempC > 150) {
		t.Errorf("temperature %v °C", s.TempC)
	}
	if want := boards.CPUTemp(); (want == 0) != math.IsNaN(s.TempC) {
		t.Errorf("TempC %v but boards.CPUTemp says %v", s.TempC, want)
	}
}

func TestSoftmaxTopK(t *testing.T) {
	labels := []string{"a", "b", "c", "d"}
	for _, tt := range []struct {
		logits []float32
		k      int
		want   []int // indices, best first
	}{
		{[]float32{1, 3, 2, 0}, 2, []int{1, 2}},
		{[]float32{1, 3, 2, 0}, 4, []int{1, 2, 0, 3}},
		{[]float32{5, 5, 5, 5}, 3, []int{0, 1, 2}}, // ties: lower index first
		{[]float32{-1000, 1000, 0, 999}, 1, []int{1}},
		{[]float32{88, 89, 90, 91}, 4, []int{3, 2, 1, 0}}, // exp(91) overflows float32 without the max shift
	} {
		p := make([]float32, len(tt.logits))
		softmax(p, tt.logits)
		var sum float64
		for _, v := range p {
			if math.IsNaN(float64(v)) || v < 0 || v > 1 {
				t.Fatalf("%v: probability %v", tt.logits, v)
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Errorf("%v: probabilities sum to %v", tt.logits, sum)
		}
		top := TopK(make([]Class, 0, tt.k), p, labels, tt.k)
		if len(top) != len(tt.want) {
			t.Fatalf("%v: top %+v", tt.logits, top)
		}
		for i, w := range tt.want {
			if top[i].Index != w || top[i].Label != labels[w] || top[i].Score != p[w] {
				t.Errorf("%v k=%d: top[%d] = %+v, want index %d", tt.logits, tt.k, i, top[i], w)
			}
		}
	}
}

// Raspberry Pi get_throttled bits (vcgencmd documentation).
func TestThrottledText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""}, {"0x0", ""}, {"0x50005", "under-voltage,throttled"}, {"0x2", "freq-capped"},
		{"0xf", "under-voltage,freq-capped,throttled,soft-temp-limit"}, {"0x50000", ""}, {"0xzz", ""},
	} {
		if got := throttledText(tt.in); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The rolling window keeps the newest values and its percentiles are
// nearest-rank.
func TestWindowStats(t *testing.T) {
	var w window
	for i := 1; i <= statWindow+100; i++ {
		w.add(float64(i))
	}
	s := w.stats(make([]float64, statWindow))
	// Holds 101..356: mean 228.5, p50 = 228 (rank 128), p99 = 354 (rank 254).
	if s.Mean != 228.5 || s.P50 != 228 || s.P99 != 354 {
		t.Errorf("%+v", s)
	}
}

// A live source that fails every 5 frames, behind camera.Reconnecting as
// run wraps live sources: the loop keeps classifying, Stats counts the
// reconnects and the log says so.
func TestLoopReconnects(t *testing.T) {
	var logs syncLog
	opts := camera.Options{Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Logf: logs.logf}
	src := camera.Reconnecting("flaky", func() (camera.Source, error) {
		s, err := camera.Open("bundled:digits?fps=200", opts)
		if err != nil {
			return nil, err
		}
		return &FailAfter{Source: s, N: 5}, nil
	}, opts)
	sess, labels, pre := DigitsSession(t, 1)
	rec := &recordSink{}
	l, err := New(Config{Source: src, SourceName: "flaky", Session: sess, Pre: pre, Labels: labels, TopK: 1,
		Outputs: []NamedSink{{"record", rec}}, MaxFrames: 12, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	if s.Frames != 12 || s.Reconnects < 2 {
		t.Errorf("%d frames, %d reconnects; want 12 and ≥ 2", s.Frames, s.Reconnects)
	}
	if !strings.Contains(logs.String(), "flaky: reconnected") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// syncLog collects log lines from any goroutine.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The loop rate is taken between the window's frames while they come,
// falls once the next one is overdue and is 0 once the source stopped
// (issue 14: loop_fps 196 twenty seconds after the last frame).
func TestLoopFPSFallsWhenFramesStop(t *testing.T) {
	var m loopMetrics
	m.init(1)
	t0 := time.Now()
	r := Result{}
	for i := range 11 { // 10 intervals of 100 ms: 10 fps
		m.addFrame(0, 0, 0, &r, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	last := t0.Add(time.Second)
	for _, c := range []struct {
		after    time.Duration
		lo, hi   float64
		describe string
	}{
		{50 * time.Millisecond, 10, 10, "between frames"},
		{100 * time.Millisecond, 10, 10, "the next one due"},
		{time.Second, 5.26, 5.27, "900 ms overdue: 10 intervals in 1.9 s"},
		{2 * time.Second, 3.44, 3.45, "1.9 s overdue: 10 intervals in 2.9 s"},
		{2*time.Second + time.Millisecond, 0, 0, "stalled"},
		{20 * time.Second, 0, 0, "stalled"},
	} {
		var s Stats
		m.snapshot(&s, last.Add(c.after))
		if s.LoopFPS < c.lo-1e-9 || s.LoopFPS > c.hi+1e-9 {
			t.Errorf("%v after the last frame (%s): loop %.3f fps, want %g..%g", c.after, c.describe, s.LoopFPS, c.lo, c.hi)
		}
	}
}

// A stand-in camera command that sends a few frames and hangs with its
// output open is restarted once --source-timeout passed without a frame,
// and the loop rate reads 0 while it hangs.
func TestLoopHungSourceRestartedFPSZero(t *testing.T) {
	const timeout = 3 * time.Second
	var logs syncLog
	cmd := "pipe:for i in $(seq 20); do head -c 784 /dev/zero; sleep 0.02; done; exec sleep 600"
	src, err := camera.Open(cmd, camera.Options{Format: camera.GRAY8, Width: 28, Height: 28, Logf: logs.logf, Backoff: 10 * time.Millisecond, SourceTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	sess, labels, pre := DigitsSession(t, 1)
	l, err := New(Config{Source: src, SourceName: "hung", Session: sess, Pre: pre, Labels: labels, TopK: 1, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// Wait for the first child's frames to stop, then watch until the
	// second child's frames arrive.
	deadline := time.Now().Add(30 * time.Second)
	var lastFrames uint64
	var lastChange time.Time
	sawZero := false
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no restart seen: %+v\nlog:\n%s", l.Stats(), &logs)
		}
		s := l.Stats()
		if s.Frames != lastFrames {
			if s.Reconnects > 0 {
				gap := time.Since(lastChange)
				t.Logf("restarted: frames again %v after the last one (timeout %v); loop fps %.1f", gap, timeout, s.LoopFPS)
				if gap > timeout+time.Second {
					t.Errorf("restarted %v after the last frame, want within %v + 1 s", gap, timeout)
				}
				break
			}
			lastFrames, lastChange = s.Frames, time.Now()
		} else if s.Frames > 0 && time.Since(lastChange) > stalledMin+200*time.Millisecond && s.Reconnects == 0 {
			if s.LoopFPS != 0 {
				t.Fatalf("%v without a frame: loop %.1f fps, want 0", time.Since(lastChange), s.LoopFPS)
			}
			sawZero = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawZero {
		t.Error("never saw loop fps 0 while the command hung")
	}
	if !strings.Contains(logs.String(), "stopped delivering frames (no frame for 3s") {
		t.Errorf("log does not say why it restarted:\n%s", &logs)
	}
}
