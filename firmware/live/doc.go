// Package live is the classification loop of vggedge run: a capture
// goroutine and an inference goroutine handing frames through three
// preallocated buffers, softmax and top-k, per-sink bounded queues (a slow
// output drops results, counted, and never stalls inference), and the
// rolling statistics the live page, /metrics and MQTT report.
//
// It owns the types every output is written against: Result and Class
// (one classified frame), Sink and PictureSink (what an output is), Stats
// and StatsSource (the loop's health). The steady state allocates nothing
// per frame.
//
// It imports camera, infer and boards, and nothing from firmware: the
// outputs (firmware/output, firmware/livepage, firmware/mqtt) import it,
// never the other way round.
package live
