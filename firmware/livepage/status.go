package livepage

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"unicode/utf16"

	"github.com/vggedge/vggedge/firmware/live"
)

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
func (s *Server) snapshot() (live.Stats, *live.Result, *uint64) {
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
		seq := s.slots[s.newest].pic.Seq
		pic = &seq
	}
	s.mu.Unlock()
	if last == nil {
		last = st.Last
	}
	return st, last, pic
}

func (s *Server) status() statusJSON {
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
		r := resultOf(last, len(last.Top), -1)
		j.Top, j.Frame, j.Truth, j.LatencyMs = r.Top, &r.Frame, r.Truth, r.LatencyMs
	}
	return j
}

// resultJSON is one frame's result: the X-Result header that comes with
// each picture, and the result fields of /api/status.
type resultJSON struct {
	Frame     uint64      `json:"frame"`
	Top       []classJSON `json:"top"`
	Truth     *string     `json:"truth"` // its ground-truth label; null when unknown
	LatencyMs jsonFloat   `json:"latency_ms"`
}

// resultOf is r with its best topN classes and labels cut to maxLabel
// bytes (no cut when negative).
func resultOf(r *live.Result, topN, maxLabel int) resultJSON {
	j := resultJSON{Frame: r.Frame, Top: []classJSON{}, LatencyMs: jsonFloat(r.LatencyMs)}
	for _, c := range r.Top[:min(topN, len(r.Top))] {
		j.Top = append(j.Top, classJSON{c.Index, cutLabel(c.Label, maxLabel), jsonFloat(c.Score)})
	}
	if r.Truth >= 0 {
		truth := r.TruthLabel
		if truth == "" {
			truth = strconv.Itoa(r.Truth)
		}
		truth = cutLabel(truth, maxLabel)
		j.Truth = &truth
	}
	return j
}

// cutLabel cuts s to at most max bytes on a character boundary, marking
// the cut with "…"; max < 0 keeps s whole.
func cutLabel(s string, max int) string {
	if max < 0 || len(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if i > max-len("…") {
			break
		}
		n = i
	}
	return s[:n] + "…"
}

// Bounds of the X-Result header: the page shows the best five, and a
// label file's line can be any length, while browsers refuse responses
// whose headers pass 256 KiB.
const (
	headerTop        = 5
	headerLabelBytes = 256
)

// resultHeader is r as X-Result: JSON in printable ASCII, other characters
// as \u escapes (browsers read header bytes as Latin-1, and a header may
// carry no control characters).
func resultHeader(r *live.Result) ([]byte, error) {
	b, err := json.Marshal(resultOf(r, headerTop, headerLabelBytes))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(b)/4)
	for _, c := range string(b) { // json.Marshal writes valid UTF-8
		switch {
		case c >= 0x20 && c < 0x7f:
			out = append(out, byte(c))
		case c < 0x10000:
			out = fmt.Appendf(out, `\u%04x`, c)
		default:
			hi, lo := utf16.EncodeRune(c)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		}
	}
	return out, nil
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
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
