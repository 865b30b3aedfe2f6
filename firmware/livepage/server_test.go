package livepage

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vggedge/vggedge/camera"
)

// fakeStats is a StatsSource the test sets by hand.
type fakeStats struct {
	mu sync.Mutex
	st live.Stats
}

func (f *fakeStats) Stats() live.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeStats) set(fn func(*live.Stats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

func sampleStats() *fakeStats {
	return &fakeStats{st: live.Stats{
		Model: "digits", Board: "rpi4-4g", Source: "bundled:digits", Kernel: "avx2", Threads: 4,
		Uptime: 90 * time.Second, Frames: 1234, Dropped: 7, SinkDropped: 2, Reconnects: 1,
		LoopFPS: 29.5, InferFPS: 80,
		Capture:    live.StageStats{Mean: 1.5, P50: 1.25, P99: 4},
		Preprocess: live.StageStats{Mean: 0.5, P50: 0.5, P99: 0.75},
		Inference:  live.StageStats{Mean: 12.5, P50: 12, P99: 20},
		Sinks:      live.StageStats{Mean: 0.25, P50: 0.25, P99: 1},
		Latency:    live.StageStats{Mean: 16, P50: 15, P99: 30},
		TempC:      math.NaN(),
	}}
}

// logBuffer collects a sink's log lines; safe to use after the test ends.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func startServer(t *testing.T, addr string, stats live.StatsSource, allowHosts ...string) (*Server, *logBuffer) {
	t.Helper()
	var log logBuffer
	ps, err := New(addr, stats, log.logf, allowHosts...)
	if err != nil {
		t.Fatalf("New(%q): %v", addr, err)
	}
	s := ps.(*Server)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, &log
}

func (s *Server) testURL(path string) string { return "http://" + s.addr + path }

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, body
}

