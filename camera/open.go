package camera

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Options say what the consumer wants from a source. Sources choose the
// closest mode they have; zero values mean "the source's default".
type Options struct {
	// Width and Height are the frame size wanted (usually the model's
	// input, or what its resize step needs).
	Width, Height int
	// FPS is the frame rate wanted from live sources.
	FPS float64
	// Format is the raw format a pipe: command writes, or the preferred
	// format of a camera.
	Format PixelFormat
	// Logf reports reconnects, restarts and mode choices; nil is silent.
	Logf func(format string, args ...any)
	// Backoff is the first wait before reopening a failed live source;
	// it doubles up to MaxBackoff. Zero means 500 ms and 10 s.
	Backoff, MaxBackoff time.Duration
	// SourceTimeout is the read watchdog of live sources: a camera or a
	// csi:// or pipe: program that delivers no frame for this long is
	// called stalled — the program is restarted, the camera reopened.
	// A program's first frame gets FirstFrameAllowance times as long
	// (cameras take a while to start). Zero means DefaultSourceTimeout;
	// negative turns the watchdog off.
	SourceTimeout time.Duration
}

// DefaultSourceTimeout is the read watchdog when Options leave it zero.
const DefaultSourceTimeout = 5 * time.Second

// FirstFrameAllowance multiplies SourceTimeout for a program's first frame.
const FirstFrameAllowance = 3

// sourceTimeout is o's read watchdog, 0 when off.
func (o Options) sourceTimeout() time.Duration {
	switch {
	case o.SourceTimeout < 0:
		return 0
	case o.SourceTimeout == 0:
		return DefaultSourceTimeout
	}
	return o.SourceTimeout
}

// opener opens the source named by rest, the URI after "scheme:".
type opener func(rest string, o Options) (Source, error)

var openers = map[string]opener{}

// register adds a URI scheme; backends call it from init so that optional
// ones (gocv, behind a build tag) plug in without Open knowing them.
func register(scheme string, open opener) {
	if _, dup := openers[scheme]; dup {
		panic("camera: scheme registered twice: " + scheme)
	}
	openers[scheme] = open
}

// Schemes lists the URI schemes this binary can open.
func Schemes() []string {
	s := make([]string, 0, len(openers))
	for k := range openers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open opens a source by URI: "v4l2:///dev/video0", "csi://0",
// "pipe:CMD", "gocv:…", "file://GLOB|DIR", "idx:PATH", "synthetic",
// "video:PATH", "rtsp://…", "http://…". A URI of no known scheme whose
// name ends in a video extension (clip.mp4) is a video: file.
func Open(uri string, o Options) (Source, error) {
	scheme, rest, _ := strings.Cut(uri, ":")
	open, ok := openers[scheme]
	if !ok && isVideoName(uri) {
		open, rest, ok = openers["video"], uri, true
	}
	if !ok {
		return nil, fmt.Errorf("source %q: unknown scheme %q (have %s)", uri, scheme, strings.Join(Schemes(), ", "))
	}
	s, err := open(rest, o)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", uri, err)
	}
	return s, nil
}
