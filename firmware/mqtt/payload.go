package mqtt

import (
	"github.com/vmihailenco/msgpack/v5"
)

// The wire format of the MQTT messages, defined once: vggedge run
// publishes these structs and vggedge fleet decodes into the same ones
// (bounded: a struct never allocates from a length prefix the way a
// map[string]any does).

// Topics: vggedge run publishes under TopicRoot/<device-id>/<kind>.
const (
	TopicRoot        = "vggedge"
	KindAvailability = "availability" // retained "online"; "offline" as last will and on clean stop
	KindStats        = "stats"        // every --mqtt-stats-every
	KindEvent        = "event"        // retained, on every label change
)

// Topic is the topic of device's messages of kind.
func Topic(device, kind string) string { return TopicRoot + "/" + device + "/" + kind }

// Availability payloads (retained; "offline" is also the last will).
const (
	PayloadOnline  = "online"
	PayloadOffline = "offline"
)

// eventPayload is the event message: JSON, or msgpack with the same keys.
type EventPayload struct {
	State    string `json:"state" msgpack:"state"`
	Label    string `json:"label" msgpack:"label"`
	Score    Score  `json:"score" msgpack:"score"`
	Previous string `json:"previous" msgpack:"previous"`
	Frame    uint64 `json:"frame" msgpack:"frame"`
	TS       string `json:"ts" msgpack:"ts"`
	Since    string `json:"since" msgpack:"since"`
	Snapshot string `json:"snapshot,omitempty" msgpack:"snapshot,omitempty"`
}

// wireScore is a score on the wire: written as a float32, read from a
// msgpack float32 or float64 (other publishers write doubles).
type Score float32

func (s *Score) DecodeMsgpack(d *msgpack.Decoder) error {
	v, err := d.DecodeFloat64()
	*s = Score(v)
	return err
}

const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// statsPayload is the stats message: the loop's Stats plus the MQTT
// counters. NaN temperatures become null.
type StatsPayload struct {
	TS          string        `json:"ts" msgpack:"ts"`
	Device      string        `json:"device" msgpack:"device"`
	Model       string        `json:"model" msgpack:"model"`
	Board       string        `json:"board" msgpack:"board"`
	Source      string        `json:"source" msgpack:"source"`
	Kernel      string        `json:"kernel" msgpack:"kernel"`
	Threads     int           `json:"threads" msgpack:"threads"`
	UptimeS     float64       `json:"uptime_s" msgpack:"uptime_s"`
	Frames      uint64        `json:"frames" msgpack:"frames"`
	FPS         float64       `json:"fps" msgpack:"fps"`
	InferFPS    float64       `json:"infer_fps" msgpack:"infer_fps"`
	Dropped     uint64        `json:"dropped" msgpack:"dropped"`
	SinkDropped uint64        `json:"sink_dropped" msgpack:"sink_dropped"`
	Reconnects  uint64        `json:"source_reconnects" msgpack:"source_reconnects"`
	StagesMs    StatsStages   `json:"stages_ms" msgpack:"stages_ms"`
	TempC       *float64      `json:"temp_c" msgpack:"temp_c"`
	Throttled   string        `json:"throttled" msgpack:"throttled"`
	MQTT        StatsCounters `json:"mqtt" msgpack:"mqtt"`
}

type StatsStages struct {
	Capture    StatsStage `json:"capture" msgpack:"capture"`
	Preprocess StatsStage `json:"preprocess" msgpack:"preprocess"`
	Inference  StatsStage `json:"inference" msgpack:"inference"`
	Sinks      StatsStage `json:"sinks" msgpack:"sinks"`
	Latency    StatsStage `json:"latency" msgpack:"latency"`
}

type StatsStage struct {
	Mean float64 `json:"mean" msgpack:"mean"`
	P50  float64 `json:"p50" msgpack:"p50"`
	P99  float64 `json:"p99" msgpack:"p99"`
}

// mqttStatsFields are the MQTT output's own counters.
type StatsCounters struct {
	Published    uint64 `json:"events_published" msgpack:"events_published"`
	Dropped      uint64 `json:"events_dropped" msgpack:"events_dropped"`
	Queued       int    `json:"events_queued" msgpack:"events_queued"`
	StatsSkipped uint64 `json:"stats_skipped" msgpack:"stats_skipped"`
	Connects     uint64 `json:"connects" msgpack:"connects"`
}