func TestLiveBindAddr(t *testing.T) {
	cases := []struct {
		in, want string
		err      string
	}{
		{":8080", "127.0.0.1:8080", ""},
		{"8080", "127.0.0.1:8080", ""},
		{":0", "127.0.0.1:0", ""},
		{"127.0.0.1:8080", "127.0.0.1:8080", ""},
		{"0.0.0.0:8080", "0.0.0.0:8080", ""},
		{"192.168.1.5:8080", "192.168.1.5:8080", ""},
		{"[::]:8080", "[::]:8080", ""},
		{"localhost:9000", "localhost:9000", ""},
		{"", "", "want HOST:PORT"},
		{"localhost", "", "want HOST:PORT"},
		{"127.0.0.1:http", "", `port "http" is not a number`},
		{":70000", "", `port "70000" is not a number`},
		{"1:2:3", "", "want HOST:PORT"},
	}
	for _, c := range cases {
		got, err := BindAddr(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), strconv.Quote(c.in)) {
				t.Errorf("liveBindAddr(%q) = %q, %v; want an error naming the value and containing %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("liveBindAddr(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestHTTPSinkLoopbackByDefault(t *testing.T) {
	s, log := startServer(t, ":0", sampleStats())
	host, _, _ := net.SplitHostPort(s.addr)
	if host != "127.0.0.1" {
		t.Errorf("\":0\" bound %s, want 127.0.0.1", s.addr)
	}
	if l := log.String(); !strings.Contains(l, "loopback") || !strings.Contains(l, "live page: http://"+s.addr+"/") {
		t.Errorf("log does not say it chose loopback and where the page is:\n%s", l)
	}
	// Named interfaces are taken as given, and then nothing is said about loopback.
	all, log := startServer(t, "0.0.0.0:0", sampleStats())
	if host, _, _ := net.SplitHostPort(all.addr); host != "0.0.0.0" {
		t.Errorf("\"0.0.0.0:0\" bound %s", all.addr)
	}
	if l := log.String(); strings.Contains(l, "loopback") || !strings.Contains(l, "all interfaces") {
		t.Errorf("0.0.0.0 log:\n%s", l)
	}
}

func TestHTTPSinkPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	s, err := New(addr, sampleStats(), nil)
	if err == nil {
		s.Close()
		t.Fatalf("New(%s) on a taken port succeeded", addr)
	}
	if msg := err.Error(); !strings.Contains(msg, "already in use") || !strings.Contains(msg, addr) || strings.Contains(msg, "\n") {
		t.Errorf("error = %q; want one line naming %s and saying it is in use", msg, addr)
	}
}

func TestHTTPSinkPage(t *testing.T) {
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	resp, body := get(t, s.testURL("/"))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	// The top-5 rows are built by the script (the browser test reads them).
	for _, id := range []string{"picture", "top", "frame", "loop-fps", "infer-fps", "latency", "dropped", "temp", "throttled", "stages"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("page has no element id %q", id)
		}
	}
	// It must work on a board with no internet: nothing loaded from elsewhere.
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindString(page); m != "" {
		t.Errorf("page refers to an external URL: %s", m)
	}
	for _, path := range []string{"/nothing", "/index.html"} {
		if resp, _ := get(t, s.testURL(path)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %s, want 404", path, resp.Status)
		}
	}
	resp, err := http.Post(s.testURL("/api/status"), "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/status = %s, want 405", resp.Status)
	}
}

func TestHTTPSinkStatus(t *testing.T) {
	stats := sampleStats()
	s, _ := startServer(t, "127.0.0.1:0", stats)
	status := func() map[string]any {
		t.Helper()
		resp, body := get(t, s.testURL("/api/status"))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("status is not JSON: %v\n%s", err, body)
		}
		return m
	}

	// Before the first result: no top, no frame, temperature unknown.
	m := status()
	for _, k := range []string{"frame", "truth", "temp_c", "picture"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("before any result %s = %v (present %v), want null", k, v, ok)
		}
	}
	if top, ok := m["top"].([]any); !ok || len(top) != 0 {
		t.Errorf("before any result top = %v, want []", m["top"])
	}

	stats.set(func(st *live.Stats) { st.TempC = 61.2; st.Throttled = "throttled" })
	s.Write(&live.Result{Frame: 41, LatencyMs: 17.5, Truth: 3, Top: []live.Class{{Index: 3, Label: "3", Score: 0.9}, {Index: 8, Label: "8", Score: 0.05}, {Index: 5, Label: "5", Score: 0.03}}})
	s.ObservePicture(&camera.Frame{Seq: 42, Format: camera.GRAY8, Width: 2, Height: 2, Data: make([]byte, 4)})
	m = status()
	want := map[string]any{
		"model": "digits", "board": "rpi4-4g", "source": "bundled:digits", "kernel": "avx2",
		"threads": 4.0, "uptime_s": 90.0, "frames": 1234.0, "loop_fps": 29.5, "infer_fps": 80.0,
		"dropped": 7.0, "sink_dropped": 2.0, "reconnects": 1.0, "temp_c": 61.2, "throttled": "throttled",
		"frame": 41.0, "truth": "3", "latency_ms": 17.5, "picture": 42.0, "stream_clients": 0.0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("status %s = %#v, want %#v", k, m[k], v)
		}
	}
	stages, _ := m["stages"].(map[string]any)
	inf, _ := stages["inference"].(map[string]any)
	if inf["mean_ms"] != 12.5 || inf["p50_ms"] != 12.0 || inf["p99_ms"] != 20.0 {
		t.Errorf("stages.inference = %v", inf)
	}
	for _, st := range []string{"capture", "preprocess", "inference", "sinks"} {
		if _, ok := stages[st].(map[string]any); !ok {
			t.Errorf("stages has no %s: %v", st, stages)
		}
	}
	if lat, _ := m["latency"].(map[string]any); lat["p50_ms"] != 15.0 || lat["p99_ms"] != 30.0 {
		t.Errorf("latency = %v", m["latency"])
	}
	top, _ := m["top"].([]any)
	if len(top) != 3 {
		t.Fatalf("top = %v, want 3 classes", m["top"])
	}
	first, _ := top[0].(map[string]any)
	if first["label"] != "3" || first["index"] != 3.0 || math.Abs(first["score"].(float64)-0.9) > 1e-6 {
		t.Errorf("top[0] = %v", first)
	}

	// Unknown truth is null; a label stands in for a missing TruthLabel only when known.
	s.Write(&live.Result{Frame: 43, Truth: -1, Top: []live.Class{{Index: 8, Label: "eight", Score: 0.6}}})
	if m = status(); m["truth"] != nil || m["frame"] != 43.0 {
		t.Errorf("truth = %v frame = %v, want null and 43", m["truth"], m["frame"])
	}
	s.Write(&live.Result{Frame: 44, Truth: 7, TruthLabel: "seven"})
	if m = status(); m["truth"] != "seven" {
		t.Errorf("truth = %v, want seven", m["truth"])
	}
}

