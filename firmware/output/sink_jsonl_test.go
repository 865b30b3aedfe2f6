package output

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestJSONLLine(t *testing.T) {
	ts := time.Date(2026, 11, 27, 5, 0, 0, 123_456_789, time.UTC)
	for _, tt := range []struct {
		name string
		r    live.Result
		want string
	}{
		{"the issue's example", live.Result{Frame: 12, Time: ts, Top: []live.Class{{Index: 7, Label: "7", Score: 0.998}, {Index: 1, Label: "1", Score: 0.001}}, LatencyMs: 3.2, Truth: 7, TruthLabel: "7"},
			`{"frame":12,"ts":"2026-11-27T05:00:00.123Z","top":[{"label":"7","score":0.998},{"label":"1","score":0.001}],"latency_ms":3.200,"truth":"7"}` + "\n"},
		{"no truth; time in another zone is written as UTC", live.Result{Frame: 0, Time: ts.In(time.FixedZone("CET", 3600)), Top: []live.Class{{Index: 0, Label: "cat", Score: 1}}, LatencyMs: 0.0004, Truth: -1},
			`{"frame":0,"ts":"2026-11-27T05:00:00.123Z","top":[{"label":"cat","score":1}],"latency_ms":0.000}` + "\n"},
		{"labels that need escaping", live.Result{Frame: 1 << 40, Time: ts, Top: []live.Class{{Index: 0, Label: "a \"b\"\\c\n\t\x01é\xff", Score: 1e-7}}, LatencyMs: 12.3456, Truth: 0, TruthLabel: "</script>"},
			`{"frame":1099511627776,"ts":"2026-11-27T05:00:00.123Z","top":[{"label":"a \"b\"\\c\n\t\u0001é\ufffd","score":1e-07}],"latency_ms":12.346,"truth":"</script>"}` + "\n"},
		{"a file source's frame names its file", live.Result{Frame: 2, Time: ts, File: "shots/7/a \"b\".png", Top: []live.Class{{Index: 7, Label: "7", Score: 1}}, LatencyMs: 1, Truth: 7, TruthLabel: "7"},
			`{"frame":2,"ts":"2026-11-27T05:00:00.123Z","file":"shots/7/a \"b\".png","top":[{"label":"7","score":1}],"latency_ms":1.000,"truth":"7"}` + "\n"},
		{"not finite: null", live.Result{Time: ts, Top: []live.Class{{Index: 0, Label: "x", Score: float32(math.NaN())}}, LatencyMs: math.Inf(1), Truth: -1},
			`{"frame":0,"ts":"2026-11-27T05:00:00.123Z","top":[{"label":"x","score":null}],"latency_ms":null}` + "\n"},
	} {
		got := string(appendResultJSON(nil, &tt.r))
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Errorf("%s: not JSON: %v", tt.name, err)
		}
	}
}

// appendJSONString agrees with encoding/json on every string that
// round-trips (encoding/json also escapes <, > and &, which JSON does not
// require; compare decoded values).
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `"q"`, `\`, "\x00\x1f\x7f", "ümlaut 日本", "\u2028", "bad \xc3\x28 utf8", "<&>"} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	}
}

func TestJSONLSinkFileAndAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := CreateJSONL(path, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	r := live.Result{Frame: 3, Time: time.Now(), File: "data/3/a.png", Top: []live.Class{{Index: 3, Label: "3", Score: 0.5}, {Index: 5, Label: "5", Score: 0.25}}, LatencyMs: 1, Truth: 3, TruthLabel: "3"}
	if n := testing.AllocsPerRun(1000, func() { r.Frame++; s.Write(&r) }); n != 0 {
		t.Errorf("jsonl Write: %v allocs per result, want 0", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := parseJSONLines(t, string(data))
	if len(lines) != 1001 || *lines[1000].Frame != 1004 || bytes.Count(data, []byte("\n")) != 1001 {
		t.Errorf("%d lines, last frame %d", len(lines), *lines[len(lines)-1].Frame)
	}
	if f := lines[0].File; f == nil || *f != "data/3/a.png" {
		t.Errorf("file %v, want data/3/a.png", f)
	}
	if _, err := CreateJSONL(filepath.Join(t.TempDir(), "no", "such", "dir.jsonl"), t.Logf); err == nil {
		t.Error("no error for a path in a missing directory")
	}
}
