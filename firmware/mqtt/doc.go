// Package mqtt is vggedge's MQTT side: the publisher vggedge run uses
// (availability with a last will, on-change label events with hysteresis
// and dwell, periodic stats, Home Assistant discovery, event snapshots),
// and the one definition of what goes over the wire — the topics
// (TopicRoot/<device>/<kind>), the payload types (EventPayload,
// StatsPayload) in JSON or msgpack, the broker URL rules
// (ParseBrokerURL, RedactURL) and a bounded decoder (Unmarshal) for
// payloads from a broker nobody vouches for. vggedge fleet decodes with
// these same types, so the two cannot drift apart.
//
// It imports firmware/live (Result, Stats), firmware/output (label lists
// in errors), camera (snapshot frames) and the paho client; not the
// commands (firmware/vggedge) or the live page. mqtttest, for tests only,
// runs a real broker in-process.
package mqtt
