// Package livepage serves vggedge run's live page (--http): the page
// itself, the camera picture as an MJPEG stream and as /snapshot.jpg,
// /api/status (the newest result and the loop's health, as JSON) and
// Prometheus /metrics. It is a live.PictureSink: the loop hands it each
// frame (copied, encoded only when someone is watching) and each result.
// It pairs the two (pair.go), and every picture it serves carries its
// frame number and that frame's result, so the page never shows one
// frame's picture with another's result.
//
// It binds to loopback unless an interface is named, refuses Host
// headers that are not this machine's (DNS rebinding), and bounds every
// request: read timeout, header size, connection count.
//
// It imports firmware/live and camera; not the commands
// (firmware/vggedge), the outputs or MQTT.
package livepage
