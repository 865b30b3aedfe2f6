package stream

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func sampleStream(t testing.TB, results []Result) []byte {
	t.Helper()
	b := AppendHeader(nil, &Header{Model: "digits", Labels: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}})
	for i := range results {
		b = AppendResult(b, &results[i])
	}
	return b
}

var sampleResults = []Result{
	{Frame: 0, Time: time.Date(2026, 11, 27, 5, 0, 0, 123_000_000, time.UTC), Top: []Class{{"7", 0.998}, {"1", 0.001}}, LatencyMs: 3.2, Truth: "7"},
	{Frame: 200, Time: time.Date(2026, 11, 27, 5, 0, 1, 0, time.UTC), Top: []Class{{"3", 0.5}}, LatencyMs: 0.25},
	{Frame: 1 << 40, Time: time.Unix(0, 0).UTC(), Top: []Class{}, LatencyMs: 0},
	{Frame: 70000, Time: time.Date(1999, 1, 1, 0, 0, 0, 1, time.UTC), Top: []Class{{strings.Repeat("x", 40), 1}, {strings.Repeat("é", 200), 0}, {strings.Repeat("y", 70000%MaxString), 0.25}}, LatencyMs: 1e6, Truth: strings.Repeat("t", 300)},
}

func TestRoundTrip(t *testing.T) {
	data := sampleStream(t, sampleResults)
	r := NewReader(bytes.NewReader(data))
	for i, want := range sampleResults {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
		if got.Frame != want.Frame || !got.Time.Equal(want.Time) || got.LatencyMs != want.LatencyMs || got.Truth != want.Truth || len(got.Top) != len(want.Top) {
			t.Fatalf("result %d: got %+v, want %+v", i, got, want)
		}
		for j := range want.Top {
			if got.Top[j] != want.Top[j] {
				t.Errorf("result %d top %d: got %+v, want %+v", i, j, got.Top[j], want.Top[j])
			}
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last result: %v, want io.EOF", err)
	}
	h := r.Header()
	if h == nil || h.Model != "digits" || len(h.Labels) != 10 || h.Labels[7] != "7" || h.Version != Version || h.Format != Format {
		t.Errorf("header %+v", h)
	}
}

// The stream must be ordinary msgpack: an independent decoder reads the
// same maps and keys (the msgpack spec, github.com/msgpack/msgpack).
func TestIndependentDecoder(t *testing.T) {
	data := sampleStream(t, sampleResults[:2])
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	var hdr map[string]any
	if err := dec.Decode(&hdr); err != nil {
		t.Fatal(err)
	}
	if hdr["format"] != Format || hdr["model"] != "digits" {
		t.Errorf("header via msgpack/v5: %v", hdr)
	}
	var fr map[string]any
	if err := dec.Decode(&fr); err != nil {
		t.Fatal(err)
	}
	if ts, ok := fr["ts"].(int64); !ok || ts != sampleResults[0].Time.UnixNano() {
		t.Errorf("ts = %#v, want int64 %d", fr["ts"], sampleResults[0].Time.UnixNano())
	}
	top, _ := fr["top"].([]any)
	if len(top) != 2 {
		t.Fatalf("top = %#v", fr["top"])
	}
	first, _ := top[0].(map[string]any)
	if first["label"] != "7" || first["score"] != float32(0.998) || fr["truth"] != "7" || fr["latency_ms"] != 3.2 {
		t.Errorf("frame via msgpack/v5: %v", fr)
	}
	if err := dec.Decode(&fr); err != nil {
		t.Fatal(err)
	}
	if _, has := fr["truth"]; has {
		t.Errorf("truth present for a frame without ground truth: %v", fr)
	}
}

// A writer's reconnection sends the header again; unknown keys are skipped.
func TestSecondHeaderAndUnknownKeys(t *testing.T) {
	var b []byte
	b = AppendHeader(b, &Header{Model: "a"})
	b = AppendResult(b, &sampleResults[1])
	b = AppendHeader(b, &Header{Model: "b", Labels: []string{"x"}})
	// A frame map with an extra key holding nested values of many types.
	extra, err := msgpack.Marshal(map[string]any{
		"frame": 5, "ts": int64(42), "top": []any{map[string]any{"label": "x", "score": 0.5, "rank": 1}},
		"future": map[string]any{"a": []any{1, "s", nil, true, 1.5, []byte{1, 2}, map[string]any{}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, extra...)
	r := NewReader(bytes.NewReader(b))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Header().Model != "a" {
		t.Fatalf("model %q", r.Header().Model)
	}
	got, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if r.Header().Model != "b" || got.Frame != 5 || got.Time.UnixNano() != 42 || len(got.Top) != 1 || got.Top[0].Label != "x" || got.Top[0].Score != 0.5 {
		t.Errorf("after second header: model %q, result %+v", r.Header().Model, got)
	}
}

func TestReaderErrors(t *testing.T) {
	good := sampleStream(t, sampleResults[:1])
	hdrLen := len(AppendHeader(nil, &Header{Model: "digits", Labels: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}}))
	frame := func(m map[string]any) []byte {
		b, err := msgpack.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return append(append([]byte{}, good[:hdrLen]...), b...)
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"no header", AppendResult(nil, &sampleResults[0]), "want the header map"},
		{"wrong format", mustMarshal(t, map[string]any{"format": "other", "version": 1}), `format "other"`},
		{"newer version", mustMarshal(t, map[string]any{"format": Format, "version": 2}), "version 2 not supported"},
		{"missing version", mustMarshal(t, map[string]any{"format": Format}), "version 0 not supported"},
		{"not a map", []byte{0x93, 1, 2, 3}, "want a map: got an array"},
		{"frame not uint", frame(map[string]any{"frame": "x", "ts": 1, "top": []any{}}), `"frame": want an unsigned integer, got a string`},
		{"negative frame", frame(map[string]any{"frame": -1, "ts": 1, "top": []any{}}), "negative integer"},
		{"missing top", frame(map[string]any{"frame": 1, "ts": 1}), "missing one of the keys"},
		// Hostile lengths: a 4-GiB string, a 4-billion-label header, a
		// 4-billion-entry top-k, all in a handful of bytes.
		{"huge string", append(append([]byte{}, good[:hdrLen]...), 0x81, 0xdb, 0xff, 0xff, 0xff, 0xff), "string of 4294967295 bytes (limit 4096)"},
		{"huge labels", []byte{0x81, 0xa6, 'l', 'a', 'b', 'e', 'l', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, "array of 4294967295 strings (limit 65536)"},
		{"huge top", append(append([]byte{}, good[:hdrLen]...), 0x81, 0xa3, 't', 'o', 'p', 0xdd, 0x7f, 0xff, 0xff, 0xff), "top-k of 2147483647 entries"},
		{"deep nesting", append(append([]byte{}, good[:hdrLen]...), append([]byte{0x81, 0xa1, 'z'}, bytes.Repeat([]byte{0x91}, 100)...)...), "nested deeper than 32"},
		{"invalid byte", append(append([]byte{}, good[:hdrLen]...), 0x81, 0xa1, 'z', 0xc1), "invalid msgpack byte 0xc1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.data))
			var err error
			for err == nil {
				_, err = r.Next()
			}
			if err == io.EOF || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A stream whose writer was killed mid-record (SIGKILL, power cut) or
// whose connection was cut: the reader returns every complete result, then
// io.EOF, and says the tail was torn and where the complete part ends.
func TestTornTail(t *testing.T) {
	full := sampleStream(t, sampleResults)
	hdrLen := len(AppendHeader(nil, &Header{Model: "digits", Labels: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}}))
	ends := []int{hdrLen} // where each complete map ends
	for i := range sampleResults {
		ends = append(ends, ends[i]+len(AppendResult(nil, &sampleResults[i])))
	}
	for n := 0; n <= len(full); n++ {
		r := NewReader(bytes.NewReader(full[:n]))
		var got []Result
		var err error
		for {
			var res Result
			if res, err = r.Next(); err != nil {
				break
			}
			got = append(got, res)
		}
		if err != io.EOF {
			t.Fatalf("%d of %d bytes: %v, want io.EOF after the complete results", n, len(full), err)
		}
		complete, end := 0, 0 // results complete in the prefix, and where they end
		for i, e := range ends {
			if e <= n {
				complete, end = i, e
			}
		}
		if len(got) != complete || r.Offset() != int64(end) || r.Torn() != (n != end) {
			t.Fatalf("%d of %d bytes: %d results, offset %d, torn %t; want %d, %d, %t", n, len(full), len(got), r.Offset(), r.Torn(), complete, end, n != end)
		}
		for i := range got {
			if got[i].Frame != sampleResults[i].Frame {
				t.Fatalf("%d bytes: result %d is frame %d, want %d", n, i, got[i].Frame, sampleResults[i].Frame)
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("%d bytes: Next after the end: %v", n, err)
		}
	}
	// A hostile length at the end is a torn tail too, and costs nothing.
	r := NewReader(bytes.NewReader(append(full[:hdrLen:hdrLen], 0xdf, 0xff, 0xff, 0xff, 0xff)))
	if _, err := r.Next(); err != io.EOF || !r.Torn() || r.Offset() != int64(hdrLen) {
		t.Errorf("huge map at the end: %v, torn %t, offset %d", err, r.Torn(), r.Offset())
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendResultAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	r := sampleResults[0]
	if n := testing.AllocsPerRun(100, func() { buf = AppendResult(buf[:0], &r) }); n != 0 {
		t.Errorf("AppendResult: %v allocs per call, want 0", n)
	}
}

// Every prefix of a valid stream decodes to some results and then an
// error or EOF — never a panic.
func TestEveryPrefix(t *testing.T) {
	data := sampleStream(t, sampleResults)
	for n := range len(data) {
		r := NewReader(bytes.NewReader(data[:n]))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add(sampleStream(f, sampleResults))
	f.Add(sampleStream(f, nil))
	f.Add([]byte{0x81, 0xa3, 't', 'o', 'p', 0xdd, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for range 1000 {
			res, err := r.Next()
			if err != nil {
				return
			}
			if len(res.Top) > MaxTop || r.Header() == nil {
				t.Fatalf("result with %d entries, header %v", len(res.Top), r.Header())
			}
		}
	})
}