// TestHTTPSinkStatusUsesLoopLast: before the sink has been handed a result
// (its queue may lag), the page shows the loop's newest one.
func TestHTTPSinkStatusUsesLoopLast(t *testing.T) {
	stats := sampleStats()
	stats.set(func(st *live.Stats) {
		st.Last = &live.Result{Frame: 9, Truth: -1, Top: []live.Class{{Index: 1, Label: "one", Score: 0.75}}}
		st.LoopFPS = math.Inf(1) // not JSON: must come out null, not break the whole reply
	})
	s, _ := startServer(t, "127.0.0.1:0", stats)
	_, body := get(t, s.testURL("/api/status"))
	var st struct {
		Frame   uint64         `json:"frame"`
		LoopFPS *float64       `json:"loop_fps"`
		Top     []classJSONOut `json:"top"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if st.Frame != 9 || len(st.Top) != 1 || st.Top[0].Label != "one" || st.LoopFPS != nil {
		t.Errorf("status = %+v, want frame 9, top one, loop_fps null", st)
	}
}

type classJSONOut struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// promSeries parses Prometheus text format 0.0.4 line by line, failing the
// test on any line the format does not allow, and returns each series'
// value by "name{labels sorted}" and the broken rules. The rules are those of
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-format-details.
func promSeries(text string) (series map[string]float64, problems []string) {
	series = map[string]float64{}
	var (
		nameRe  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
		labelRe = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"`)
		valueRe = regexp.MustCompile(`^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$`)
		types   = map[string]string{}
		helps   = map[string]bool{}
		done    = map[string]bool{} // families whose samples have ended
		current string
	)
	if !strings.HasSuffix(text, "\n") {
		problems = append(problems, "no newline at the end")
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(why string) { problems = append(problems, fmt.Sprintf("line %d %q: %s", i+1, line, why)) }
		if line == "" {
			fail("empty line")
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				fail("comment that is neither HELP nor TYPE")
				continue
			}
			if !nameRe.MatchString(f[2]) {
				fail("bad metric name")
			}
			switch f[1] {
			case "HELP":
				if helps[f[2]] {
					fail("second HELP")
				}
				helps[f[2]] = true
			case "TYPE":
				if len(f) != 4 || !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, f[3]) {
					fail("bad TYPE")
				}
				if _, dup := types[f[2]]; dup {
					fail("second TYPE")
				}
				if done[f[2]] || current == f[2] {
					fail("TYPE after the family's samples")
				}
				types[f[2]] = f[3]
			}
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		labels := ""
		if n, l, ok := strings.Cut(name, "{"); ok {
			name = n
			// Label values may hold spaces: re-join and take up to the closing brace.
			full := l + " " + rest
			end := strings.LastIndex(full, "}")
			if end < 0 {
				fail("no closing brace")
				continue
			}
			l, rest = full[:end], strings.TrimPrefix(full[end+1:], " ")
			var pairs []string
			for l != "" {
				m := labelRe.FindStringSubmatch(l)
				if m == nil {
					fail("bad label at " + l)
					break
				}
				pairs = append(pairs, m[0])
				l = strings.TrimPrefix(l[len(m[0]):], ",")
			}
			slices.Sort(pairs)
			labels = "{" + strings.Join(pairs, ",") + "}"
		}
		if !nameRe.MatchString(name) {
			fail("bad metric name")
		}
		fields := strings.Fields(rest)
		if len(fields) < 1 || len(fields) > 2 || !valueRe.MatchString(fields[0]) {
			fail("bad value")
			continue
		}
		if _, ok := types[name]; !ok {
			fail("sample without a TYPE line before it")
		}
		if strings.HasSuffix(name, "_total") && types[name] != "counter" {
			fail("_total is for counters")
		}
		if name != current {
			if done[name] {
				fail("family's samples are not together")
			}
			if current != "" {
				done[current] = true
			}
			current = name
		}
		v, _ := strconv.ParseFloat(fields[0], 64)
		if _, dup := series[name+labels]; dup {
			fail("duplicate series")
		}
		series[name+labels] = v
	}
	return series, problems
}

