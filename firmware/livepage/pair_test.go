package livepage

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vggedge/vggedge/camera"
)

// seqFrame is a 16x16 grey picture whose level says its frame: the test
// can tell from the JPEG which frame it is.
func seqFrame(seq uint64) *camera.Frame {
	return &camera.Frame{Seq: seq, Format: camera.GRAY8, Width: 16, Height: 16, Data: bytes.Repeat([]byte{seqLevel(seq)}, 256), Label: int(seq % 10)}
}

func seqLevel(seq uint64) byte { return byte(10 + 23*(seq%11)) }

// seqResult is the result of frame seq: its top-1 label is the frame's.
func seqResult(seq uint64) *live.Result {
	l := "frame-" + strconv.FormatUint(seq, 10)
	return &live.Result{Frame: seq, Top: []live.Class{{Index: int(seq % 10), Label: l, Score: 0.75}, {Index: 99, Label: "other", Score: 0.25}},
		Truth: int(seq % 10), TruthLabel: l, LatencyMs: 3}
}

type resultOut struct {
	Frame     uint64         `json:"frame"`
	Top       []classJSONOut `json:"top"`
	Truth     *string        `json:"truth"`
	LatencyMs float64        `json:"latency_ms"`
}

// checkTagged checks a picture served with its tags: it is the frame
// X-Frame names, and X-Result (when want) is that frame's result.
func checkTagged(t *testing.T, what string, h http.Header, body []byte, wantFrame uint64, wantResult bool) {
	t.Helper()
	if got := h.Get("X-Frame"); got != strconv.FormatUint(wantFrame, 10) {
		t.Errorf("%s: X-Frame %q, want %d", what, got, wantFrame)
	}
	img, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if r, _, _, _ := img.At(8, 8).RGBA(); int(r>>8)-int(seqLevel(wantFrame)) > 4 || int(seqLevel(wantFrame))-int(r>>8) > 4 {
		t.Errorf("%s: picture level %d, want frame %d's %d", what, r>>8, wantFrame, seqLevel(wantFrame))
	}
	raw := h.Get("X-Result")
	if !wantResult {
		if raw != "" {
			t.Errorf("%s: X-Result %s, want none (frame %d has no result yet)", what, raw, wantFrame)
		}
		return
	}
	var res resultOut
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("%s: X-Result %q: %v", what, raw, err)
	}
	label := fmt.Sprintf("frame-%d", wantFrame)
	if res.Frame != wantFrame || len(res.Top) != 2 || res.Top[0].Label != label || res.Truth == nil || *res.Truth != label || res.LatencyMs != 3 {
		t.Errorf("%s: X-Result %s, want frame %d's result", what, raw, wantFrame)
	}
}

// TestHTTPSinkServesPictureWithItsResult: whatever the order in which
// pictures and results arrive (results lag, are dropped, name unknown
// frames), /snapshot.jpg is one picture and that picture's own result.
func TestHTTPSinkServesPictureWithItsResult(t *testing.T) {
	cases := []struct {
		name       string
		events     string // P n: ObservePicture(frame n); R n: Write(result of frame n)
		frame      uint64
		withResult bool
	}{
		{"before any result the picture comes bare", "P1", 1, false},
		{"newest picture without result, bare", "P1 P2", 2, false},
		{"result right after its picture", "P1 R1", 1, true},
		{"the newest picture waits for its result", "P1 R1 P2", 1, true},
		{"result one frame late", "P1 P2 R1", 1, true},
		{"late result, then the next", "P1 P2 R1 R2", 2, true},
		{"result two frames late", "P1 P2 P3 R1", 1, true},
		{"a dropped result is skipped", "P1 R1 P2 P3 R3", 3, true},
		{"a result too late for its picture pairs with nothing", "P1 R1 P2 P3 P4 P5 R2", 1, true},
		{"and the next one in time is shown", "P1 R1 P2 P3 P4 P5 R2 R3", 3, true},
		{"a result of an unknown frame", "P1 R1 P2 R7", 1, true},
		{"never back to an older picture", "P1 P2 R2 R1", 2, true},
		{"the shown picture is kept under a flood of pictures", "P1 R1 P2 P3 P4 P5 P6 P7 P8", 1, true},
		{"frame numbers that start again (a reconnect)", "P5 R5 P0 R0", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := startServer(t, "127.0.0.1:0", sampleStats())
			for _, ev := range strings.Fields(c.events) {
				n, err := strconv.ParseUint(ev[1:], 10, 64)
				if err != nil {
					t.Fatalf("bad event %q", ev)
				}
				if ev[0] == 'P' {
					s.ObservePicture(seqFrame(n))
				} else {
					s.Write(seqResult(n))
				}
			}
			resp, body := get(t, s.testURL("/snapshot.jpg"))
			if resp.StatusCode != 200 {
				t.Fatalf("snapshot: %s %q", resp.Status, body)
			}
			checkTagged(t, "snapshot after "+c.events, resp.Header, body, c.frame, c.withResult)
		})
	}
}

