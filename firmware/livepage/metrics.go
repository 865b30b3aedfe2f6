package livepage

import (
	"bytes"
	_ "embed"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/vggedge/vggedge/firmware/live"
)

// promWriter writes the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
type promWriter struct{ buf bytes.Buffer }

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

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
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

var (
	promHelpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	promLabelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)