func TestHTTPSinkMetrics(t *testing.T) {
	stats := sampleStats()
	// A model name with every character the label escaping has to handle.
	stats.set(func(st *live.Stats) { st.Model = "vgg \"16\"\\int8\nslim" })
	s, _ := startServer(t, "127.0.0.1:0", stats)
	metrics := func() map[string]float64 {
		resp, body := get(t, s.testURL("/metrics"))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
			t.Fatalf("metrics: %s %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		m, problems := promSeries(string(body))
		for _, p := range problems {
			t.Errorf("metrics: %s", p)
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", body)
		}
		return m
	}
	m := metrics()
	want := map[string]float64{
		`vggedge_frames_total`:                                     1234,
		`vggedge_dropped_frames_total`:                             7,
		`vggedge_sink_dropped_total`:                               2,
		`vggedge_reconnects_total`:                                 1,
		`vggedge_loop_fps`:                                         29.5,
		`vggedge_inference_fps`:                                    80,
		`vggedge_stage_seconds{quantile="0.5",stage="inference"}`:  0.012,
		`vggedge_stage_seconds{quantile="0.99",stage="inference"}`: 0.020,
		`vggedge_stage_seconds{quantile="0.5",stage="capture"}`:    0.00125,
		`vggedge_stage_mean_seconds{stage="sinks"}`:                0.00025,
		`vggedge_latency_seconds{quantile="0.5"}`:                  0.015,
		`vggedge_latency_seconds{quantile="0.99"}`:                 0.030,
		`vggedge_throttled`:                                        0,
		`vggedge_uptime_seconds`:                                   90,
		`vggedge_threads`:                                          4,
		`vggedge_info{board="rpi4-4g",kernel="avx2",model="vgg \"16\"\\int8\nslim",source="bundled:digits"}`: 1,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("metrics have no %s", k)
		} else if math.Abs(got-v) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if _, ok := m["vggedge_cpu_temperature_celsius"]; ok {
		t.Errorf("temperature exported although the board does not say it (NaN)")
	}
	stats.set(func(st *live.Stats) { st.TempC = 55.5; st.Throttled = "under-voltage" })
	m = metrics()
	if m["vggedge_cpu_temperature_celsius"] != 55.5 || m["vggedge_throttled"] != 1 {
		t.Errorf("temperature %v throttled %v, want 55.5 and 1", m["vggedge_cpu_temperature_celsius"], m["vggedge_throttled"])
	}
}

// TestPromSeriesRejects shows the format check can fail.
func TestPromSeriesRejects(t *testing.T) {
	bad := []string{
		"vggedge_x 1\n",                                   // no TYPE
		"# TYPE a gauge\na{l=\"x\\q\"} 1\n",               // bad escape
		"# TYPE a gauge\na 1,5\n",                         // bad value
		"# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na 2\n", // family split
		"# TYPE a_total gauge\na_total 1\n",               // _total gauge
		"# TYPE a gauge\na 1",                             // no final newline
		"# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",    // duplicate series
		"# TYPE 1a gauge\n",                               // bad name
		"# TYPE a gauge\n\na 1\n",                         // empty line
		"# TYPE a histogramm\na 1\n",                      // bad type
		"# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n",   // two HELPs
		"# TYPE a gauge\na 1\n# TYPE a gauge\n",           // TYPE twice
		"# TYPE a gauge\na{1x=\"y\"} 1\n",                 // bad label name
		"# TYPE a gauge\na{x=\"y\"\n",                     // no brace
		"# TYPE a gauge\na inf\n",                         // Go would parse it; the format does not allow it
		"# TYPE a counter\n# TYPE b gauge\nb 1\n# FOO\n",  // bad comment
	}
	for _, text := range bad {
		if _, problems := promSeries(text); len(problems) == 0 {
			t.Errorf("promSeries accepted %q", text)
		}
	}
}

// rgbFrame is a w×h frame whose left half is red and right half blue, in
// RGB24 or BGR24 byte order.
func rgbFrame(format camera.PixelFormat, w, h int, seq uint64) *camera.Frame {
	data := make([]byte, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			px := [3]byte{220, 30, 30}
			if x >= w/2 {
				px = [3]byte{20, 40, 230}
			}
			if format == camera.BGR24 {
				px[0], px[2] = px[2], px[0]
			}
			copy(data[(y*w+x)*3:], px[:])
		}
	}
	return &camera.Frame{Seq: seq, Format: format, Width: w, Height: h, Data: data, Label: -1}
}

