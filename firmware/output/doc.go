// Package output holds vggedge run's local outputs, each a live.Sink: JSON
// lines (stdout or a file), the msgpack result stream (a file, a TCP or a
// unix-socket listener; the format is firmware/stream's), and a GPIO pin
// driven with hysteresis. File outputs append (a restart continues the
// file, a torn last record is cut off), rotate by size, reopen on SIGHUP
// and recover once a full disk has room again.
//
// It imports firmware/live (the Result and Sink types), firmware/stream
// and periph.io for GPIO; not the commands (firmware/vggedge), the live
// page or MQTT.
package output
