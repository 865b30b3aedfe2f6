package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/firmware/stream"
	"github.com/vggedge/vggedge/infer"
)

// digitsSession opens the embedded int8 digits model with its labels.
func digitsSession(t testing.TB, threads int) (*infer.Session, []string, framePreprocessor) {
	t.Helper()
	f, err := openModel("digits")
	if err != nil {
		t.Fatal(err)
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
	return s, classLabels(f.Int8.Meta.Labels, 10), pre
}

// newTestLoop builds a loop on the digits model and a real source.
func newTestLoop(t testing.TB, uri string, cfg loopConfig) *Loop {
	t.Helper()
	src, err := camera.Open(uri, camera.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sess, labels, pre := digitsSession(t, 1)
	cfg.Source, cfg.SourceName, cfg.Session, cfg.Pre, cfg.Labels = src, uri, sess, pre, labels
	if cfg.TopK == 0 {
		cfg.TopK = 5
	}
	cfg.Logf = t.Logf
	l, err := newLoop(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

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

// The steady state allocates nothing per frame: capture (a real idx
// source), preprocessing, inference, top-k and the queue hand-off, with
// jsonl and msgpack (file and unix socket) sinks writing on their own
// goroutines — testing.AllocsPerRun counts every goroutine's mallocs.
func TestLoopStepAllocs(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var received bytes.Buffer
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(&received, c)
	}()
	_, labels, _ := digitsSession(t, 1)
	enc := newMsgpackEncoder("digits", labels, 5)
	file, err := createMsgpackFileSink(filepath.Join(dir, "r.msgpack"), enc, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// Each sink gets its own encoder: sinks run on their own goroutines.
	unix, err := openMsgpackSink("unix:"+sock, newMsgpackEncoder("digits", labels, 5), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	jl := newJSONLSink(io.Discard, nil)
	l := newTestLoop(t, "idx:"+gomnistDir(t)+"?loop=1", loopConfig{
		Outputs: []namedSink{{"jsonl", jl}, {"msgpack:file", file}, {"msgpack:unix", unix}},
		// A deep queue: the test measures allocations, not drops.
		QueueDepth: 4096,
	})
	f := l.front
	frame := func() {
		if err := l.cfg.Source.Read(f); err != nil {
			t.Fatal(err)
		}
		if err := l.step(f); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 { // warm up: buffers grow to their steady size
		frame()
	}
	waitIdle(t, l)
	allocs := testing.AllocsPerRun(500, frame)
	waitIdle(t, l)
	s := l.Stats()
	close(l.capDone) // the test read frames itself: there is no capture goroutine
	if err := l.shutdown(closedChan()); err != nil {
		t.Fatal(err)
	}
	<-readerDone
	t.Logf("%.2f allocs per frame over 500 frames; %d frames, sink-dropped %d, %d bytes over the unix socket", allocs, s.Frames, s.SinkDropped, received.Len())
	r := stream.NewReader(&received)
	n := 0
	for ; ; n++ {
		if _, err := r.Next(); err != nil {
			if err != io.EOF {
				t.Fatalf("unix socket stream, result %d: %v", n, err)
			}
			break
		}
	}
	if uint64(n) != s.Frames {
		t.Errorf("%d results over the unix socket, want %d", n, s.Frames)
	}
	if allocs != 0 {
		t.Errorf("%.2f allocations per frame in the steady state, want 0", allocs)
	}
	if s.SinkDropped != 0 {
		t.Errorf("%d results dropped; the measurement did not cover every sink write", s.SinkDropped)
	}
}

func closedChan() chan struct{} { c := make(chan struct{}); close(c); return c }

// waitIdle waits until every sink queue is empty.
func waitIdle(t testing.TB, l *Loop) {
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

// A sink that blocks forever costs its own results, never the loop's:
// every frame is still classified and reaches the other sink, the stuck
// sink's drops are counted, and shutdown gives up on it after the timeout.
func TestLoopStuckSinkNeverStalls(t *testing.T) {
	stuck := &stuckSink{release: make(chan struct{})}
	defer close(stuck.release)
	rec := &recordSink{}
	l := newTestLoop(t, "idx:"+gomnistDir(t), loopConfig{
		Outputs:    []namedSink{{"stuck", stuck}, {"record", rec}},
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
	l := newTestLoop(t, "bundled:digits?fps=500", loopConfig{
		Outputs:   []namedSink{{"slow", slow}},
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
	l := newTestLoop(t, "idx:"+gomnistDir(t), loopConfig{
		Outputs: []namedSink{{"record", rec}}, MaxFrames: 300, TopK: 3, Model: "digits", Board: "test", Kernel: "k",
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

// A source that fails mid-run (not EOF) ends the run with its error;
// results up to then are flushed.
func TestLoopSourceError(t *testing.T) {
	dir := t.TempDir()
	src, err := camera.Open("idx:"+gomnistDir(t), camera.Options{})
	if err != nil {
		t.Fatal(err)
	}
	failing := &failAfter{Source: src, n: 10}
	sess, labels, pre := digitsSession(t, 1)
	jl, err := createJSONLSink(filepath.Join(dir, "r.jsonl"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newLoop(loopConfig{Source: failing, SourceName: "failing", Session: sess, Pre: pre, Labels: labels, TopK: 1,
		Outputs: []namedSink{{"jsonl", jl}}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	err = l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "source failing: device unplugged") {
		t.Fatalf("Run: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "r.jsonl"))
	if lines := parseJSONLines(t, string(data)); len(lines) != 10 {
		t.Errorf("%d lines flushed, want 10", len(lines))
	}
}

// failAfter passes n frames through, then fails.
type failAfter struct {
	camera.Source
	n int
}

func (s *failAfter) Read(f *camera.Frame) error {
	if s.n == 0 {
		return errUnplugged
	}
	s.n--
	return s.Source.Read(f)
}

var errUnplugged = errors.New("device unplugged")

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
		top := topK(make([]Class, 0, tt.k), p, labels, tt.k)
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

// TestSoak runs the loop at full speed for $VGGEDGE_SOAK (e.g. 10m) on the
// bundled digits with jsonl (to nowhere) and msgpack (a file and a unix
// socket) outputs, and samples RSS, goroutines and heap allocations per
// frame every 30 s (or a quarter of the run, if shorter). It fails if,
// after the first sample (warm-up), RSS grows by more than 4 MiB, the
// goroutine count grows, or any window allocates per frame. The monitor's
// sysfs reads (every 5 s) allocate a little, not per frame: a window may
// show a few hundredths of an allocation per frame at most, so the limit
// is 0.01.
func TestSoak(t *testing.T) {
	env := os.Getenv("VGGEDGE_SOAK")
	if env == "" {
		t.Skip("set VGGEDGE_SOAK=10m to run the soak test")
	}
	d, err := time.ParseDuration(env)
	if err != nil || d < 4*time.Second {
		t.Fatalf("VGGEDGE_SOAK=%q: want a duration of at least 4s", env)
	}
	every := min(30*time.Second, d/4)
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var sockBytes atomic.Int64
	sockDone := make(chan struct{})
	go func() {
		defer close(sockDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		sockBytes.Add(n)
	}()
	_, labels, _ := digitsSession(t, 1)
	file, err := openMsgpackSink("/dev/null", newMsgpackEncoder("digits", labels, 5), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	unix, err := openMsgpackSink("unix:"+sock, newMsgpackEncoder("digits", labels, 5), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLoop(t, "bundled:digits?fps=0", loopConfig{
		Outputs: []namedSink{{"jsonl", newJSONLSink(io.Discard, nil)}, {"msgpack:/dev/null", file}, {"msgpack:unix", unix}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- l.Run(ctx) }()

	type sample struct {
		rss        int64
		goroutines int
		mallocs    uint64
		frames     uint64
		heap       uint64 // live heap objects: a leak shows here before RSS
	}
	take := func() sample {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return sample{rss: vmRSS(t), goroutines: runtime.NumGoroutine(), mallocs: ms.Mallocs, frames: l.frames.Load(), heap: ms.HeapObjects}
	}
	start := time.Now()
	time.Sleep(every)
	base := take()
	prev := base
	t.Logf("warm-up: %d frames, RSS %.1f MiB, %d goroutines", base.frames, float64(base.rss)/(1<<20), base.goroutines)
	for time.Since(start)+every <= d {
		time.Sleep(every)
		s := take()
		perFrame := float64(s.mallocs-prev.mallocs) / float64(max(s.frames-prev.frames, 1))
		t.Logf("%v: %d frames (+%d), RSS %.1f MiB (%+.2f MiB), %d heap objects, %d goroutines, %.4f allocs/frame",
			time.Since(start).Round(time.Second), s.frames, s.frames-prev.frames, float64(s.rss)/(1<<20), float64(s.rss-base.rss)/(1<<20), s.heap, s.goroutines, perFrame)
		if s.rss-base.rss > 4<<20 {
			t.Errorf("RSS grew %.1f MiB since warm-up", float64(s.rss-base.rss)/(1<<20))
		}
		if s.goroutines > base.goroutines {
			t.Errorf("goroutines grew from %d to %d", base.goroutines, s.goroutines)
		}
		if perFrame >= 0.01 {
			t.Errorf("%.4f allocations per frame", perFrame)
		}
		if s.frames == prev.frames {
			t.Errorf("no frames classified in the last %v", every)
		}
		prev = s
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	<-sockDone
	st := l.Stats()
	t.Logf("%d frames, %.0f fps, sink-dropped %d, %d bytes over the unix socket", st.Frames, float64(st.Frames)/time.Since(start).Seconds(), st.SinkDropped, sockBytes.Load())
}

// vmRSS is this process's resident set from /proc/self/status.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
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
		return &failAfter{Source: s, n: 5}, nil
	}, opts)
	sess, labels, pre := digitsSession(t, 1)
	rec := &recordSink{}
	l, err := newLoop(loopConfig{Source: src, SourceName: "flaky", Session: sess, Pre: pre, Labels: labels, TopK: 1,
		Outputs: []namedSink{{"record", rec}}, MaxFrames: 12, Logf: logs.logf})
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
	sess, labels, pre := digitsSession(t, 1)
	l, err := newLoop(loopConfig{Source: src, SourceName: "hung", Session: sess, Pre: pre, Labels: labels, TopK: 1, Logf: logs.logf})
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
