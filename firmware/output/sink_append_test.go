package output

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vggedge/vggedge/firmware/stream"
)

func appendTestResult(frame uint64) *live.Result {
	return &live.Result{Frame: frame, Time: time.Unix(1795755600, int64(frame)*1e6), Top: []live.Class{{Index: 7, Label: "7", Score: 0.9}, {Index: 1, Label: "1", Score: 0.05}}, LatencyMs: 2, Truth: -1}
}

// jsonl:PATH appends: a second run continues the file, and a torn last
// line (the previous run killed mid-write) is cut off, so every line is
// one whole object and every earlier complete line is kept.
func TestJSONLAppendCutsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	write := func(from, to uint64) {
		t.Helper()
		s, err := CreateJSONL(path, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		for f := from; f < to; f++ {
			s.Write(appendTestResult(f))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 3)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"frame":3,"ts":"2026-`) // the torn line
	f.Close()
	lg := &syncLog{}
	s, err := CreateJSONL(path, lg.logf)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(appendTestResult(10))
	s.Close()
	if !strings.Contains(lg.String(), "cut off a torn last line (22 bytes") {
		t.Errorf("log %q, want the torn line named", lg)
	}
	write(11, 12)
	data, _ := os.ReadFile(path)
	var frames []uint64
	for _, l := range parseJSONLines(t, string(data)) {
		frames = append(frames, *l.Frame)
	}
	if jsonString(frames) != "[0,1,2,10,11]" {
		t.Errorf("frames %v, want 0 1 2 10 11", frames)
	}
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

func readStream(t *testing.T, path string) (frames []uint64, hdr *stream.Header, torn bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := stream.NewReader(f)
	for {
		res, err := r.Next()
		if err == io.EOF {
			return frames, r.Header(), r.Torn()
		}
		if err != nil {
			t.Fatalf("%s after %d results: %v", path, len(frames), err)
		}
		frames = append(frames, res.Frame)
	}
}

// msgpack:PATH appends: the header once, an existing stream continued
// after a torn last record is cut off, a fresh header only for another
// model, and a file that is not a stream refused, not overwritten.
func TestMsgpackFileAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.msgpack")
	labels := []string{"0", "1", "7"}
	write := func(model string, from, to uint64) *syncLog {
		t.Helper()
		lg := &syncLog{}
		s, err := OpenMsgpack(path, NewMsgpackEncoder(model, labels, 2), lg.logf)
		if err != nil {
			t.Fatal(err)
		}
		for f := from; f < to; f++ {
			s.Write(appendTestResult(f))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return lg
	}
	write("digits", 0, 3)
	enc := NewMsgpackEncoder("digits", labels, 2)
	torn := enc.encode(appendTestResult(3))
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(torn[:len(torn)-5])
	f.Close()
	if frames, _, wasTorn := readStream(t, path); len(frames) != 3 || !wasTorn {
		t.Fatalf("before the restart: frames %v, torn %t; want 3 frames and a torn tail", frames, wasTorn)
	}
	if lg := write("digits", 10, 12); !strings.Contains(lg.String(), "cut off a torn last record") {
		t.Errorf("log %q, want the torn record named", lg)
	}
	data, _ := os.ReadFile(path)
	if n := bytes.Count(data, []byte(stream.Format)); n != 1 {
		t.Errorf("%d headers after continuing the same model's stream, want 1", n)
	}
	write("digits-v2", 20, 21)
	frames, hdr, wasTorn := readStream(t, path)
	if jsonString(frames) != "[0,1,2,10,11,20]" || wasTorn || hdr.Model != "digits-v2" {
		t.Errorf("frames %v, torn %t, header %+v; want 0 1 2 10 11 20, whole, model digits-v2", frames, wasTorn, hdr)
	}

	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(other, []byte("not a stream\n"), 0o644)
	_, err := OpenMsgpack(other, enc, t.Logf)
	if err == nil || !strings.Contains(err.Error(), "move it away") || strings.Contains(err.Error(), "\n") {
		t.Errorf("a non-stream file: %v, want a one-line refusal", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "not a stream\n" {
		t.Errorf("the refused file was changed: %q", b)
	}
	if s, err := OpenMsgpack(os.DevNull, enc, t.Logf); err != nil {
		t.Errorf("%s: %v", os.DevNull, err)
	} else {
		s.Close()
	}
}

// fullDisk is a file on a disk that can fill up: while full, a write
// stores what fits and fails with ENOSPC.
type fullDisk struct {
	data  []byte
	limit int // bytes the disk holds; 0: no limit
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if d.limit > 0 && len(d.data)+len(p) > d.limit {
		n := max(0, d.limit-len(d.data))
		d.data = append(d.data, p[:n]...)
		return n, syscall.ENOSPC
	}
	d.data = append(d.data, p...)
	return len(p), nil
}
func (d *fullDisk) Close() error                   { return nil }
func (d *fullDisk) Seek(int64, int) (int64, error) { return int64(len(d.data)), nil }
func (d *fullDisk) Truncate(n int64) error         { d.data = d.data[:n]; return nil }
func (d *fullDisk) lines(t *testing.T) []jsonLine  { return parseJSONLines(t, string(d.data)) }
func (d *fullDisk) String() string                 { return string(d.data) }
func (d *fullDisk) fill()                          { d.limit = len(d.data) + 100 }
func (d *fullDisk) free()                          { d.limit = 0 }

// A full disk, then freed: jsonl writes again (bufio's sticky error used
// to stop it for good), the file holds only whole lines, and every line
// lost meanwhile is counted (Dropped, which /metrics shows as
// sink_dropped).
func TestJSONLFullDiskRecovers(t *testing.T) {
	d := &fullDisk{}
	lg := &syncLog{}
	s := NewJSONL(d, d)
	s.path, s.logf, s.file = "test.jsonl", lg.logf, d
	write := func(from, to uint64) (errs int) {
		for f := from; f < to; f++ {
			if s.Write(appendTestResult(f)) != nil {
				errs++
			}
			if f%10 == 9 && s.Flush() != nil { // the queue flushes when it runs dry
				errs++
			}
		}
		return errs
	}
	write(0, 50)
	d.fill()
	if errs := write(50, 100); errs == 0 {
		t.Fatal("no error from a full disk")
	}
	d.free()
	write(100, 150)
	if err := s.Flush(); err != nil {
		t.Fatalf("after the disk was freed: %v", err)
	}
	lines := d.lines(t) // whole lines only, or this fails
	got := uint64(len(lines))
	if got+s.Dropped() != 150 || s.Dropped() == 0 {
		t.Errorf("%d lines in the file + %d counted lost != 150 written", got, s.Dropped())
	}
	if *lines[len(lines)-1].Frame != 149 || *lines[49].Frame != 49 {
		t.Errorf("lines %d..%d: want the first 50 and the last ones after the disk was freed", *lines[0].Frame, *lines[len(lines)-1].Frame)
	}
	if !strings.Contains(lg.String(), "writing again") {
		t.Errorf("no recovery in the log:\n%s", lg)
	}
	t.Logf("150 results: %d in the file, %d lost while the disk was full; log:\n%s", got, s.Dropped(), lg)
}
