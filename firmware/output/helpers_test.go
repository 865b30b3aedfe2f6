package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test helpers shared by this package's tests (the main package has its
// own copies: test helpers cannot be shared across packages).

// jsonLine is one line of --output jsonl.
type jsonLine struct {
	Frame *uint64 `json:"frame"`
	TS    string  `json:"ts"`
	Top   []struct {
		Label string   `json:"label"`
		Score *float64 `json:"score"`
	} `json:"top"`
	LatencyMs *float64 `json:"latency_ms"`
	Truth     *string  `json:"truth"`
	File      *string  `json:"file"` // file sources only
}

// parseJSONLines parses every line strictly (unknown keys are errors) and
// checks the fields every line must have.
func parseJSONLines(t *testing.T, out string) []jsonLine {
	t.Helper()
	if out != "" && !strings.HasSuffix(out, "\n") {
		t.Errorf("output does not end with a complete line: …%q", out[max(0, len(out)-80):])
	}
	var lines []jsonLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var l jsonLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %d %q: %v", len(lines)+1, sc.Text(), err)
		}
		if l.Frame == nil || l.LatencyMs == nil || len(l.Top) == 0 {
			t.Fatalf("line %d %q: frame, top or latency_ms missing", len(lines)+1, sc.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, l.TS); err != nil {
			t.Fatalf("line %d: ts %q: %v", len(lines)+1, l.TS, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// syncLog collects log lines from any goroutine.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