func grayFrame(w, h int, seq uint64) *camera.Frame {
	data := make([]byte, w*h)
	for i := range data {
		if i%w >= w/2 {
			data[i] = 200
		}
	}
	return &camera.Frame{Seq: seq, Format: camera.GRAY8, Width: w, Height: h, Data: data, Label: -1}
}

func mjpegFrame(t *testing.T, w, h int, seq uint64) *camera.Frame {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return &camera.Frame{Seq: seq, Format: camera.MJPEG, Width: w, Height: h, Data: b.Bytes(), Label: -1}
}

// yuvFrame is a w×h frame whose left half is red and right half blue, in a
// raw YUV format: BT.601 limited-range 100% colour bars, red Y,Cb,Cr =
// 81,90,240 and blue 41,240,110 (Keith Jack, Video Demystified, table 3.x;
// also the ITU-R BT.601 matrix applied to (255,0,0) and (0,0,255)).
func yuvFrame(format camera.PixelFormat, w, h int, seq uint64) *camera.Frame {
	yuv := func(x int) (y, cb, cr byte) {
		if x >= w/2 {
			return 41, 240, 110
		}
		return 81, 90, 240
	}
	var data []byte
	switch format {
	case camera.YUYV:
		for row := 0; row < h; row++ {
			for x := 0; x < w; x += 2 {
				y0, cb, cr := yuv(x)
				y1, _, _ := yuv(x + 1)
				data = append(data, y0, cb, y1, cr)
			}
		}
	case camera.I420, camera.NV12:
		cw, ch := (w+1)/2, (h+1)/2
		for row := 0; row < h; row++ {
			for x := 0; x < w; x++ {
				y, _, _ := yuv(x)
				data = append(data, y)
			}
		}
		var cbs, crs []byte
		for row := 0; row < ch; row++ {
			for x := 0; x < cw; x++ {
				_, cb, cr := yuv(2 * x)
				cbs, crs = append(cbs, cb), append(crs, cr)
			}
		}
		if format == camera.I420 {
			data = append(append(data, cbs...), crs...)
		} else {
			for i := range cbs {
				data = append(data, cbs[i], crs[i])
			}
		}
	}
	return &camera.Frame{Seq: seq, Format: format, Width: w, Height: h, Data: data, Label: -1}
}

