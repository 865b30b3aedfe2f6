// Package output holds vggedge run's local outputs, each a live.Sink: JSON
// lines (stdout or a file), the msgpack result stream (a file, a TCP or a
// unix-socket listener; the format is firmware/stream's), and a GPIO pin
// driven with hysteresis. File outputs append (a restart continues the
// file, a torn last record is cut off), rotate by size, reopen on SIGHUP
// and recover once a full disk has room again.
//
// Hysteresis is the one rule by which scores become a steady state, for
// the pin and MQTT events alike; its Validate resolves the watched names
// (--when, --mqtt-when, --snapshot-when; NameList flags) into the model's
// labels once, by infer/labels' matching (a label's text, a part of it, an
// ImageNet synonym or WordNet id, any case), so the per-frame path compares
// plain strings and allocates nothing.
//
// It imports firmware/live (the Result and Sink types), firmware/stream,
// infer/labels (label matching) and periph.io for GPIO; not the commands
// (firmware/vggedge), the live page or MQTT.
package output
