package main

import (
	"github.com/vggedge/vggedge/firmware/livepage"
	"github.com/vggedge/vggedge/firmware/mqtt"
	"github.com/vggedge/vggedge/firmware/output"

	"github.com/vggedge/vggedge/firmware/live"

	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/kernels"
	labelset "github.com/vggedge/vggedge/infer/labels"
)

// exitRunFailed is run's status when the source or an output failed
// mid-run (bad flags are exitBadInput, a clean stop exitOK).
const exitRunFailed = 1

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runFlags are run's flags, parsed.
type runFlags struct {
	model, source, format, size string
	fps                         float64
	maxFrames                   int
	threads, topK               int
	outputs                     stringList
	gpio                        output.GPIOConfig
	http                        string
	httpAllowHost               string
	statsEvery                  time.Duration
	sourceTimeout               time.Duration
	quiet                       bool
	mqtt                        mqtt.Flags // --mqtt…, --device-id, --snapshot… (mqtt.go)
	config                      string     // --config: a YAML file read before the flags
	topKSet                     bool
}

func runRun(args []string, stdout io.Writer) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, restore the default action: a second
		// Ctrl-C kills a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	return runLive(ctx, args, stdout, os.Stderr)
}

// runLive is run with its context (cancelled on SIGINT/SIGTERM) and
// stderr given, for tests.
func runLive(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var rf runFlags
	fs := rf.flagSet(stdout)
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	cfg, err := applyConfigFile(fs, rf.config)
	if err != nil {
		return exitBadInput, err
	}
	fs.Visit(func(f *flag.Flag) { rf.topKSet = rf.topKSet || f.Name == "topk" })
	lg := newRunLog(stderr, rf.quiet)
	// SIGHUP (logrotate's postrotate, systemctl reload) reopens the
	// output files; it no longer kills the run.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	r, err := setUpRun(&rf, stdout, lg)
	if err != nil {
		return exitBadInput, cfg.explain(err)
	}
	defer r.sess.Close()
	hupDone := make(chan struct{})
	defer close(hupDone)
	go func() {
		for {
			select {
			case <-hup:
				if len(r.reopeners) == 0 {
					lg.warnf("SIGHUP: no output files to reopen")
					continue
				}
				for _, o := range r.reopeners {
					o.RequestReopen()
				}
				lg.warnf("SIGHUP: reopening %d output file(s) at their next result", len(r.reopeners))
			case <-hupDone:
				return
			}
		}
	}()
	if err := r.loop.Run(ctx); err != nil {
		return exitRunFailed, err
	}
	s := r.loop.Stats()
	lg.infof("stopped after %d frames; %s", s.Frames, live.StatsLine(s))
	return exitOK, nil
}

