package output

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"unicode/utf8"
)

// JSONL writes one JSON object per result and line:
//
//	{"frame":12,"ts":"2026-11-27T05:00:00.123Z","top":[{"label":"7","score":0.998}],"latency_ms":3.2,"truth":"7"}
//
// A frame from a file (run --source file://…) also has "file":"PATH" after
// "ts".
//
// Lines are built with strconv.Append* into a reused buffer (no
// encoding/json, which allocates per value) and written through a bufio
// buffer that the sink queue flushes whenever it runs dry.
type JSONL struct {
	w      *bufio.Writer
	out    io.Writer // what w writes to
	closer io.Closer // nil for stdout
	line   []byte

	// A failed write (a full disk) drops what is buffered instead of
	// sticking (bufio.Writer keeps its first error for good): the lines
	// since the last good flush are counted in lost, a file is cut back
	// to where they began, and writing resumes once the cause goes away.
	file    sinkFile // nil for stdout
	pending uint64   // lines buffered or written since the last good flush
	good    int64    // the file's size after the last good flush
	lost    atomic.Uint64
	failing bool // since a failed write, until a flush succeeds

	// A file sink (jsonl:PATH) reopens its path on request (SIGHUP, after
	// logrotate moved the file), on its own goroutine at the next write.
	path   string
	logf   func(string, ...any)
	reopen atomic.Bool
	rot    Rotation
}

// RequestReopen asks a file sink to reopen its path before its next
// write; for stdout it does nothing.
// SetRotation makes the file rotate as r says (see SplitRotation); call it
// before the first Write.
func (s *JSONL) SetRotation(r Rotation) { s.rot = r }

func (s *JSONL) RequestReopen() {
	if s.path != "" {
		s.reopen.Store(true)
	}
}

// reopenFile flushes and closes the file and opens path again (for
// append): after a rotation, results go to the new file. If the path
// cannot be opened the old file is kept, and the reason logged.
func (s *JSONL) reopenFile() {
	s.reopen.Store(false)
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		err = cutTornLine(f, s.logf)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		s.logf("output jsonl:%s: reopen: %v; still writing to the file opened before", s.path, err)
		return
	}
	if err := s.w.Flush(); err != nil {
		s.failed(0) // counted, and the old file cut back to whole lines
		s.logf("output jsonl:%s: flush before reopening: %v", s.path, err)
	}
	s.closer.Close()
	s.closer, s.out, s.file = f, f, f
	s.w.Reset(f)
	s.markGood()
}

// NewJSONL writes to w; closer, when not nil, is closed by Close
// after the final flush.
func NewJSONL(w io.Writer, closer io.Closer) *JSONL {
	return &JSONL{w: bufio.NewWriterSize(w, 64<<10), out: w, closer: closer, line: make([]byte, 0, 1024)}
}

// sinkFile is what a file output needs of its file (*os.File; a test's
// disk that fills up).
type sinkFile interface {
	io.Writer
	io.Closer
	Seek(offset int64, whence int) (int64, error)
	Truncate(size int64) error
}

// Dropped counts lines lost to failed writes (the loop adds it to
// Stats.SinkDropped, which /metrics shows).
func (s *JSONL) Dropped() uint64 { return s.lost.Load() }

// markGood notes that everything so far is in the file.
func (s *JSONL) markGood() {
	s.pending = 0
	if s.file != nil {
		if off, err := s.file.Seek(0, io.SeekCurrent); err == nil {
			s.good = off
		}
	}
}

// failed drops the buffered lines after a write error and counts them
// (plus extra, the line being written), cutting a file back to its last
// good size so that no half line stays in it.
func (s *JSONL) failed(extra uint64) {
	s.failing = true
	s.lost.Add(s.pending + extra)
	s.pending = 0
	s.w.Reset(s.out)
	if s.file != nil {
		s.file.Truncate(s.good)
	}
}

