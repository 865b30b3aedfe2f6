package live

import (
	"time"

	"github.com/vggedge/vggedge/camera"
)

// Class is one entry of a frame's top-k.
type Class struct {
	Index int
	Label string
	Score float32 // softmax probability
}

// Result is one classified frame as the loop hands it to sinks. It and its
// slices belong to the loop: a sink copies what it keeps before Write
// returns.
type Result struct {
	Frame      uint64    // the source's sequence number
	Time       time.Time // capture time
	Top        []Class   // top-k, best first
	LatencyMs  float64   // capture to result
	Truth      int       // ground-truth class index, -1 when unknown
	TruthLabel string
	File       string // the image file of the frame (file source); "" otherwise
}

// Sink receives results. The loop never calls Write from the inference
// goroutine directly: each sink runs behind a bounded queue, so a slow or
// failing sink drops results (counted) instead of stalling inference.
type Sink interface {
	Write(r *Result) error
	Close() error
}

// PictureSink is a sink that also wants the frame itself (the live page).
// ObservePicture is called on the inference goroutine and must only copy
// (no encoding, no blocking); f is valid during the call only.
type PictureSink interface {
	Sink
	ObservePicture(f *camera.Frame)
}

// StageStats are rolling times of one loop stage, in milliseconds.
type StageStats struct {
	Mean, P50, P99 float64
}

// Stats is a snapshot of the loop's health for /api/status, /metrics and
// MQTT stats.
type Stats struct {
	Model, Board, Source, Kernel string
	Threads                      int
	Uptime                       time.Duration
	Frames                       uint64  // classified
	Dropped                      uint64  // live frames replaced by newer ones before inference
	SinkDropped                  uint64  // results a full sink queue refused
	Reconnects                   uint64  // source reopened after a failure
	LoopFPS                      float64 // classified frames per second, over the last window
	InferFPS                     float64 // 1000 / inference mean
	Capture, Preprocess          StageStats
	Inference, Sinks             StageStats
	Latency                      StageStats // capture to result
	TempC                        float64    // CPU temperature; NaN when the board does not say
	Throttled                    string     // e.g. "under-voltage,throttled" on a Pi; "" when none or unknown
	Last                         *Result    // the newest result (copy owned by the snapshot), nil before the first
}

// StatsSource is what the HTTP page and the MQTT stats read.
type StatsSource interface {
	Stats() Stats
}