// checkPicture decodes a JPEG and checks its size and, for the half-and-half
// test frames, the colour a quarter in from each side.
func checkPicture(t *testing.T, what string, data []byte, f *camera.Frame, w, h int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not a JPEG: %v", what, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("%s: %dx%d, want %dx%d", what, b.Dx(), b.Dy(), w, h)
	}
	near := func(c color.Color, want [3]int) bool {
		r, g, b, _ := c.RGBA()
		got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
		for i := range got {
			if got[i]-want[i] > 24 || want[i]-got[i] > 24 {
				return false
			}
		}
		return true
	}
	left, right := img.At(w/4, h/2), img.At(3*w/4, h/2)
	var wl, wr [3]int
	switch f.Format {
	case camera.RGB24, camera.BGR24:
		wl, wr = [3]int{220, 30, 30}, [3]int{20, 40, 230}
	case camera.GRAY8:
		wl, wr = [3]int{0, 0, 0}, [3]int{200, 200, 200}
	case camera.YUYV, camera.I420, camera.NV12:
		wl, wr = [3]int{255, 0, 0}, [3]int{0, 0, 255}
	default:
		return
	}
	if !near(left, wl) || !near(right, wr) {
		t.Errorf("%s: left %v right %v, want about %v and %v", what, left, right, wl, wr)
	}
}

func TestHTTPSinkSnapshot(t *testing.T) {
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	if resp, body := get(t, s.testURL("/snapshot.jpg")); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no picture yet") {
		t.Errorf("snapshot before any picture = %s %q, want 503 no picture yet", resp.Status, body)
	}
	cases := []struct {
		name string
		f    *camera.Frame
		w, h int
	}{
		{"rgb 320x240", rgbFrame(camera.RGB24, 320, 240, 1), 320, 240},
		{"bgr 320x240", rgbFrame(camera.BGR24, 320, 240, 2), 320, 240},
		{"rgb 640x480 stays", rgbFrame(camera.RGB24, 640, 480, 3), 640, 480},
		{"rgb 1280x720 halves", rgbFrame(camera.RGB24, 1280, 720, 4), 640, 360},
		{"rgb 1920x1080 thirds", rgbFrame(camera.RGB24, 1920, 1080, 5), 640, 360},
		{"rgb 1000x500 halves", rgbFrame(camera.RGB24, 1000, 500, 6), 500, 250},
		{"gray 28x28", grayFrame(28, 28, 7), 28, 28},
		{"gray 1280x720", grayFrame(1280, 720, 8), 640, 360},
		{"yuyv 320x240", yuvFrame(camera.YUYV, 320, 240, 11), 320, 240},
		{"i420 1280x720", yuvFrame(camera.I420, 1280, 720, 12), 640, 360},
		{"nv12 640x480", yuvFrame(camera.NV12, 640, 480, 13), 640, 480},
	}
	for _, c := range cases {
		s.ObservePicture(c.f)
		resp, body := get(t, s.testURL("/snapshot.jpg"))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Errorf("%s: %s %s %q", c.name, resp.Status, resp.Header.Get("Content-Type"), body)
			continue
		}
		if got := resp.Header.Get("X-Frame"); got != strconv.FormatUint(c.f.Seq, 10) {
			t.Errorf("%s: X-Frame %s, want %d", c.name, got, c.f.Seq)
		}
		checkPicture(t, c.name, body, c.f, c.w, c.h)
	}

	// Camera JPEGs pass through byte for byte.
	mj := mjpegFrame(t, 160, 120, 9)
	s.ObservePicture(mj)
	if _, body := get(t, s.testURL("/snapshot.jpg")); !bytes.Equal(body, mj.Data) {
		t.Errorf("MJPEG snapshot is %d bytes, not the frame's %d bytes", len(body), len(mj.Data))
	}

	// A frame that lies about its size is an error on the page's side, not a panic.
	s.ObservePicture(&camera.Frame{Seq: 10, Format: camera.RGB24, Width: 640, Height: 480, Data: make([]byte, 100)})
	resp, body := get(t, s.testURL("/snapshot.jpg"))
	if msg := string(body); resp.StatusCode != http.StatusInternalServerError || !strings.Contains(msg, "640x480") || !strings.Contains(msg, "100 bytes") {
		t.Errorf("short frame: %s %q", resp.Status, body)
	}
}

