package main

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vggedge/vggedge/camera"
	"golang.org/x/net/netutil"
)

//go:embed http_page.html
var livePage []byte

const (
	// streamInterval caps /stream.mjpg at 10 fps: enough to see the camera,
	// cheap enough that JPEG encoding does not steal a Pi's inference cores.
	streamInterval = 100 * time.Millisecond
	// streamWriteTimeout drops a client that has not taken a part for this
	// long (a phone that went to sleep with the page open).
	streamWriteTimeout = 10 * time.Second
	// shutdownTimeout bounds Close; clients still attached after it are cut.
	shutdownTimeout = 3 * time.Second
	// maxPictureWidth is the widest picture the page is sent; larger
	// frames are shrunk by an integer factor before encoding.
	maxPictureWidth = 640
	jpegQuality     = 80
	streamBoundary  = "vggedgeframe"
	partHeader      = "\r\nContent-Type: image/jpeg\r\n\r\n"
)

var errNoPicture = errors.New("no picture yet")

// Limits of the live page's server against clients that misbehave (vars,
// so tests can shorten them).
var (
	// httpReadTimeout bounds reading a whole request, body included: a
	// request announcing a body it never sends is dropped. It ends with
	// the request: the MJPEG stream's response is not bound by it.
	httpReadTimeout = 15 * time.Second
	// httpMaxConns caps the connections served at once; further ones wait
	// in the listen backlog until one closes.
	httpMaxConns = 256
)

// httpMaxHeaderBytes bounds a request's headers (Go's default is 1 MiB):
// 8 KiB is plenty for a browser and keeps 200 connections well below a
// megabyte each.
const httpMaxHeaderBytes = 8 << 10

// httpSink serves the live page, the camera stream, /api/status and
// /metrics. The loop's side (ObservePicture, Write) only copies under a
// mutex; every encoding happens on the HTTP goroutines, and only while
// someone is asking.
type httpSink struct {
	stats live.StatsSource
	logf  func(string, ...any)
	addr  string // the address actually bound, host:port
	srv   *http.Server

	done      chan struct{} // closed by Close: streams end
	closeOnce sync.Once
	served    chan struct{} // closed when Serve has returned

	mu      sync.Mutex   // guards pic, picN, res, resN; held for copies only
	pic     camera.Frame // the newest picture; Data's capacity is reused
	picN    uint64       // pictures observed; 0 = none yet
	res     live.Result  // the newest result; Top's capacity is reused
	resN    uint64       // results written; 0 = none yet
	streams atomic.Int32 // /stream.mjpg clients attached

	// cutMu guards cut: the open streams' controllers, so that Close can
	// end a write stuck on a client that stopped reading.
	cutMu sync.Mutex
	cut   map[*http.ResponseController]struct{}

	enc pictureEncoder

	allowHosts   map[string]bool // Host names served besides IP literals and loopback names
	hostRejected atomic.Uint64
}