// flagSet defines run's flags on a new FlagSet that fills rf.
func (rf *runFlags) flagSet(stdout io.Writer) *flag.FlagSet {
	fs := newFlags("run", stdout)
	fs.StringVar(&rf.config, "config", "", "read settings from this YAML file first (see firmware/vggedge/vggedge.example.yaml); flags given here win")
	fs.StringVar(&rf.model, "model", "digits", "a model file, or an embedded model (digits); its int8 weights run")
	fs.StringVar(&rf.source, "source", "", "frames: v4l2:///dev/videoN, csi://N, video:PATH (or clip.mp4), rtsp://…, http://…, pipe:CMD, file://DIR, idx:PATH, synthetic, bundled:digits (default: the first camera, else bundled:digits)")
	fs.StringVar(&rf.format, "format", "", "pixel format a pipe writes, the camera should send or ffmpeg should write: YUYV, I420, NV12, MJPEG, RGB24, BGR24, GRAY")
	fs.StringVar(&rf.size, "size", "", "frame size WxH for pipes and cameras, or to scale videos and streams to, e.g. 640x480")
	fs.Float64Var(&rf.fps, "fps", 0, "frame rate wanted from the camera or stream, or frames per second of a video file to classify (0: its default, every frame of a file)")
	fs.IntVar(&rf.maxFrames, "max-frames", 0, "stop after N classified frames (0: run until the source ends or a signal)")
	fs.IntVar(&rf.threads, "threads", runtime.NumCPU(), "inference threads")
	fs.IntVar(&rf.topK, "topk", 5, "classes per result")
	fs.Var(&rf.outputs, "output", "where results go, repeatable: jsonl (stdout), jsonl:PATH, msgpack:PATH, msgpack:tcp:HOST:PORT, msgpack:unix:PATH (default jsonl)")
	fs.StringVar(&rf.gpio.Pin, "gpio", "", "drive this GPIO pin (e.g. GPIO17 or 17) High while a --when label is seen")
	fs.Var((*output.NameList)(&rf.gpio.When), "when", "labels that set the --gpio pin, comma-separated: a label, one of its comma-separated parts or an ImageNet synonym, any case ('tabby cat')")
	fs.Float64Var(&rf.gpio.On, "on-score", 0.8, "score at or above which the pin goes High")
	fs.Float64Var(&rf.gpio.Off, "off-score", 0.5, "score the pin must stay below for --hold before it goes Low (< --on-score)")
	fs.DurationVar(&rf.gpio.Hold, "hold", time.Second, "how long the score must stay below --off-score before the pin goes Low")
	fs.StringVar(&rf.http, "http", "", "serve the live page at this address, e.g. 127.0.0.1:8080 (default off)")
	fs.StringVar(&rf.httpAllowHost, "http-allow-host", "", "host names the live page answers to besides IP addresses, localhost and this machine's hostname, comma-separated, e.g. cam.example.org")
	fs.DurationVar(&rf.sourceTimeout, "source-timeout", camera.DefaultSourceTimeout, "restart a camera or pipe: program (reopen a camera) that delivers no frame for this long (0: never)")
	fs.DurationVar(&rf.statsEvery, "stats-every", 0, "log a stats line to stderr this often, e.g. 10s (0: never)")
	fs.BoolVar(&rf.quiet, "quiet", false, "log only warnings and errors")
	mqtt.AddFlags(fs, &rf.mqtt)
	return fs
}

// runLog writes "vggedge run: …" lines to stderr from any goroutine.
type runLog struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool
}

func newRunLog(w io.Writer, quiet bool) *runLog { return &runLog{w: w, quiet: quiet} }

func (l *runLog) warnf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Log lines quote the broker, file names and child processes: no
	// password, no terminal escape.
	io.WriteString(l.w, "vggedge run: "+termSafe(redactURLs(fmt.Sprintf(format, args...)), 8192)+"\n")
}

func (l *runLog) infof(format string, args ...any) {
	if !l.quiet {
		l.warnf(format, args...)
	}
}

// preparedRun is a loop ready to Run, with what it was built from.
type preparedRun struct {
	loop      *live.Loop
	sess      *infer.Session
	reopeners []reopener // the file outputs, for SIGHUP
}

// reopener is an output writing to a path, which it can reopen.
type reopener interface{ RequestReopen() }

