// Package stream is the msgpack results stream `vggedge run --output
// msgpack:…` writes, and a Reader for it. It is a separate, importable
// package so that other Go programs can consume the stream without vggedge.
//
// # Format (version 1)
//
// A stream is a sequence of msgpack maps (https://github.com/msgpack/msgpack/blob/master/spec.md),
// with string keys, back to back with no framing:
//
//  1. One header map:
//
//     {"format": "vggedge-results", "version": 1, "model": "digits", "labels": ["0", "1", …]}
//
//  2. Then one map per classified frame, with the same keys as the JSON
//     lines of `--output jsonl`:
//
//     {"frame": 12, "ts": 1795755600123000000, "top": [{"label": "7", "score": 0.998}, …],
//     "latency_ms": 3.2, "truth": "7"}
//
// "frame" is the source's frame sequence number (uint). "ts" is the capture
// time as int64 nanoseconds since the Unix epoch, UTC — chosen over the
// msgpack timestamp extension because every msgpack library reads a plain
// integer. "top" is the top-k, best first; "score" is a float32 softmax
// probability. "latency_ms" (float64) is capture to result. "truth" is
// present only when the source knows the frame's ground-truth label.
//
// Readers must skip keys they do not know (later minor additions), and
// reject a header whose format is not "vggedge-results" or whose version
// is not one they know.
//
// A header map may appear again later in the stream: a TCP or unix-socket
// writer sends a fresh header on every (re)connection, so a concatenation
// of connections is still a valid stream. The Reader takes the newest
// header.
//
// # Transport
//
// A file (`msgpack:PATH`) is opened for append, never truncated: a new
// file starts with the header; a restarted vggedge continues an existing
// stream after its last complete map — a torn last record left by a
// SIGKILL or power cut is cut off first — and writes a fresh header only
// when its model or labels differ from the stream's newest header. A file
// that is not a results stream is refused. With `?rotate=SIZE&keep=N` the
// file is renamed PATH.1 (older ones shifted, N kept) at the first flush
// past SIZE and a new one starts with its header: each file is a whole
// stream. It is appended to live, so
// `tail -c +1 -f` works; it is never renamed into place. A TCP
// (`msgpack:tcp:HOST:PORT`) or unix socket (`msgpack:unix:PATH`) output
// connects out, and while the peer is away results are dropped (counted),
// not buffered.
//
// # Reading
//
// NewReader decodes a stream from any io.Reader. A stream that ends inside
// a map (its writer was killed mid-write, a connection was cut) ends at
// the last complete result: Next returns io.EOF, Torn reports the torn
// tail and Offset where the complete part ends. It bounds every length
// prefix (strings, arrays, maps, nesting) and never allocates from a
// length before the bytes exist, so hostile input yields an error, not an
// out-of-memory crash.
package stream