// newHTTPSink listens on addr and serves the live page until Close. Its
// errors leave out the flag's name: the caller says "--http ADDR: ". An
// address without a host (":8080", or just "8080") binds the loopback
// interface only: showing a camera to the network is something a user asks
// for by naming the interface ("0.0.0.0:8080").
//
// Requests whose Host header is not an IP address, a loopback name
// (localhost, *.localhost), this machine's hostname (and hostname.local),
// the host of addr or one of allowHosts are refused (403): a web page on
// another site cannot read the camera through DNS rebinding.
func newHTTPSink(addr string, stats live.StatsSource, logf func(string, ...any), allowHosts ...string) (live.PictureSink, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bind, err := liveBindAddr(addr)
	if err != nil {
		return nil, err
	}
	if bind != addr {
		logf("live page: --http %q names no interface, listening on loopback %s only (use 0.0.0.0:PORT to serve the network)", addr, bind)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen on %s: address already in use (another vggedge or web server has that port; pick another)", bind)
		}
		return nil, fmt.Errorf("live page: %w", err)
	}
	// Report the host as named (Go reports 0.0.0.0 as [::], its dual-stack
	// socket) with the port actually bound (for :0).
	host, _, _ := net.SplitHostPort(bind)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := &httpSink{
		stats:  stats,
		logf:   logf,
		addr:   net.JoinHostPort(host, port),
		done:   make(chan struct{}),
		served: make(chan struct{}),
		cut:    map[*http.ResponseController]struct{}{},

		allowHosts: map[string]bool{},
	}
	for _, h := range append(allowHosts, host) {
		if h = strings.ToLower(strings.TrimSuffix(h, ".")); h != "" {
			s.allowHosts[h] = true
		}
	}
	if hn, err := os.Hostname(); err == nil && hn != "" {
		hn = strings.ToLower(hn)
		s.allowHosts[hn], s.allowHosts[hn+".local"] = true, true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /stream.mjpg", s.serveStream)
	mux.HandleFunc("GET /snapshot.jpg", s.serveSnapshot)
	mux.HandleFunc("GET /api/status", s.serveStatus)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.srv = &http.Server{
		Handler:           s.checkHost(mux),
		ReadHeaderTimeout: 10 * time.Second, // a client that never finishes its request holds nothing for long
		ReadTimeout:       httpReadTimeout,  // nor one that never sends the body it announced
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    httpMaxHeaderBytes,
	}
	limited := netutil.LimitListener(ln, httpMaxConns)
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(limited); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("live page: %v", err)
		}
	}()
	logf("live page: %s", s.URL())
	return s, nil
}