// setUpRun validates the flags, opens the model, the source and the
// outputs, and builds the loop. On error everything opened is closed.
func setUpRun(rf *runFlags, stdout io.Writer, lg *runLog) (_ *preparedRun, err error) {
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	opts := camera.Options{FPS: rf.fps, Logf: lg.warnf, SourceTimeout: rf.sourceTimeout}
	if rf.sourceTimeout == 0 {
		opts.SourceTimeout = -1 // camera.Options: off
	}
	if rf.size != "" {
		if opts.Width, opts.Height, err = parseFrameSize(rf.size); err != nil {
			return nil, fmt.Errorf("--size: %w", err)
		}
	}
	if rf.format != "" {
		if opts.Format, err = parsePixelFormat(rf.format); err != nil {
			return nil, fmt.Errorf("--format: %w", err)
		}
	}
	if rf.fps < 0 || rf.fps > 1000 {
		return nil, fmt.Errorf("--fps %v: want 0..1000", rf.fps)
	}
	if rf.maxFrames < 0 {
		return nil, fmt.Errorf("--max-frames %d: want ≥ 0", rf.maxFrames)
	}
	if rf.threads < 1 || rf.threads > 256 {
		return nil, fmt.Errorf("--threads %d: want 1..256", rf.threads)
	}
	if rf.sourceTimeout < 0 {
		return nil, fmt.Errorf("--source-timeout %v: want a duration ≥ 0", rf.sourceTimeout)
	}
	if rf.statsEvery < 0 {
		return nil, fmt.Errorf("--stats-every %v: want a duration ≥ 0", rf.statsEvery)
	}
	outs, err := parseOutputs(rf.outputs)
	if err != nil {
		return nil, err
	}

	// The model.
	mf, err := openModel(rf.model)
	if err != nil {
		return nil, &flagError{flag: "model", err: err}
	}
	q := mf.Int8
	if q == nil {
		return nil, fmt.Errorf("model %s has no int8 weights: quantize it first (vggedge quantize)", rf.model)
	}
	shapes, err := q.Shapes()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", rf.model, err)
	}
	classes := int(shapes[len(shapes)-1].Elems())
	labels := classLabels(q.Meta.Labels, classes)
	if !rf.topKSet {
		rf.topK = min(rf.topK, classes)
	}
	if rf.topK < 1 || rf.topK > classes {
		return nil, fmt.Errorf("--topk %d: want 1..%d (model %s has %d classes)", rf.topK, classes, rf.model, classes)
	}
	if err := rf.gpio.Validate(labels); err != nil {
		return nil, err
	}
	pre, err := camera.NewPreprocessor(q.Input, q.Meta.Spec)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", rf.model, err)
	}
	sess, err := infer.NewSessionThreads(q, rf.threads)
	if err != nil {
		return nil, err
	}
	closers = append(closers, sess.Close)

	// The source.
	src, uri, err := openRunSource(rf.source, opts, lg)
	if err != nil {
		return nil, &flagError{flag: "source", err: err}
	}
	closers = append(closers, func() { src.Close() })
	truth := sourceTruth(src, uri, labels, lg)
	var srcBytes int64
	if b, ok := src.(interface{ BufferBytes() int64 }); ok {
		srcBytes = b.BufferBytes()
	}
	if camera.IsLive(src) {
		src = reconnectingSource(uri, src, opts)
	}

	// The outputs.
	enc := output.NewMsgpackEncoder(q.Name, labels, rf.topK)
	var sinks []live.NamedSink
	var reopeners []reopener
	for _, o := range outs {
		var s live.Sink
		switch {
		case o == "jsonl":
			s = output.NewJSONL(stdout, nil)
		case strings.HasPrefix(o, "jsonl:"):
			path, rot, rerr := output.SplitRotation(strings.TrimPrefix(o, "jsonl:"))
			if rerr != nil {
				return nil, fmt.Errorf("output %s: %w", o, rerr)
			}
			var js *output.JSONL
			if js, err = output.CreateJSONL(path, lg.warnf); err == nil {
				js.SetRotation(rot)
				s = js
			}
		default:
			s, err = output.OpenMsgpack(strings.TrimPrefix(o, "msgpack:"), enc, lg.warnf)
		}
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { s.Close() })
		sinks = append(sinks, live.NamedSink{Name: o, Sink: s})
		if ro, ok := s.(reopener); ok && o != "jsonl" {
			reopeners = append(reopeners, ro)
		}
	}
	if rf.gpio.Pin != "" {
		name, pin, err := output.OpenGPIOPin(rf.gpio.Pin)
		if err != nil {
			return nil, &flagError{flag: "gpio", err: err}
		}
		g, err := output.NewGPIO(name, pin, rf.gpio)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { g.Close() })
		sinks = append(sinks, live.NamedSink{Name: "gpio " + name, Sink: g})
	}

	stats := &lateStats{}
	if rf.http != "" {
		var allow []string
		if rf.httpAllowHost != "" {
			allow = strings.Split(rf.httpAllowHost, ",")
		}
		h, err := livepage.New(rf.http, stats, lg.warnf, allow...)
		if err != nil {
			return nil, fmt.Errorf("--http %s: %w", rf.http, err)
		}
		closers = append(closers, func() { h.Close() })
		sinks = append(sinks, live.NamedSink{Name: "http " + rf.http, Sink: h})
	}
	det, _ := boards.Detect()
	if mc, err := mqtt.ConfigFromFlags(&rf.mqtt, labels, q.Name, boardName(det)); err != nil {
		return nil, err
	} else if mc != nil {
		m, err := mqtt.NewSink(*mc, stats, lg.warnf, lg.infof)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { m.Close() })
		sinks = append(sinks, live.NamedSink{Name: "mqtt", Sink: m})
	}

	loop, err := live.New(live.Config{
		Source: src, SourceName: redactURLs(uri), Session: sess, Pre: pre, Labels: labels, Truth: truth, TopK: rf.topK,
		Outputs: sinks, MaxFrames: uint64(rf.maxFrames), Model: q.Name, Board: boardName(det),
		Kernel: kernels.Describe(), Logf: lg.warnf, Infof: lg.infof, StatsEvery: rf.statsEvery,
	})
	if err != nil {
		return nil, err
	}
	stats.loop.Store(loop)
	mode := "every frame"
	if camera.IsLive(src) {
		mode = "live: newest frame only"
	}
	lg.infof("model %s (int8, input %v, %d classes), source %s (%s), %d thread(s), kernels %s",
		q.Name, q.Input, classes, uri, mode, sess.Threads(), kernels.Describe())
	lg.infof("%s", budgetLine(q, sess, srcBytes, det))
	return &preparedRun{loop: loop, sess: sess, reopeners: reopeners}, nil
}

