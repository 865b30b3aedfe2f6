package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/firmware/live"
	"github.com/vggedge/vggedge/firmware/output"
	"github.com/vggedge/vggedge/firmware/stream"
)

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
	_, labels, _ := live.DigitsSession(t, 1)
	enc := output.NewMsgpackEncoder("digits", labels, 5)
	file, err := output.CreateMsgpackFile(filepath.Join(dir, "r.msgpack"), enc, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	// Each sink gets its own encoder: sinks run on their own goroutines.
	unix, err := output.OpenMsgpack("unix:"+sock, output.NewMsgpackEncoder("digits", labels, 5), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	jl := output.NewJSONL(io.Discard, nil)
	l := live.NewTestLoop(t, "idx:"+live.GomnistDir(t)+"?loop=1", live.Config{
		Outputs: []live.NamedSink{{Name: "jsonl", Sink: jl}, {Name: "msgpack:file", Sink: file}, {Name: "msgpack:unix", Sink: unix}},
		// A deep queue: the test measures allocations, not drops.
		QueueDepth: 4096,
	})
	frame := func() { l.Step(t) }
	for range 200 { // warm up: buffers grow to their steady size
		frame()
	}
	live.WaitIdle(t, l)
	allocs := testing.AllocsPerRun(500, frame)
	live.WaitIdle(t, l)
	s := l.Stats()
	if err := l.ShutdownStepped(); err != nil {
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

// A source that fails mid-run (not EOF) ends the run with its error;
// results up to then are flushed.
func TestLoopSourceError(t *testing.T) {
	dir := t.TempDir()
	src, err := camera.Open("idx:"+live.GomnistDir(t), camera.Options{})
	if err != nil {
		t.Fatal(err)
	}
	failing := &live.FailAfter{Source: src, N: 10}
	sess, labels, pre := live.DigitsSession(t, 1)
	jl, err := output.CreateJSONL(filepath.Join(dir, "r.jsonl"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	l, err := live.New(live.Config{Source: failing, SourceName: "failing", Session: sess, Pre: pre, Labels: labels, TopK: 1,
		Outputs: []live.NamedSink{{Name: "jsonl", Sink: jl}}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	err = l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "source failing: device unplugged") {
		t.Fatalf("Run: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "r.jsonl"))
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, line := range lines {
		var r struct{ Frame *uint64 }
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Frame == nil {
			t.Errorf("line %d %q: not a result (%v)", i+1, line, err)
		}
	}
	if len(lines) != 10 {
		t.Errorf("%d lines flushed, want 10", len(lines))
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
	_, labels, _ := live.DigitsSession(t, 1)
	file, err := output.OpenMsgpack("/dev/null", output.NewMsgpackEncoder("digits", labels, 5), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	unix, err := output.OpenMsgpack("unix:"+sock, output.NewMsgpackEncoder("digits", labels, 5), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	l := live.NewTestLoop(t, "bundled:digits?fps=0", live.Config{
		Outputs: []live.NamedSink{{Name: "jsonl", Sink: output.NewJSONL(io.Discard, nil)}, {Name: "msgpack:/dev/null", Sink: file}, {Name: "msgpack:unix", Sink: unix}},
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
		return sample{rss: vmRSS(t), goroutines: runtime.NumGoroutine(), mallocs: ms.Mallocs, frames: l.FramesDone(), heap: ms.HeapObjects}
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