// checkHost refuses requests for a Host the page is not served as.
func (s *httpSink) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			if n := s.hostRejected.Add(1); n&(n-1) == 0 {
				s.logf("live page: refused a request for host %s (%d so far): not this machine's; allow it with --http-allow-host", termSafe(strconv.Quote(r.Host), 80), n)
			}
			http.Error(w, "vggedge: host "+strconv.Quote(r.Host)+" is not served here (DNS rebinding?); start vggedge with --http-allow-host to allow it", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *httpSink) hostAllowed(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if h == "" {
		return true // an HTTP/1.0 client without Host: browsers always send one
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true // an IP literal cannot be rebound to another site's name
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || s.allowHosts[h]
}

// liveBindAddr applies the loopback rule to a --http value.
func liveBindAddr(addr string) (string, error) {
	if addr != "" && strings.Trim(addr, "0123456789") == "" {
		addr = ":" + addr // a bare port
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q: want HOST:PORT or :PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return "", fmt.Errorf("%q: port %q is not a number in 0..65535", addr, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// URL is the page's address as a browser on this machine reaches it.
func (s *httpSink) URL() string {
	host, port, _ := net.SplitHostPort(s.addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "http://" + net.JoinHostPort(host, port) + "/ (all interfaces: use this board's address)"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// ObservePicture keeps a copy of the newest frame. It runs on the
// inference goroutine: a memcpy into a buffer that grows to the largest
// frame once, then never allocates again.
func (s *httpSink) ObservePicture(f *camera.Frame) {
	s.mu.Lock()
	data := append(s.pic.Data[:0], f.Data...)
	s.pic = *f
	s.pic.Data = data
	s.picN++
	s.mu.Unlock()
}

// Write keeps a copy of the newest result.
func (s *httpSink) Write(r *live.Result) error {
	s.mu.Lock()
	top := append(s.res.Top[:0], r.Top...)
	s.res = *r
	s.res.Top = top
	s.resN++
	s.mu.Unlock()
	return nil
}

// Close ends the streams, then shuts the server down; clients that do not
// let go within shutdownTimeout are disconnected.
func (s *httpSink) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		s.cutMu.Lock()
		for rc := range s.cut {
			rc.SetWriteDeadline(time.Now()) // a blocked Write returns now
		}
		s.cutMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if serr := s.srv.Shutdown(ctx); serr != nil {
			s.srv.Close()
			if !errors.Is(serr, context.DeadlineExceeded) {
				err = fmt.Errorf("live page: shutdown: %w", serr)
			}
		}
		<-s.served
	})
	return err
}

func (s *httpSink) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(livePage)
}

// serveStream sends the picture as multipart/x-mixed-replace JPEGs, one
// part each time a new picture exists, at most every streamInterval.
func (s *httpSink) serveStream(w http.ResponseWriter, r *http.Request) {
	s.streams.Add(1)
	defer s.streams.Add(-1)
	h := w.Header()
	h.Set("Content-Type", "multipart/x-mixed-replace; boundary="+streamBoundary)
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(w)
	s.cutMu.Lock()
	select {
	case <-s.done:
		s.cutMu.Unlock()
		return
	default:
	}
	s.cut[rc] = struct{}{}
	s.cutMu.Unlock()
	defer func() {
		s.cutMu.Lock()
		delete(s.cut, rc)
		s.cutMu.Unlock()
	}()
	// ReadTimeout does not end a stream that runs for hours: net/http
	// clears the read deadline once a body-less request is read (its
	// background read), so only the write deadline below applies
	// (TestHTTPSinkStreamOutlivesReadTimeout).
	// Chromium shows a part only once the next part's headers have arrived,
	// so each part's boundary and headers go out right after the previous
	// picture, not before the next one (which may be seconds away). The
	// price: parts carry no Content-Length; clients split on the boundary.
	rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := io.WriteString(w, "--"+streamBoundary+partHeader); err != nil {
		return
	}
	rc.Flush()
	tick := time.NewTicker(streamInterval)
	defer tick.Stop()
	var sent uint64
	for {
		if pic, err := s.enc.latest(s); err == nil && pic.n != sent {
			sent = pic.n
			rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := w.Write(pic.jpeg); err != nil {
				return
			}
			if _, err := io.WriteString(w, "\r\n--"+streamBoundary+partHeader); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		} else if err != nil && !errors.Is(err, errNoPicture) {
			s.logf("live page: stream: %v", err)
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

func (s *httpSink) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	pic, err := s.enc.latest(s)
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("X-Content-Type-Options", "nosniff")
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, errNoPicture) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
		return
	}
	h.Set("Content-Type", "image/jpeg")
	h.Set("Content-Length", strconv.Itoa(len(pic.jpeg)))
	h.Set("X-Frame", strconv.FormatUint(pic.seq, 10))
	w.Write(pic.jpeg)
}

// jsonFloat is a number that is null in JSON when it is not finite (JSON
// has no NaN), with six significant digits.
type jsonFloat float64

func (x jsonFloat) MarshalJSON() ([]byte, error) {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

type stageJSON struct {
	MeanMs jsonFloat `json:"mean_ms"`
	P50Ms  jsonFloat `json:"p50_ms"`
	P99Ms  jsonFloat `json:"p99_ms"`
}

type classJSON struct {
	Index int       `json:"index"`
	Label string    `json:"label"`
	Score jsonFloat `json:"score"`
}

type statusJSON struct {
	Model    string    `json:"model"`
	Board    string    `json:"board"`
	Source   string    `json:"source"`
	Kernel   string    `json:"kernel"`
	Threads  int       `json:"threads"`
	UptimeS  jsonFloat `json:"uptime_s"`
	Frames   uint64    `json:"frames"`
	LoopFPS  jsonFloat `json:"loop_fps"`
	InferFPS jsonFloat `json:"infer_fps"`
	Stages   struct {
		Capture    stageJSON `json:"capture"`
		Preprocess stageJSON `json:"preprocess"`
		Inference  stageJSON `json:"inference"`
		Sinks      stageJSON `json:"sinks"`
	} `json:"stages"`
	Latency     stageJSON   `json:"latency"`
	Dropped     uint64      `json:"dropped"`
	SinkDropped uint64      `json:"sink_dropped"`
	Reconnects  uint64      `json:"reconnects"`
	TempC       jsonFloat   `json:"temp_c"` // null when the board does not say
	Throttled   string      `json:"throttled"`
	Top         []classJSON `json:"top"`
	Frame       *uint64     `json:"frame"`      // the newest result's frame; null before the first
	LatencyMs   jsonFloat   `json:"latency_ms"` // that result's capture-to-result time
	Truth       *string     `json:"truth"`      // its ground-truth label; null when unknown
	Picture     *uint64     `json:"picture"`    // the newest picture's frame; null before the first
	Clients     int32       `json:"stream_clients"`
}

func stageOf(st live.StageStats) stageJSON {
	return stageJSON{jsonFloat(st.Mean), jsonFloat(st.P50), jsonFloat(st.P99)}
}

// snapshot reads the loop's stats and the sink's own newest result and
// picture number (the result a sink was handed is newer than or equal to
// Stats.Last).
func (s *httpSink) snapshot() (live.Stats, *live.Result, *uint64) {
	var st live.Stats
	if s.stats != nil {
		st = s.stats.Stats()
	} else {
		st.TempC = math.NaN()
	}
	var last *live.Result
	var pic *uint64
	s.mu.Lock()
	if s.resN > 0 {
		r := s.res
		r.Top = append([]live.Class(nil), s.res.Top...)
		last = &r
	}
	if s.picN > 0 {
		seq := s.pic.Seq
		pic = &seq
	}
	s.mu.Unlock()
	if last == nil {
		last = st.Last
	}
	return st, last, pic
}

func (s *httpSink) status() statusJSON {
	st, last, pic := s.snapshot()
	j := statusJSON{
		Model: st.Model, Board: st.Board, Source: st.Source, Kernel: st.Kernel,
		Threads:     st.Threads,
		UptimeS:     jsonFloat(st.Uptime.Seconds()),
		Frames:      st.Frames,
		LoopFPS:     jsonFloat(st.LoopFPS),
		InferFPS:    jsonFloat(st.InferFPS),
		Latency:     stageOf(st.Latency),
		Dropped:     st.Dropped,
		SinkDropped: st.SinkDropped,
		Reconnects:  st.Reconnects,
		TempC:       jsonFloat(st.TempC),
		Throttled:   st.Throttled,
		Top:         []classJSON{},
		Picture:     pic,
		Clients:     s.streams.Load(),
		LatencyMs:   jsonFloat(math.NaN()),
	}
	j.Stages.Capture = stageOf(st.Capture)
	j.Stages.Preprocess = stageOf(st.Preprocess)
	j.Stages.Inference = stageOf(st.Inference)
	j.Stages.Sinks = stageOf(st.Sinks)
	if last != nil {
		for _, c := range last.Top {
			j.Top = append(j.Top, classJSON{c.Index, c.Label, jsonFloat(c.Score)})
		}
		frame := last.Frame
		j.Frame = &frame
		j.LatencyMs = jsonFloat(last.LatencyMs)
		if last.Truth >= 0 {
			truth := last.TruthLabel
			if truth == "" {
				truth = strconv.Itoa(last.Truth)
			}
			j.Truth = &truth
		}
	}
	return j
}

func (s *httpSink) serveStatus(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.status())
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.Write(append(b, '\n'))
}

func (s *httpSink) serveMetrics(w http.ResponseWriter, r *http.Request) {
	st, _, _ := s.snapshot()
	var m promWriter
	m.family("vggedge_frames_total", "counter", "Frames classified.")
	m.sample("vggedge_frames_total", nil, float64(st.Frames))
	m.family("vggedge_dropped_frames_total", "counter", "Live frames replaced by newer ones before inference.")
	m.sample("vggedge_dropped_frames_total", nil, float64(st.Dropped))
	m.family("vggedge_sink_dropped_total", "counter", "Results a full sink queue refused.")
	m.sample("vggedge_sink_dropped_total", nil, float64(st.SinkDropped))
	m.family("vggedge_reconnects_total", "counter", "Times the source was reopened after a failure.")
	m.sample("vggedge_reconnects_total", nil, float64(st.Reconnects))
	m.family("vggedge_loop_fps", "gauge", "Classified frames per second over the last window.")
	m.sample("vggedge_loop_fps", nil, st.LoopFPS)
	m.family("vggedge_inference_fps", "gauge", "Inference rate the model alone allows (1 / mean inference time).")
	m.sample("vggedge_inference_fps", nil, st.InferFPS)
	// Rolling-window quantiles are gauges: they go up and down and have no
	// cumulative _sum/_count.
	m.family("vggedge_stage_seconds", "gauge", "Rolling time of one loop stage per frame, by quantile.")
	stages := [...]struct {
		name string
		st   live.StageStats
	}{{"capture", st.Capture}, {"preprocess", st.Preprocess}, {"inference", st.Inference}, {"sinks", st.Sinks}}
	for _, sg := range stages {
		m.sample("vggedge_stage_seconds", []string{"stage", sg.name, "quantile", "0.5"}, sg.st.P50/1000)
		m.sample("vggedge_stage_seconds", []string{"stage", sg.name, "quantile", "0.99"}, sg.st.P99/1000)
	}
	m.family("vggedge_stage_mean_seconds", "gauge", "Rolling mean time of one loop stage per frame.")
	for _, sg := range stages {
		m.sample("vggedge_stage_mean_seconds", []string{"stage", sg.name}, sg.st.Mean/1000)
	}
	m.family("vggedge_latency_seconds", "gauge", "Rolling capture-to-result latency, by quantile.")
	m.sample("vggedge_latency_seconds", []string{"quantile", "0.5"}, st.Latency.P50/1000)
	m.sample("vggedge_latency_seconds", []string{"quantile", "0.99"}, st.Latency.P99/1000)
	if !math.IsNaN(st.TempC) {
		// Absent rather than NaN when the board has no sensor: an absent
		// series does not draw a broken line or fire temperature alerts.
		m.family("vggedge_cpu_temperature_celsius", "gauge", "CPU temperature.")
		m.sample("vggedge_cpu_temperature_celsius", nil, st.TempC)
	}
	m.family("vggedge_throttled", "gauge", "1 when the board reports throttling or under-voltage now.")
	throttled := 0.0
	if st.Throttled != "" {
		throttled = 1
	}
	m.sample("vggedge_throttled", nil, throttled)
	m.family("vggedge_uptime_seconds", "gauge", "Seconds since the loop started.")
	m.sample("vggedge_uptime_seconds", nil, st.Uptime.Seconds())
	m.family("vggedge_threads", "gauge", "Inference worker threads.")
	m.sample("vggedge_threads", nil, float64(st.Threads))
	m.family("vggedge_stream_clients", "gauge", "Browsers attached to /stream.mjpg.")
	m.sample("vggedge_stream_clients", nil, float64(s.streams.Load()))
	m.family("vggedge_info", "gauge", "What runs: model, board, kernel and source; always 1.")
	m.sample("vggedge_info", []string{"model", st.Model, "board", st.Board, "kernel", st.Kernel, "source", st.Source}, 1)

	h := w.Header()
	h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.Write(m.buf.Bytes())
}

// promWriter writes the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
type promWriter struct{ buf bytes.Buffer }

var (
	promHelpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	promLabelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func (m *promWriter) family(name, typ, help string) {
	fmt.Fprintf(&m.buf, "# HELP %s %s\n# TYPE %s %s\n", name, promHelpEscaper.Replace(help), name, typ)
}

// sample writes one line; labels are name, value pairs.
func (m *promWriter) sample(name string, labels []string, v float64) {
	m.buf.WriteString(name)
	if len(labels) > 0 {
		m.buf.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				m.buf.WriteByte(',')
			}
			m.buf.WriteString(labels[i])
			m.buf.WriteString(`="`)
			m.buf.WriteString(promLabelEscaper.Replace(labels[i+1]))
			m.buf.WriteByte('"')
		}
		m.buf.WriteByte('}')
	}
	m.buf.WriteByte(' ')
	switch {
	case math.IsNaN(v):
		m.buf.WriteString("NaN")
	case math.IsInf(v, 1):
		m.buf.WriteString("+Inf")
	case math.IsInf(v, -1):
		m.buf.WriteString("-Inf")
	default:
		m.buf.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	m.buf.WriteByte('\n')
}

// encodedPicture is one JPEG of the newest picture. Its bytes are never
// written again once published, so slow clients can hold on to them.
type encodedPicture struct {
	n    uint64 // the sink's picture count it was made from
	seq  uint64 // the frame's sequence number
	jpeg []byte
}

// pictureEncoder turns the sink's newest picture into a JPEG at most once
// per picture, however many clients ask.
type pictureEncoder struct {
	mu   sync.Mutex
	last encodedPicture
	raw  camera.Frame // the picture copied out of the sink
	rgb  []byte
	rgba *image.RGBA
	gray *image.Gray
	out  bytes.Buffer
}

func (e *pictureEncoder) latest(s *httpSink) (encodedPicture, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.mu.Lock()
	n := s.picN
	if n == 0 {
		s.mu.Unlock()
		return encodedPicture{}, errNoPicture
	}
	if n == e.last.n {
		s.mu.Unlock()
		return e.last, nil
	}
	if s.pic.Format == camera.MJPEG {
		// Camera JPEGs go out untouched: the browser decodes them, DHT or not.
		e.last = encodedPicture{n: n, seq: s.pic.Seq, jpeg: bytes.Clone(s.pic.Data)}
		s.mu.Unlock()
		return e.last, nil
	}
	data := append(e.raw.Data[:0], s.pic.Data...)
	e.raw = s.pic
	e.raw.Data = data
	s.mu.Unlock()

	img, err := e.image(&e.raw)
	if err != nil {
		return encodedPicture{}, fmt.Errorf("picture %d: %w", e.raw.Seq, err)
	}
	e.out.Reset()
	quality := jpegQuality
	if img.Bounds().Dx() < 160 {
		// Tiny pictures (MNIST's 28x28) are shown blown up, where quality
		// 80's block noise is plain to see; at this size 95 costs nothing.
		quality = 95
	}
	if err := jpeg.Encode(&e.out, img, &jpeg.Options{Quality: quality}); err != nil {
		return encodedPicture{}, fmt.Errorf("picture %d: jpeg: %w", e.raw.Seq, err)
	}
	e.last = encodedPicture{n: n, seq: e.raw.Seq, jpeg: bytes.Clone(e.out.Bytes())}
	return e.last, nil
}

// image converts f into an image no wider than maxPictureWidth, shrinking
// by an integer factor with a box filter (averaging, so fine detail does
// not alias into noise).
func (e *pictureEncoder) image(f *camera.Frame) (image.Image, error) {
	if f.Width <= 0 || f.Height <= 0 || f.Width > 1<<14 || f.Height > 1<<14 {
		return nil, fmt.Errorf("%s frame of %dx%d: size out of range", f.Format, f.Width, f.Height)
	}
	kx := (f.Width + maxPictureWidth - 1) / maxPictureWidth
	ky := min(kx, f.Height) // a strip lower than the factor becomes one row
	w, h := f.Width/kx, f.Height/ky
	if f.Format == camera.GRAY8 {
		if len(f.Data) < f.Width*f.Height {
			return nil, fmt.Errorf("GRAY frame of %dx%d needs %d bytes, has %d", f.Width, f.Height, f.Width*f.Height, len(f.Data))
		}
		if e.gray == nil || e.gray.Rect.Dx() != w || e.gray.Rect.Dy() != h {
			e.gray = image.NewGray(image.Rect(0, 0, w, h))
		}
		shrink(e.gray.Pix, w, h, f.Data, f.Width, kx, ky, 1)
		return e.gray, nil
	}
	rgb, err := camera.ToRGB(e.rgb, f)
	if err != nil {
		return nil, err
	}
	e.rgb = rgb
	if e.rgba == nil || e.rgba.Rect.Dx() != w || e.rgba.Rect.Dy() != h {
		e.rgba = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	shrink(e.rgba.Pix, w, h, rgb, f.Width, kx, ky, 3)
	return e.rgba, nil
}

// shrink box-averages kx×ky blocks of src (ch interleaved channels, srcW
// pixels a row) into dst (w×h; 4 bytes a pixel for ch 3 with alpha 255,
// 1 byte for ch 1).
func shrink(dst []byte, w, h int, src []byte, srcW, kx, ky, ch int) {
	dch := ch
	if ch == 3 {
		dch = 4
	}
	area := uint32(kx * ky)
	var sum [3]uint32
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			sum = [3]uint32{}
			for dy := 0; dy < ky; dy++ {
				row := src[((y*ky+dy)*srcW+x*kx)*ch:]
				for dx := 0; dx < kx*ch; dx += ch {
					for c := 0; c < ch; c++ {
						sum[c] += uint32(row[dx+c])
					}
				}
			}
			o := (y*w + x) * dch
			for c := 0; c < ch; c++ {
				dst[o+c] = byte((sum[c] + area/2) / area)
			}
			if dch == 4 {
				dst[o+3] = 255
			}
		}
	}
}