// lateStats lets the live page exist before the loop it reports on.
type lateStats struct{ loop atomic.Pointer[live.Loop] }

func (s *lateStats) Stats() live.Stats {
	if l := s.loop.Load(); l != nil {
		return l.Stats()
	}
	return live.Stats{}
}

// openRunSource opens --source, or the default camera, or bundled digits
// when there is no camera.
func openRunSource(uri string, opts camera.Options, lg *runLog) (camera.Source, string, error) {
	if uri != "" {
		s, err := camera.Open(uri, opts)
		return s, uri, err
	}
	s, name, err := camera.OpenDefault(opts)
	if errors.Is(err, camera.ErrNoCamera) {
		uri = "bundled:digits"
		lg.infof("no camera found; classifying %s (handwritten digits built into the binary) — give --source to choose", uri)
		s, err = camera.Open(uri, opts)
		return s, uri, err
	}
	return s, name, err
}

// reconnectingSource wraps an open live source so that it is reopened
// after a failure; the first open is the one already done (so bad URIs
// fail at start, with exit status 2).
func reconnectingSource(uri string, first camera.Source, opts camera.Options) camera.Source {
	return camera.Reconnecting(uri, func() (camera.Source, error) {
		if s := first; s != nil {
			first = nil
			return s, nil
		}
		return camera.Open(uri, opts)
	}, opts)
}

