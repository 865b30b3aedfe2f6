package livepage

import (
	_ "embed"
	"encoding/json"
	"math"
	"net/http"
	"strconv"

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
		seq := s.pic.Seq
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
