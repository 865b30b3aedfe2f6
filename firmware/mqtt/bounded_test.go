package mqtt

import (
	"bytes"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// checkMsgpack accepts what the publisher writes and rejects lengths that
// run past the end.
func TestCheckMsgpack(t *testing.T) {
	ev, _ := msgpack.Marshal(eventPayloadOf(&labelEvent{State: "appeared", Label: "cat", Score: 0.5, Time: time.Now(), Since: time.Now()}, "snap.jpg"))
	st, _ := msgpack.Marshal(&StatsPayload{Model: "digits", FPS: 3})
	mixed, _ := msgpack.Marshal(map[string]any{"a": []any{1, -1, 1.5, float32(2), "x", []byte{1}, nil, true, map[string]any{"b": int64(1) << 40}}})
	for _, b := range [][]byte{ev, st, mixed} {
		if err := checkMsgpack(b); err != nil {
			t.Errorf("%x: %v", b, err)
		}
	}
	for _, b := range [][]byte{{0xdf, 0xff, 0xff, 0xff, 0xff}, []byte("\x81\xa1a\xdb\x7f\xff\xff\xff"), {0x91}, {0xc1}, {0x81, 0xa1, 'a', 0xc9, 0, 0, 0, 9, 1}, append(bytes.Repeat([]byte{0x91}, 40), 0)} {
		if err := checkMsgpack(b); err == nil {
			t.Errorf("%x accepted", b)
		}
	}
}

// Whatever checkMsgpack accepts, the msgpack library reads to its end.
func FuzzCheckMsgpack(f *testing.F) {
	ev, _ := msgpack.Marshal(eventPayloadOf(&labelEvent{State: "changed", Label: "7", Previous: "1", Score: 0.9}, ""))
	f.Add(ev)
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte("\x81\xa500\xdb\xdb\xdb\xdb\xdb0000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkMsgpack(b) != nil {
			return
		}
		r := bytes.NewReader(b)
		if err := msgpack.NewDecoder(r).Skip(); err != nil {
			t.Fatalf("%x accepted by checkMsgpack, but Skip: %v", b, err)
		}
		if r.Len() != 0 {
			t.Fatalf("%x: bytes left after the value", b)
		}
	})
}