// TestHTTPSinkEncodesOnlyOnRequest: without a client nothing is encoded,
// and one picture is encoded once however many times it is asked for.
func TestHTTPSinkEncodesOnlyOnRequest(t *testing.T) {
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	for i := range 20 {
		s.ObservePicture(rgbFrame(camera.RGB24, 64, 48, uint64(i)))
	}
	s.enc.mu.Lock()
	encoded := s.enc.last.version
	s.enc.mu.Unlock()
	if encoded != 0 {
		t.Fatalf("encoded picture %d with no client", encoded)
	}
	_, a := get(t, s.testURL("/snapshot.jpg"))
	_, b := get(t, s.testURL("/snapshot.jpg"))
	if &a[0] == &b[0] || !bytes.Equal(a, b) {
		t.Errorf("the same picture gave different JPEGs")
	}
	s.enc.mu.Lock()
	if s.enc.last.version != 20 || s.enc.last.seq != 19 {
		t.Errorf("encoded picture version %d seq %d, want 20 and 19", s.enc.last.version, s.enc.last.seq)
	}
	s.enc.mu.Unlock()
}

// streamReader opens /stream.mjpg and returns its multipart reader.
func streamReader(t *testing.T, s *Server) (*multipart.Reader, io.Closer) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Get(s.testURL("/stream.mjpg"))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		resp.Body.Close()
		t.Fatalf("stream Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	return multipart.NewReader(resp.Body, params["boundary"]), resp.Body
}

func TestHTTPSinkStream(t *testing.T) {
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	mr, body := streamReader(t, s)
	defer body.Close()
	frames := []struct {
		f    *camera.Frame
		w, h int
	}{
		{rgbFrame(camera.RGB24, 320, 240, 100), 320, 240},
		{rgbFrame(camera.BGR24, 1280, 720, 101), 640, 360},
		{grayFrame(28, 28, 102), 28, 28},
		{mjpegFrame(t, 96, 64, 103), 96, 64},
		{rgbFrame(camera.RGB24, 320, 240, 104), 320, 240},
	}
	// Each picture is fed only after the previous part arrived, so every
	// one must come out as its own part, in order.
	for _, fr := range frames {
		s.ObservePicture(fr.f)
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("frame %d: next part: %v", fr.f.Seq, err)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("frame %d: part: %v", fr.f.Seq, err)
		}
		if ct := part.Header.Get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("frame %d: part Content-Type %q", fr.f.Seq, ct)
		}
		checkPicture(t, fmt.Sprintf("part of frame %d", fr.f.Seq), data, fr.f, fr.w, fr.h)
		if fr.f.Format == camera.MJPEG && !bytes.Equal(data, fr.f.Data) {
			t.Errorf("MJPEG part differs from the camera's JPEG")
		}
	}
	if _, body := get(t, s.testURL("/api/status")); !strings.Contains(string(body), `"stream_clients":1`) {
		t.Errorf("status does not count the stream client: %s", body)
	}
}

