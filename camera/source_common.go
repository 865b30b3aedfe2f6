package camera

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sourceQuery is the "?key=value&…" tail of a source URI, checked against
// the keys that source knows so a typo fails instead of being ignored.
type sourceQuery struct {
	scheme string
	vals   url.Values
}

// splitSourceQuery cuts rest into its path and query. A '?' only starts a
// query when what follows it has a '=', so globs such as "img?.jpg" stay
// paths.
func splitSourceQuery(scheme, rest string, known ...string) (string, sourceQuery, error) {
	q := sourceQuery{scheme: scheme, vals: url.Values{}}
	i := strings.LastIndexByte(rest, '?')
	if i < 0 || !strings.Contains(rest[i+1:], "=") {
		return rest, q, nil
	}
	vals, err := url.ParseQuery(rest[i+1:])
	if err != nil {
		return "", q, fmt.Errorf("query %q: %w", rest[i+1:], err)
	}
	for k := range vals {
		if !slices.Contains(known, k) {
			return "", q, fmt.Errorf("unknown query key %q (%s: takes %s)", k, scheme, strings.Join(known, ", "))
		}
		if len(vals[k]) > 1 {
			return "", q, fmt.Errorf("query key %q given %d times", k, len(vals[k]))
		}
	}
	q.vals = vals
	return rest[:i], q, nil
}

func (q sourceQuery) has(key string) bool { return q.vals.Has(key) }

// int returns key as an integer in [lo, hi], or def when absent.
func (q sourceQuery) int(key string, def, lo, hi int) (int, error) {
	if !q.vals.Has(key) {
		return def, nil
	}
	s := q.vals.Get(key)
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("query %s=%q: want an integer from %d to %d", key, s, lo, hi)
	}
	return v, nil
}

// float returns key as a number in [lo, hi], or def when absent.
func (q sourceQuery) float(key string, def, lo, hi float64) (float64, error) {
	if !q.vals.Has(key) {
		return def, nil
	}
	s := q.vals.Get(key)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v >= lo && v <= hi) {
		return 0, fmt.Errorf("query %s=%q: want a number from %g to %g", key, s, lo, hi)
	}
	return v, nil
}

// bool returns key as 0/1/true/false, or def when absent.
func (q sourceQuery) bool(key string, def bool) (bool, error) {
	if !q.vals.Has(key) {
		return def, nil
	}
	s := q.vals.Get(key)
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("query %s=%q: want 1, 0, true or false", key, s)
	}
	return v, nil
}

// str returns key, or def when absent; when allowed is not empty the value
// must be one of them.
func (q sourceQuery) str(key, def string, allowed ...string) (string, error) {
	if !q.vals.Has(key) {
		return def, nil
	}
	s := q.vals.Get(key)
	if len(allowed) > 0 && !slices.Contains(allowed, s) {
		return "", fmt.Errorf("query %s=%q: want one of %s", key, s, strings.Join(allowed, ", "))
	}
	return s, nil
}

// resizeData returns b with length n, reusing its capacity when it can, so
// a steady stream of equal frames allocates once.
func resizeData(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}

// maxSourceFPS bounds the fps a URI may ask for; beyond it the pacing
// period would be below the timer resolution that matters.
const maxSourceFPS = 1000

// framePacer releases one frame per period, or immediately when the
// period is zero. It keeps a fixed schedule (start + n·period) so the
// rate does not drift, and restarts the schedule when the reader fell
// more than a period behind. Close interrupts a wait. It does not
// allocate per frame.
type framePacer struct {
	period time.Duration
	next   time.Time
	timer  *time.Timer
	done   chan struct{}
	once   sync.Once
}

func newFramePacer(fps float64) *framePacer {
	p := &framePacer{done: make(chan struct{})}
	if fps > 0 {
		p.period = time.Duration(float64(time.Second) / fps)
		p.timer = time.NewTimer(time.Hour)
		p.timer.Stop()
	}
	return p
}

// wait blocks until the next frame is due; false means the pacer was
// closed.
func (p *framePacer) wait() bool {
	select {
	case <-p.done:
		return false
	default:
	}
	if p.period == 0 {
		return true
	}
	now := time.Now()
	if p.next.IsZero() || now.Sub(p.next) > p.period {
		p.next = now
	}
	if d := p.next.Sub(now); d > 0 {
		p.timer.Reset(d)
		select {
		case <-p.timer.C:
		case <-p.done:
			p.timer.Stop()
			return false
		}
	}
	p.next = p.next.Add(p.period)
	return true
}

// close makes wait return false from now on; it is safe to call twice.
func (p *framePacer) close() { p.once.Do(func() { close(p.done) }) }

// rawFrameLen is the size of one uncompressed frame: 4:2:0 formats (I420,
// NV12) carry 1.5 bytes per pixel, YUYV 2, RGB24/BGR24 3, GRAY8 1. The
// chroma-subsampled formats need even sides.
func rawFrameLen(f PixelFormat, w, h int) (int, error) {
	if w <= 0 || h <= 0 || w > maxFrameSide || h > maxFrameSide {
		return 0, fmt.Errorf("frame size %dx%d: want sides from 1 to %d", w, h, maxFrameSide)
	}
	switch f {
	case I420, NV12:
		if w%2 != 0 || h%2 != 0 {
			return 0, fmt.Errorf("frame size %dx%d: %s needs even width and height", w, h, f)
		}
		return w * h * 3 / 2, nil
	case YUYV:
		if w%2 != 0 {
			return 0, fmt.Errorf("frame size %dx%d: YUYV needs an even width", w, h)
		}
		return w * h * 2, nil
	case RGB24, BGR24:
		return w * h * 3, nil
	case GRAY8:
		return w * h, nil
	}
	return 0, fmt.Errorf("pixel format %q has no fixed frame size (want one of %s)", f, rawFormatNames)
}

// maxFrameSide bounds a frame side (8K is 7680x4320).
const maxFrameSide = 8192

const rawFormatNames = "YUYV, I420, NV12, RGB24, BGR24, GRAY"

// parsePixelFormat reads a format name as URIs and flags spell it,
// case-insensitively; GRAY8 is accepted for GRAY.
func parsePixelFormat(s string) (PixelFormat, error) {
	switch strings.ToUpper(s) {
	case "YUYV", "YUY2":
		return YUYV, nil
	case "I420", "YUV420", "YU12":
		return I420, nil
	case "NV12":
		return NV12, nil
	case "MJPEG", "MJPG":
		return MJPEG, nil
	case "RGB24", "RGB":
		return RGB24, nil
	case "BGR24", "BGR":
		return BGR24, nil
	case "GRAY", "GRAY8", "GREY":
		return GRAY8, nil
	}
	return "", fmt.Errorf("pixel format %q: want one of %s, MJPEG", s, rawFormatNames)
}