// CreateJSONL opens the file at path for append (creating it): a
// restart continues the results, it never truncates them. A torn last
// line (no newline: the previous run was killed mid-write) is cut off, so
// every line of the file stays one whole JSON object.
func CreateJSONL(path string, logf func(string, ...any)) (*JSONL, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("output jsonl:%s: %w", path, err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := cutTornLine(f, logf); err != nil {
		f.Close()
		return nil, fmt.Errorf("output jsonl:%s: %w", path, err)
	}
	s := NewJSONL(f, f)
	s.path, s.logf, s.file = path, logf, f
	s.markGood()
	return s, nil
}

// cutTornLine truncates a regular file after its last newline when it
// does not end with one. A line longer than what it looks back over is
// ended with a newline instead (nothing is cut that might be data).
func cutTornLine(f *os.File, logf func(string, ...any)) error {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return err
	}
	const back = 64 << 10 // far beyond any line vggedge writes
	n := min(fi.Size(), back)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, fi.Size()-n); err != nil {
		return err
	}
	if tail[n-1] == '\n' {
		return nil
	}
	i := bytes.LastIndexByte(tail, '\n')
	if i < 0 && fi.Size() > back {
		_, err := f.Write([]byte{'\n'})
		return err
	}
	keep := fi.Size() - n + int64(i) + 1
	if err := f.Truncate(keep); err != nil {
		return fmt.Errorf("cut off the torn last line: %w", err)
	}
	if logf != nil {
		logf("output jsonl:%s: cut off a torn last line (%d bytes, left by an unclean stop)", f.Name(), fi.Size()-keep)
	}
	return nil
}

func (s *JSONL) Write(r *live.Result) error {
	if s.reopen.Load() {
		s.reopenFile()
	}
	s.line = appendResultJSON(s.line[:0], r)
	if _, err := s.w.Write(s.line); err != nil {
		s.failed(1)
		return err
	}
	s.pending++
	return nil
}

func (s *JSONL) Flush() error {
	if err := s.w.Flush(); err != nil {
		s.failed(0)
		return err
	}
	s.markGood()
	if s.failing && s.logf != nil {
		s.logf("output jsonl:%s: writing again (%d lines lost so far)", s.path, s.lost.Load())
	}
	s.failing = false
	if s.rot.maxBytes > 0 && s.good >= s.rot.maxBytes {
		if err := shiftFiles(s.path, s.rot.keep); err != nil {
			s.logf("output jsonl:%s: rotate: %v; going on in the same file", s.path, err)
		} else {
			s.reopenFile() // a new, empty PATH
		}
	}
	return nil
}

func (s *JSONL) Close() error {
	err := s.w.Flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// appendResultJSON appends r as one JSON line (with its newline).
func appendResultJSON(b []byte, r *live.Result) []byte {
	b = append(b, `{"frame":`...)
	b = strconv.AppendUint(b, r.Frame, 10)
	b = append(b, `,"ts":"`...)
	b = r.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, '"')
	if r.File != "" {
		b = append(b, `,"file":`...)
		b = appendJSONString(b, r.File)
	}
	b = append(b, `,"top":[`...)
	for i, c := range r.Top {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"label":`...)
		b = appendJSONString(b, c.Label)
		b = append(b, `,"score":`...)
		b = appendJSONFloat(b, float64(c.Score), -1, 32)
		b = append(b, '}')
	}
	b = append(b, `],"latency_ms":`...)
	b = appendJSONFloat(b, r.LatencyMs, 3, 64)
	if r.Truth >= 0 {
		b = append(b, `,"truth":`...)
		b = appendJSONString(b, r.TruthLabel)
	}
	return append(b, "}\n"...)
}

// appendJSONFloat writes v with prec decimals (-1: the shortest form that
// reads back as the same bitSize float); JSON has no NaN or infinity, so
// those become null.
func appendJSONFloat(b []byte, v float64, prec, bitSize int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	if prec < 0 {
		return strconv.AppendFloat(b, v, 'g', -1, bitSize)
	}
	return strconv.AppendFloat(b, v, 'f', prec, bitSize)
}

// appendJSONString writes s as a JSON string (RFC 8259 §7): quote,
// backslash and control characters escaped, invalid UTF-8 replaced by
// U+FFFD, everything else as is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