// TestHTTPSinkCloseEndsStreams: Close returns while a client is attached,
// the client sees its stream end, and the port is free again.
func TestHTTPSinkCloseEndsStreams(t *testing.T) {
	ps, err := New("127.0.0.1:0", sampleStats(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := ps.(*Server)
	s.ObservePicture(rgbFrame(camera.RGB24, 32, 32, 1))
	mr, body := streamReader(t, s)
	defer body.Close()
	if _, err := mr.NextPart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			break // EOF or a cut connection: either way the stream ended
		}
		io.Copy(io.Discard, p)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	again, err := New(s.addr, sampleStats(), nil)
	if err != nil {
		t.Fatalf("port not freed by Close: %v", err)
	}
	again.Close()
}

// TestHTTPSinkSlowClient: a client that never reads its stream does not
// hold up the loop's calls, nor Close.
func TestHTTPSinkSlowClient(t *testing.T) {
	ps, err := New("127.0.0.1:0", sampleStats(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := ps.(*Server)
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096) // fill up fast
	}
	fmt.Fprintf(conn, "GET /stream.mjpg HTTP/1.1\r\nHost: %s\r\n\r\n", s.addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	// Noise pictures compress badly, so the socket buffers fill within a
	// few parts; from then on the handler is stuck in Write.
	big := rgbFrame(camera.RGB24, 640, 480, 0)
	for i := range big.Data {
		big.Data[i] = byte(i*2654435761>>13) ^ byte(i)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range 300 {
		big.Seq = uint64(i)
		s.ObservePicture(big)
		s.Write(&live.Result{Frame: uint64(i), Top: []live.Class{{Index: 1, Label: "one", Score: 1}}})
		if i%30 == 0 {
			time.Sleep(streamInterval) // pacing only: let the handler take some pictures
		}
		if time.Now().After(deadline) {
			t.Fatalf("feeding 300 frames took over 30 s: the loop is blocked by a slow client")
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(shutdownTimeout + 30*time.Second):
		t.Fatalf("Close blocked by a slow client")
	}
}

func TestHTTPSinkSteadyStateAllocs(t *testing.T) {
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	frames := []*camera.Frame{rgbFrame(camera.RGB24, 640, 480, 1), grayFrame(28, 28, 2), mjpegFrame(t, 160, 120, 3)}
	results := []*live.Result{
		{Frame: 1, Top: []live.Class{{Index: 3, Label: "3", Score: 0.9}, {Index: 8, Label: "8", Score: 0.05}, {Index: 5, Label: "5", Score: 0.02}, {Index: 0, Label: "0", Score: 0.01}, {Index: 9, Label: "9", Score: 0.01}}, Truth: 3, TruthLabel: "3"},
		{Frame: 2, Top: []live.Class{{Index: 8, Label: "8", Score: 0.7}}, Truth: -1},
	}
	i := 0
	step := func() {
		f := frames[i%len(frames)]
		f.Seq = uint64(i)
		s.ObservePicture(f)
		// Results now on time, now a frame late: each pairs with its
		// picture or finds it paired already.
		r := results[i%len(results)]
		r.Frame = uint64(max(i-1, 0))
		if i%3 == 0 {
			r.Frame = uint64(i)
		}
		s.Write(r)
		i++
	}
	for range 10 { // warm-up: buffers grow to the largest frame and top-k
		step()
	}
	s.mu.Lock()
	before := s.shownV
	s.mu.Unlock()
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Errorf("ObservePicture+Write allocate %.1f times per frame after warm-up, want 0", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := s.slots[s.shown]; !sl.paired || sl.res.Frame != sl.pic.Seq || s.shownV-before < 100 {
		t.Errorf("pictures were not paired with their results: shown frame %d paired %v with result %d; %d pairings in 201 frames",
			sl.pic.Seq, sl.paired, sl.res.Frame, s.shownV-before)
	}
}

func FuzzLiveBindAddr(f *testing.F) {
	for _, s := range []string{":8080", "8080", "0.0.0.0:80", "[::1]:0", "", "a:b:c", "host:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		bind, err := BindAddr(addr)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		host, _, err := net.SplitHostPort(bind)
		if err != nil || host == "" {
			t.Errorf("liveBindAddr(%q) = %q: no host (%v)", addr, bind, err)
		}
	})
}

// FuzzPictureImage: any frame header and bytes give an image or an error,
// never a panic or an image wider than the page is sent.
func FuzzPictureImage(f *testing.F) {
	f.Add("RGB24", 4, 2, []byte("abcdefghijklmnopqrstuvwx"))
	f.Add("GRAY", 1300, 1, make([]byte, 1300))
	f.Add("BGR24", 2000, 2, make([]byte, 100))
	f.Add("YUYV", 2, 2, make([]byte, 8))
	f.Fuzz(func(t *testing.T, format string, w, h int, data []byte) {
		var e pictureEncoder
		img, err := e.image(&camera.Frame{Format: camera.PixelFormat(format), Width: w, Height: h, Data: data})
		if err != nil {
			return
		}
		if b := img.Bounds(); b.Dx() > maxPictureWidth || b.Dx() < 1 || b.Dy() < 1 {
			t.Errorf("%s %dx%d gave a %v image", format, w, h, b)
		}
	})
}