// sourceTruth maps the classes a source names (an ImageFolder's folders,
// the bundled digits) to the model's labels as eval does, so that a
// result's truth is the folder's label, not the label at the folder's
// position. A class that names no single label has no truth (-1), said
// once in the log. nil: the source names no classes.
func sourceTruth(src camera.Source, uri string, model []string, lg *runLog) []int {
	c, ok := src.(interface{ Classes() []string })
	if !ok {
		return nil
	}
	classes := c.Classes()
	if len(classes) == 0 {
		return nil
	}
	truth := truthIndex(classes, model)
	var none []string
	for i, t := range truth {
		if t < 0 {
			none = append(none, classes[i])
		}
	}
	if none != nil {
		lg.warnf("source %s: classes %s name no single label of the model; their frames have no truth", uri, labelset.List(none))
	}
	return truth
}

// classLabels is the model's labels, or the class indices as strings when
// the file has none (or the wrong number).
func classLabels(meta []string, classes int) []string {
	if len(meta) == classes {
		return meta
	}
	l := make([]string, classes)
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}

// parseOutputs checks the --output values; none means jsonl on stdout.
func parseOutputs(outs []string) ([]string, error) {
	if len(outs) == 0 {
		return []string{"jsonl"}, nil
	}
	seen := map[string]bool{}
	for _, o := range outs {
		ok := o == "jsonl" || (strings.HasPrefix(o, "jsonl:") && len(o) > len("jsonl:")) || strings.HasPrefix(o, "msgpack:")
		if !ok {
			return nil, fmt.Errorf("--output %q: want jsonl, jsonl:PATH, msgpack:PATH, msgpack:tcp:HOST:PORT or msgpack:unix:PATH", o)
		}
		if seen[o] {
			return nil, fmt.Errorf("--output %s given twice", o)
		}
		seen[o] = true
	}
	return outs, nil
}

// parseFrameSize reads "640x480".
func parseFrameSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return 0, 0, fmt.Errorf("%q: want WxH, e.g. 640x480 (each 1..16384)", s)
	}
	return w, h, nil
}

var pixelFormats = []camera.PixelFormat{camera.YUYV, camera.I420, camera.NV12, camera.MJPEG, camera.RGB24, camera.BGR24, camera.GRAY8}

func parsePixelFormat(s string) (camera.PixelFormat, error) {
	var names []string
	for _, f := range pixelFormats {
		if strings.EqualFold(string(f), s) {
			return f, nil
		}
		names = append(names, string(f))
	}
	return "", fmt.Errorf("%q: want one of %s", s, strings.Join(names, ", "))
}

func boardName(d *boards.Detected) string {
	if d != nil && d.Board != nil {
		return d.Board.ID
	}
	return "unknown (" + runtime.GOARCH + ")"
}

// budgetLine is the one-line memory budget logged at start: what the run
// holds (int8 weights, the session's activation buffers, the source's
// frame buffers) against what the board leaves to vggedge.
func budgetLine(q *infer.QModel, s *infer.Session, srcBytes int64, d *boards.Detected) string {
	var weights int64
	for i := range q.Layers {
		l := &q.Layers[i]
		weights += int64(len(l.Weight)) + 4*int64(len(l.WScale)+len(l.Bias)+len(l.Mult)+len(l.Shift)) + int64(len(l.PadValue))
		weights += 4 * int64(len(l.SEWeight)+len(l.SEBias)+len(l.SEWeight2)+len(l.SEBias2))
	}
	act := s.ActivationBytes()
	total := weights + act + srcBytes
	line := fmt.Sprintf("memory: weights %s + activations %s + source buffers %s = %s", mibText(weights), mibText(act), mibText(srcBytes), mibText(total))
	switch {
	case d != nil && d.Board != nil:
		avail := d.Board.Available(boards.Budget{})
		line += fmt.Sprintf(" of %s available on %s (%.1f%%)", mibText(avail), d.Board.ID, 100*float64(total)/float64(avail))
	case d != nil && d.MemTotalBytes > 0:
		line += fmt.Sprintf(" of %s RAM (no board profile matches this machine)", mibText(d.MemTotalBytes))
	}
	return line
}

func mibText(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }
