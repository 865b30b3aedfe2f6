package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
)

// Preprocessor turns a frame into the model's u8 CHW pixels
// (camera.Preprocessor).
type Preprocessor interface {
	Into(dst []byte, f *camera.Frame) error
}

// NamedSink is an output and the name the log gives it (the --output value).
type NamedSink struct {
	Name string
	Sink Sink
}

// Config is everything the loop runs with; the run command builds it from flags.
type Config struct {
	Source     camera.Source
	SourceName string
	Session    *infer.Session
	Pre        Preprocessor
	Labels     []string // one per class
	// Truth maps the source's class indices (Frame.Label) to the model's,
	// for a source whose classes are not the model's outputs in order (an
	// ImageFolder's sorted folder names); -1 marks a class the model lacks.
	// nil: the source's index is the model's.
	Truth      []int
	TopK       int
	Outputs    []NamedSink
	MaxFrames  uint64 // 0: until the source ends or a signal
	Model      string
	Board      string
	Kernel     string
	Logf       func(string, ...any) // warnings (reconnects, sink errors)
	Infof      func(string, ...any) // --stats-every lines; nil when --quiet
	StatsEvery time.Duration
	// QueueDepth is each sink's ring size; CloseTimeout bounds the wait
	// for a sink to drain at the end (and for the capture goroutine to
	// return after the source is closed).
	QueueDepth   int
	CloseTimeout time.Duration
}

// Loop classifies frames from a source and hands results to sinks. Two
// goroutines: capture (Source.Read) and inference (Run's caller). Frames
// pass between them through three preallocated buffers (see frameSlot),
// so the steady state allocates nothing.
type Loop struct {
	cfg  Config
	live bool

	slot    frameSlot
	front   *camera.Frame // the inference goroutine's buffer
	back    *camera.Frame // the capture goroutine's buffer
	stop    chan struct{} // closed when the loop is stopping
	capDone chan struct{} // closed when capture returns
	capErr  error         // why capture returned; read after capDone

	capErrAfterStop atomic.Bool // capture failed because the loop closed the source

	pix      []byte    // model input pixels
	probs    []float32 // softmax
	res      Result    // the frame's result; Top has capacity TopK
	queues   []*sinkQueue
	pictures []PictureSink
	badRun   int // consecutive frames the preprocessor refused

	start   atomic.Pointer[time.Time] // when Run began; Stats reads it from other goroutines
	frames  atomic.Uint64
	dropped atomic.Uint64
	bad     atomic.Uint64
	m       loopMetrics
}

// Errors that end a run without a source failure.
var errTooManyBadFrames = errors.New("the first 100 frames could not be preprocessed")

func New(cfg Config) (*Loop, error) {
	q := cfg.Session.Model()
	classes := len(cfg.Labels)
	if cfg.TopK < 1 || cfg.TopK > classes {
		return nil, fmt.Errorf("--topk %d: want 1..%d (the model's classes)", cfg.TopK, classes)
	}
	if cfg.QueueDepth <= 0 {
		cfg.QueueDepth = 64
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = 5 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	l := &Loop{
		cfg:     cfg,
		live:    camera.IsLive(cfg.Source),
		stop:    make(chan struct{}),
		capDone: make(chan struct{}),
		front:   &camera.Frame{},
		back:    &camera.Frame{},
		pix:     make([]byte, q.Input.Elems()),
		probs:   make([]float32, classes),
		res:     Result{Top: make([]Class, 0, cfg.TopK)},
	}
	l.slot.init(&camera.Frame{})
	l.m.init(cfg.TopK)
	for _, o := range cfg.Outputs {
		l.queues = append(l.queues, newSinkQueue(o.Name, o.Sink, cfg.QueueDepth, cfg.TopK, cfg.Logf))
		if p, ok := o.Sink.(PictureSink); ok {
			l.pictures = append(l.pictures, p)
		}
	}
	return l, nil
}

// Run classifies until the source ends, MaxFrames results are out, or ctx
// is cancelled (SIGINT/SIGTERM). Then it stops capture, finishes the
// frame in flight, drains and closes the sinks and closes the source. A
// source that ends (io.EOF) or a cancelled ctx is a clean stop: nil.
func (l *Loop) Run(ctx context.Context) error {
	start := time.Now()
	l.start.Store(&start)
	go l.capture()
	monitorDone := make(chan struct{})
	go l.monitor(monitorDone)

	var runErr error
	for ctx.Err() == nil {
		f, ok := l.slot.take(l.front, ctx.Done(), l.capDone)
		l.front = f
		if !ok {
			break
		}
		if err := l.step(f); err != nil {
			runErr = err
			break
		}
		if l.cfg.MaxFrames > 0 && l.frames.Load() >= l.cfg.MaxFrames {
			break
		}
	}
	return errors.Join(runErr, l.shutdown(monitorDone))
}

// shutdown stops capture, drains and closes the sinks, closes the source
// and waits for the capture goroutine.
func (l *Loop) shutdown(monitorDone chan struct{}) error {
	close(l.stop)
	var errs []error
	for _, q := range l.queues {
		if err := q.Close(l.cfg.CloseTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.cfg.Source.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close source %s: %w", l.cfg.SourceName, err))
	}
	select {
	case <-l.capDone:
		if err := l.capErr; err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, camera.ErrClosed) && !l.stoppedEarly() {
			errs = append(errs, fmt.Errorf("source %s: %w", l.cfg.SourceName, err))
		}
	case <-time.After(l.cfg.CloseTimeout):
		errs = append(errs, fmt.Errorf("source %s: Read did not return %v after Close", l.cfg.SourceName, l.cfg.CloseTimeout))
	}
	<-monitorDone
	return errors.Join(errs...)
}

// stoppedEarly reports whether the loop stopped before capture did, in
// which case capture's error is just the closed source.
func (l *Loop) stoppedEarly() bool {
	return l.capErrAfterStop.Load()
}

// capture is the capture goroutine.
func (l *Loop) capture() {
	defer close(l.capDone)
	for {
		t0 := time.Now()
		err := l.cfg.Source.Read(l.back)
		if err != nil {
			select {
			case <-l.stop:
				l.capErrAfterStop.Store(true)
			default:
			}
			l.capErr = err
			return
		}
		l.m.addCapture(time.Since(t0))
		var ok, dropped bool
		l.back, dropped, ok = l.slot.put(l.back, l.live, l.stop)
		if dropped {
			l.dropped.Add(1)
		}
		if !ok {
			return
		}
	}
}

// step classifies one frame and hands the result to the sinks. It is the
// per-frame work of the inference goroutine and allocates nothing.
func (l *Loop) step(f *camera.Frame) error {
	t0 := time.Now()
	if err := l.cfg.Pre.Into(l.pix, f); err != nil {
		n := l.bad.Add(1)
		if n == 1 || n%1000 == 0 {
			l.cfg.Logf("frame %d skipped: %v (%d so far)", f.Seq, err, n)
		}
		l.badRun++
		if l.badRun >= 100 && l.frames.Load() == 0 {
			return fmt.Errorf("%w; last: %v", errTooManyBadFrames, err)
		}
		return nil
	}
	l.badRun = 0
	t1 := time.Now()
	if err := l.cfg.Session.SetPixels(l.pix); err != nil {
		return err
	}
	logits, err := l.cfg.Session.Run()
	if err != nil {
		return err
	}
	t2 := time.Now()
	l.fillResult(f, logits, t2)
	for _, p := range l.pictures {
		p.ObservePicture(f)
	}
	for _, q := range l.queues {
		q.Put(&l.res)
	}
	t3 := time.Now()
	l.frames.Add(1)
	l.m.addFrame(t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), &l.res, t3)
	return nil
}

// fillResult writes softmax top-k of logits into l.res.
func (l *Loop) fillResult(f *camera.Frame, logits []float32, done time.Time) {
	softmax(l.probs, logits)
	r := &l.res
	r.Frame, r.Time = f.Seq, f.Time
	r.LatencyMs = float64(done.Sub(f.Time)) / float64(time.Millisecond)
	r.File = f.File
	r.Truth, r.TruthLabel = -1, ""
	truth := f.Label
	if l.cfg.Truth != nil {
		truth = -1
		if f.Label >= 0 && f.Label < len(l.cfg.Truth) {
			truth = l.cfg.Truth[f.Label]
		}
	}
	if truth >= 0 && truth < len(l.cfg.Labels) {
		r.Truth, r.TruthLabel = truth, l.cfg.Labels[truth]
	}
	r.Top = TopK(r.Top[:0], l.probs, l.cfg.Labels, cap(r.Top))
}

// Softmax writes the probabilities of logits into p (same length): the
// scores results carry, for one-shot classification outside the loop.
func Softmax(p, logits []float32) { softmax(p, logits) }

// softmax writes the probabilities of logits into p (same length),
// subtracting the maximum first so exp never overflows.
func softmax(p, logits []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range logits {
		mx = max(mx, v)
	}
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v - mx))
		p[i] = float32(e)
		sum += e
	}
	for i := range p {
		p[i] = float32(float64(p[i]) / sum)
	}
}

// TopK fills dst (capacity k) with the k best of probs, best first; ties
// keep the lower index first. Insertion into a k-long list: k is small.
func TopK(dst []Class, probs []float32, labels []string, k int) []Class {
	dst = dst[:0]
	for i, p := range probs {
		if len(dst) == k && p <= dst[k-1].Score {
			continue
		}
		if len(dst) < k {
			dst = append(dst, Class{})
		}
		j := len(dst) - 1
		for j > 0 && dst[j-1].Score < p {
			dst[j] = dst[j-1]
			j--
		}
		dst[j] = Class{Index: i, Label: labels[i], Score: p}
	}
	return dst
}

// monitor reads the board's temperature and throttling every few seconds
// (not per frame: sysfs reads allocate and cost a syscall each) and
// writes the --stats-every log line.
func (l *Loop) monitor(done chan struct{}) {
	defer close(done)
	const condEvery = 5 * time.Second
	l.m.setConditions(boards.ReadConditions())
	cond := time.NewTicker(condEvery)
	defer cond.Stop()
	var statsC <-chan time.Time
	if l.cfg.StatsEvery > 0 && l.cfg.Infof != nil {
		t := time.NewTicker(l.cfg.StatsEvery)
		defer t.Stop()
		statsC = t.C
	}
	for {
		select {
		case <-l.stop:
			return
		case <-cond.C:
			l.m.setConditions(boards.ReadConditions())
		case <-statsC:
			l.cfg.Infof("%s", StatsLine(l.Stats()))
		}
	}
}

// StatsLine is the one-line summary --stats-every logs.
func StatsLine(s Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d frames, %.1f fps (inference %.1f fps), latency p50 %.1f ms p99 %.1f ms, capture %.1f ms, preprocess %.2f ms, inference %.2f ms, sinks %.2f ms, dropped %d, sink-dropped %d, reconnects %d",
		s.Frames, s.LoopFPS, s.InferFPS, s.Latency.P50, s.Latency.P99, s.Capture.Mean, s.Preprocess.Mean, s.Inference.Mean, s.Sinks.Mean, s.Dropped, s.SinkDropped, s.Reconnects)
	if !math.IsNaN(s.TempC) {
		fmt.Fprintf(&b, ", %.1f°C", s.TempC)
	}
	if s.Throttled != "" {
		b.WriteString(", " + s.Throttled)
	}
	return b.String()
}

// reconnectCounter is a source that counts its reconnects
// (camera.Reconnecting).
type reconnectCounter interface{ Reconnects() uint64 }

// dropCounter is a sink that drops results on its own (a network output
// while disconnected).
type dropCounter interface{ Dropped() uint64 }

// Stats is a snapshot of the loop's health; safe from any goroutine.
func (l *Loop) Stats() Stats {
	s := Stats{
		Model: l.cfg.Model, Board: l.cfg.Board, Source: l.cfg.SourceName, Kernel: l.cfg.Kernel,
		Threads: l.cfg.Session.Threads(),
		Frames:  l.frames.Load(), Dropped: l.dropped.Load(),
	}
	if start := l.start.Load(); start != nil {
		s.Uptime = time.Since(*start)
	}
	for i, q := range l.queues {
		s.SinkDropped += q.dropped.Load()
		if d, ok := l.cfg.Outputs[i].Sink.(dropCounter); ok {
			s.SinkDropped += d.Dropped()
		}
	}
	if r, ok := l.cfg.Source.(reconnectCounter); ok {
		s.Reconnects = r.Reconnects()
	}
	l.m.snapshot(&s, time.Now())
	if s.Inference.Mean > 0 {
		s.InferFPS = 1000 / s.Inference.Mean
	}
	return s
}

// statWindow is how many recent frames the rolling statistics cover.
const statWindow = 256

// window is a fixed ring of the latest statWindow values.
type window struct {
	v [statWindow]float64
	n int // values held, ≤ statWindow
	i int // next slot
}

func (w *window) add(x float64) {
	w.v[w.i] = x
	w.i = (w.i + 1) % statWindow
	w.n = min(w.n+1, statWindow)
}

// stats sorts a copy (scratch) to get the percentiles: only snapshots
// pay for it, not frames.
func (w *window) stats(scratch []float64) StageStats {
	if w.n == 0 {
		return StageStats{}
	}
	s := append(scratch[:0], w.v[:w.n]...)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return StageStats{Mean: sum / float64(len(s)), P50: pct(s, 0.50), P99: pct(s, 0.99)}
}

// pct is the nearest-rank percentile of sorted s.
func pct(s []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// loopMetrics are the rolling windows, guarded by mu: capture writes one,
// inference the others, Stats reads all.
type loopMetrics struct {
	mu                             sync.Mutex
	capture, preprocess, inference window
	sinks, latency                 window
	doneAt                         [statWindow]time.Time // completion times, for the loop rate
	doneN, doneI                   int
	last                           Result
	hasLast                        bool
	tempC                          float64
	throttled                      string
}

func (m *loopMetrics) init(TopK int) {
	m.last.Top = make([]Class, 0, TopK)
	m.tempC = math.NaN()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (m *loopMetrics) addCapture(d time.Duration) {
	m.mu.Lock()
	m.capture.add(ms(d))
	m.mu.Unlock()
}

func (m *loopMetrics) addFrame(pre, inf, sinks time.Duration, r *Result, done time.Time) {
	m.mu.Lock()
	m.preprocess.add(ms(pre))
	m.inference.add(ms(inf))
	m.sinks.add(ms(sinks))
	m.latency.add(r.LatencyMs)
	m.doneAt[m.doneI] = done
	m.doneI = (m.doneI + 1) % statWindow
	m.doneN = min(m.doneN+1, statWindow)
	top := append(m.last.Top[:0], r.Top...)
	m.last = *r
	m.last.Top = top
	m.hasLast = true
	m.mu.Unlock()
}

func (m *loopMetrics) setConditions(c boards.Conditions) {
	t := c.TempBeforeC
	if t == 0 { // boards.CPUTemp: no thermal zone
		t = math.NaN()
	}
	thr := throttledText(c.Throttled)
	m.mu.Lock()
	m.tempC, m.throttled = t, thr
	m.mu.Unlock()
}

// stalledMin is the shortest wait without a result that makes the loop
// rate 0 (see snapshot).
const stalledMin = 2 * time.Second

// snapshot fills s from the windows as of now. The loop rate is taken
// over the window's frames while they keep coming; once the next frame is
// overdue (later than the mean interval) the wait counts too, so the rate
// falls, and once it is 4 intervals late (2 s at least) the rate is 0: a
// source that stopped shows 0 fps, not the rate it had.
func (m *loopMetrics) snapshot(s *Stats, now time.Time) {
	var scratch [statWindow]float64
	m.mu.Lock()
	defer m.mu.Unlock()
	s.Capture = m.capture.stats(scratch[:])
	s.Preprocess = m.preprocess.stats(scratch[:])
	s.Inference = m.inference.stats(scratch[:])
	s.Sinks = m.sinks.stats(scratch[:])
	s.Latency = m.latency.stats(scratch[:])
	if m.doneN >= 2 {
		first := m.doneAt[(m.doneI-m.doneN+statWindow)%statWindow]
		last := m.doneAt[(m.doneI-1+statWindow)%statWindow]
		if span := last.Sub(first); span > 0 {
			mean := span / time.Duration(m.doneN-1)
			switch gap := now.Sub(last); {
			case gap > max(4*mean, stalledMin):
				s.LoopFPS = 0
			case gap > mean:
				s.LoopFPS = float64(m.doneN-1) / (span + gap - mean).Seconds()
			default:
				s.LoopFPS = float64(m.doneN-1) / span.Seconds()
			}
		}
	}
	s.TempC, s.Throttled = m.tempC, m.throttled
	if m.hasLast {
		r := m.last
		r.Top = slices.Clone(m.last.Top)
		s.Last = &r
	}
}

// throttledText decodes the Raspberry Pi firmware's get_throttled flags
// (as "0x…") into words; only the "now" bits 0–3 count, per the Raspberry
// Pi documentation of `vcgencmd get_throttled`
// (https://www.raspberrypi.com/documentation/computers/os.html#get_throttled).
func throttledText(flags string) string {
	v, err := strconv.ParseUint(strings.TrimPrefix(flags, "0x"), 16, 32)
	if flags == "" || err != nil {
		return ""
	}
	var words []string
	for bit, w := range []string{"under-voltage", "freq-capped", "throttled", "soft-temp-limit"} {
		if v&(1<<bit) != 0 {
			words = append(words, w)
		}
	}
	return strings.Join(words, ",")
}

// frameSlot hands frames from capture to inference through one pending
// buffer: capture swaps its filled buffer in, inference swaps its used one
// out, under a mutex — three buffers in all, no copies, no allocations.
// A live source overwrites an untaken frame (counted as dropped), so
// inference always gets the newest and latency never piles up; any other
// source waits until inference took the previous frame.
type frameSlot struct {
	mu      sync.Mutex
	pending *camera.Frame
	full    bool
	filled  chan struct{} // cap 1: capture → inference
	taken   chan struct{} // cap 1: inference → capture
}

func (s *frameSlot) init(spare *camera.Frame) {
	s.pending = spare
	s.filled = make(chan struct{}, 1)
	s.taken = make(chan struct{}, 1)
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// put swaps back in as the pending frame and returns the buffer capture
// fills next. dropped says an untaken frame was replaced; ok is false when
// stop closed while waiting.
func (s *frameSlot) put(back *camera.Frame, live bool, stop <-chan struct{}) (next *camera.Frame, dropped, ok bool) {
	for {
		s.mu.Lock()
		if !s.full || live {
			dropped = s.full
			s.pending, back = back, s.pending
			s.full = true
			s.mu.Unlock()
			wake(s.filled)
			return back, dropped, true
		}
		s.mu.Unlock()
		select {
		case <-s.taken:
		case <-stop:
			return back, false, false
		}
	}
}

// take swaps front (done with) for the pending frame. ok is false when
// stop closed, or capture ended and nothing is pending.
func (s *frameSlot) take(front *camera.Frame, stop, capDone <-chan struct{}) (next *camera.Frame, ok bool) {
	for {
		s.mu.Lock()
		if s.full {
			s.pending, front = front, s.pending
			s.full = false
			s.mu.Unlock()
			wake(s.taken)
			return front, true
		}
		s.mu.Unlock()
		select {
		case <-s.filled:
		case <-stop:
			return front, false
		case <-capDone:
			s.mu.Lock()
			full := s.full
			s.mu.Unlock()
			if !full {
				return front, false
			}
		}
	}
}
