package stream

import (
	"encoding/binary"
	"math"
	"time"
)

// Format and Version identify the stream in its header.
const (
	Format  = "vggedge-results"
	Version = 1
)

// Header is the first map of a stream.
type Header struct {
	Format  string
	Version int
	Model   string
	Labels  []string
}

// Class is one entry of a frame's top-k.
type Class struct {
	Label string
	Score float32
}

// Result is one classified frame.
type Result struct {
	Frame     uint64
	Time      time.Time // capture time; encoded as Unix nanoseconds
	Top       []Class   // best first
	LatencyMs float64   // capture to result
	Truth     string    // ground-truth label; "" when unknown (the key is then absent)
}

// AppendHeader appends h as msgpack to dst. Format and Version are written
// as the constants, whatever h says.
func AppendHeader(dst []byte, h *Header) []byte {
	dst = append(dst, 0x84)
	dst = appendStr(dst, "format")
	dst = appendStr(dst, Format)
	dst = appendStr(dst, "version")
	dst = appendUint(dst, Version)
	dst = appendStr(dst, "model")
	dst = appendStr(dst, h.Model)
	dst = appendStr(dst, "labels")
	dst = appendArrayLen(dst, len(h.Labels))
	for _, l := range h.Labels {
		dst = appendStr(dst, l)
	}
	return dst
}

// AppendResult appends r as msgpack to dst. It allocates nothing when dst
// has room, so a writer reusing its buffer encodes frames for free.
func AppendResult(dst []byte, r *Result) []byte {
	n := byte(4)
	if r.Truth != "" {
		n++
	}
	dst = append(dst, 0x80|n)
	dst = appendStr(dst, "frame")
	dst = appendUint(dst, r.Frame)
	dst = appendStr(dst, "ts")
	dst = append(dst, 0xd3)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Time.UnixNano()))
	dst = appendStr(dst, "top")
	dst = appendArrayLen(dst, len(r.Top))
	for i := range r.Top {
		dst = append(dst, 0x82)
		dst = appendStr(dst, "label")
		dst = appendStr(dst, r.Top[i].Label)
		dst = appendStr(dst, "score")
		dst = append(dst, 0xca)
		dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(r.Top[i].Score))
	}
	dst = appendStr(dst, "latency_ms")
	dst = append(dst, 0xcb)
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(r.LatencyMs))
	if r.Truth != "" {
		dst = appendStr(dst, "truth")
		dst = appendStr(dst, r.Truth)
	}
	return dst
}

func appendStr(dst []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = append(dst, 0xda)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0xdb)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	return append(dst, s...)
}

func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

func appendArrayLen(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
}