// TestHTTPSinkStreamPartsTagged: each part of /stream.mjpg says its length,
// its frame and that frame's result, and the picture is that frame.
func TestHTTPSinkStreamPartsTagged(t *testing.T) {
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	mr, body := streamReader(t, s)
	defer body.Close()
	steps := []struct {
		events     []string
		frame      uint64
		withResult bool
	}{
		{[]string{"P1"}, 1, false},
		{[]string{"R1"}, 1, true},
		{[]string{"P2", "P3", "R2"}, 2, true},
		{[]string{"R3", "P4"}, 3, true},
		{[]string{"P5", "P6", "R6"}, 6, true},
	}
	for _, st := range steps {
		// Each step is fed only after the previous part arrived, and
		// nothing presentable changes until its last event.
		for _, ev := range st.events {
			n, _ := strconv.ParseUint(ev[1:], 10, 64)
			if ev[0] == 'P' {
				s.ObservePicture(seqFrame(n))
			} else {
				s.Write(seqResult(n))
			}
		}
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("after %v: %v", st.events, err)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("part after %v", st.events)
		if cl := part.Header.Get("Content-Length"); cl != strconv.Itoa(len(data)) {
			t.Errorf("%s: Content-Length %q, body %d bytes", what, cl, len(data))
		}
		checkTagged(t, what, http.Header(part.Header), data, st.frame, st.withResult)
	}
}

func TestResultHeader(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	cases := []struct {
		name  string
		label string
		want  string // the label as decoded from the header
	}{
		{"ascii", "tabby cat", "tabby cat"},
		{"accents", "café crème", "café crème"},
		{"CJK", "猫", "猫"},
		{"beyond the BMP", "cat 🐱", "cat 🐱"},
		{"controls and DEL", "a\tb\x7fc\r\nX-Evil: 1", "a\tb\x7fc\r\nX-Evil: 1"},
		{"quotes", `say "hi" \ bye`, `say "hi" \ bye`},
		{"a long label is cut on a character", long, strings.Repeat("é", 126) + "…"},
	}
	for _, c := range cases {
		r := &live.Result{Frame: 9, Top: []live.Class{{Label: c.label, Score: 0.5}}, Truth: 0, TruthLabel: c.label}
		h, err := resultHeader(r)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, b := range h {
			if b < 0x20 || b >= 0x7f {
				t.Errorf("%s: header %q has byte %#x: not printable ASCII", c.name, h, b)
				break
			}
		}
		var got resultOut
		if err := json.Unmarshal(h, &got); err != nil {
			t.Fatalf("%s: %q: %v", c.name, h, err)
		}
		if len(got.Top) != 1 || got.Top[0].Label != c.want || got.Truth == nil || *got.Truth != c.want {
			t.Errorf("%s: header %s decodes to %+v, want label %q", c.name, h, got, c.want)
		}
		if !utf8.ValidString(got.Top[0].Label) || len(got.Top[0].Label) > headerLabelBytes {
			t.Errorf("%s: label of %d bytes, at most %d and valid UTF-8 wanted", c.name, len(got.Top[0].Label), headerLabelBytes)
		}
	}
	// Only the best five classes go in the header.
	r := &live.Result{Frame: 1, Truth: -1}
	for i := range 1000 {
		r.Top = append(r.Top, live.Class{Index: i, Label: strconv.Itoa(i), Score: 0.001})
	}
	h, _ := resultHeader(r)
	var got resultOut
	if err := json.Unmarshal(h, &got); err != nil || len(got.Top) != headerTop || got.Top[0].Label != "0" || got.Truth != nil {
		t.Errorf("1000 classes: %s (%v), want the first %d and no truth", h, err, headerTop)
	}
}
