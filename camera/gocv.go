//go:build gocv

package camera

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// OpenCV capture through gocv (cgo, libopencv-dev): video files, RTSP/HTTP
// streams and GStreamer pipelines (CSI cameras on Jetson, libcamera)
// decoded in process. The default build reads files and streams through
// an ffmpeg child instead (video:, rtsp://, http://: source_video.go).

// gocvBuilt tells tests and messages whether this binary has OpenCV.
const gocvBuilt = true

func init() { register("gocv", openGoCV) }

// gocvKind is what a gocv: URI names.
type gocvKind int

const (
	gocvDevice   gocvKind = iota // gocv:0 — a camera index
	gocvFile                     // gocv:/path/video.mp4
	gocvURL                      // gocv:rtsp://…, gocv:http://…
	gocvPipeline                 // gocv:gst:… or anything with " ! "
)

// gocvTarget is a parsed gocv: URI.
type gocvTarget struct {
	kind  gocvKind
	index int    // gocvDevice
	what  string // path, URL or pipeline
}

// parseGoCV reads the URI rest: "N", "gst:PIPELINE", "A ! B ! appsink",
// "SCHEME://…", "file://PATH" or a file path.
func parseGoCV(rest string) (gocvTarget, error) {
	const forms = "want gocv:N, gocv:PATH, gocv:URL or gocv:gst:PIPELINE"
	switch {
	case strings.TrimSpace(rest) == "":
		return gocvTarget{}, errors.New("gocv: nothing to open; " + forms)
	case strings.HasPrefix(rest, "gst:") || strings.Contains(rest, " ! "):
		p := strings.TrimSpace(strings.TrimPrefix(rest, "gst:"))
		elems := strings.Split(p, "!")
		if last := strings.TrimSpace(elems[len(elems)-1]); !strings.HasPrefix(last, "appsink") {
			return gocvTarget{}, fmt.Errorf("gocv pipeline %q: must end in appsink, e.g. \"videotestsrc ! videoconvert ! video/x-raw,format=BGR ! appsink\"", p)
		}
		return gocvTarget{kind: gocvPipeline, what: p}, nil
	case strings.HasPrefix(rest, "file://"):
		return gocvTarget{kind: gocvFile, what: strings.TrimPrefix(rest, "file://")}, nil
	case strings.Contains(rest, "://"):
		return gocvTarget{kind: gocvURL, what: rest}, nil
	}
	if n, err := strconv.Atoi(rest); err == nil {
		if n < 0 {
			return gocvTarget{}, fmt.Errorf("gocv:%s: camera index must be 0 or more", rest)
		}
		return gocvTarget{kind: gocvDevice, index: n}, nil
	}
	return gocvTarget{kind: gocvFile, what: rest}, nil
}

// gocvSource reads frames through an OpenCV VideoCapture into BGR24 (or
// GRAY8) frames, reusing one Mat.
//
// A cgo call cannot be interrupted, and a stalled RTSP stream or a camera
// that stops delivering can block OpenCV's read for good. So the reads run
// on a worker goroutine that owns the capture, and Read waits for it at most
// the watchdog time (Options.SourceTimeout, live sources only). After a
// timeout the source is spent: Read says so, the reconnect wrapper closes it
// and opens a new capture, and the worker frees the old one whenever its
// read returns.
type gocvSource struct {
	name    string
	kind    gocvKind
	timeout time.Duration // 0: wait as long as the read takes
	first   bool          // no frame yet: FirstFrameAllowance applies

	req   chan struct{} // one per read; closed by Close
	done  chan struct{} // closed by Close first, so that it need not wait for Read
	once  sync.Once
	res   chan bool     // the read's result (cap 1: a late one never blocks)
	freed chan struct{} // closed when the worker has released vc and mat
	timer *time.Timer

	mu     sync.Mutex
	vc     *gocv.VideoCapture
	mat    gocv.Mat
	seq    uint64
	closed bool
	hung   bool // a read outlived the watchdog; the worker still owns the Mat
}

func openGoCV(rest string, o Options) (Source, error) {
	t, err := parseGoCV(rest)
	if err != nil {
		return nil, err
	}
	var vc *gocv.VideoCapture
	name := t.what
	switch t.kind {
	case gocvDevice:
		name = strconv.Itoa(t.index)
		vc, err = gocv.VideoCaptureDevice(t.index)
	case gocvFile:
		if _, serr := os.Stat(t.what); serr != nil {
			return nil, fmt.Errorf("gocv %s: %w", t.what, serr)
		}
		vc, err = gocv.VideoCaptureFile(t.what)
	case gocvURL:
		vc, err = gocv.VideoCaptureFile(t.what)
	case gocvPipeline:
		vc, err = gocv.VideoCaptureFileWithAPI(t.what, gocv.VideoCaptureGstreamer)
	}
	if err != nil || !vc.IsOpened() {
		if vc != nil {
			vc.Close()
		}
		return nil, fmt.Errorf("gocv %s: OpenCV cannot open it (%s)", name, gocvOpenHint(t.kind))
	}
	if t.kind == gocvDevice {
		// Ask, don't insist: OpenCV picks the nearest mode the camera has.
		if o.Width > 0 && o.Height > 0 {
			vc.Set(gocv.VideoCaptureFrameWidth, float64(o.Width))
			vc.Set(gocv.VideoCaptureFrameHeight, float64(o.Height))
		}
		if o.FPS > 0 {
			vc.Set(gocv.VideoCaptureFPS, o.FPS)
		}
		// Few buffers, so frames never queue up behind a slow model.
		vc.Set(gocv.VideoCaptureBufferSize, 2)
	}
	s := &gocvSource{name: name, kind: t.kind, vc: vc, mat: gocv.NewMat(), first: true,
		req: make(chan struct{}), res: make(chan bool, 1), freed: make(chan struct{}), done: make(chan struct{})}
	if t.kind != gocvFile {
		s.timeout = o.sourceTimeout()
	}
	go s.work()
	if o.Logf != nil {
		o.Logf("gocv %s: opened with the %v backend, %gx%g @ %g fps", name,
			gocv.VideoCaptureAPI(vc.Get(gocv.VideoCaptureBackend)),
			vc.Get(gocv.VideoCaptureFrameWidth), vc.Get(gocv.VideoCaptureFrameHeight), vc.Get(gocv.VideoCaptureFPS))
	}
	return s, nil
}

func gocvOpenHint(k gocvKind) string {
	switch k {
	case gocvDevice:
		return "no such camera, or it is busy"
	case gocvFile:
		return "not a video OpenCV's FFmpeg backend can decode"
	case gocvURL:
		return "stream unreachable or in a format FFmpeg cannot read"
	}
	return "GStreamer rejected the pipeline; try it with gst-launch-1.0"
}

// work runs the capture's reads, one per request, and releases the
// capture once Close has closed req and the read in progress (if any) has
// returned.
func (s *gocvSource) work() {
	for range s.req {
		s.res <- s.vc.Read(&s.mat)
	}
	s.mat.Close()
	s.vc.Close()
	close(s.freed)
}

// read asks the worker for the next frame and waits for it, at most the
// watchdog time when there is one.
func (s *gocvSource) read() (ok bool, err error) {
	s.req <- struct{}{}
	var expired <-chan time.Time
	wait := s.timeout
	if wait > 0 {
		if s.first {
			wait *= FirstFrameAllowance
		}
		if s.timer == nil {
			s.timer = time.NewTimer(wait)
		} else {
			s.timer.Reset(wait)
		}
		expired = s.timer.C
	}
	select {
	case ok = <-s.res:
		if s.timer != nil {
			s.timer.Stop()
		}
		return ok, nil
	case <-expired:
		s.hung = true
		return false, fmt.Errorf("gocv %s: no frame for %v (watchdog; --source-timeout)", s.name, wait)
	case <-s.done:
		if s.timer != nil {
			s.timer.Stop()
		}
		s.hung = true // the worker may still be in OpenCV
		return false, ErrClosed
	}
}

// Read copies the next frame into f as BGR24 (GRAY8 for 1-channel
// pipelines). A file ends with io.EOF; a live stream that stops, or
// delivers nothing for the watchdog time, is an error.
func (s *gocvSource) Read(f *Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("gocv %s: read after close", s.name)
	}
	if s.hung {
		return fmt.Errorf("gocv %s: a read is still stuck in OpenCV; reopen the source", s.name)
	}
	ok, err := s.read()
	if err != nil {
		return err
	}
	s.first = false
	if !ok || s.mat.Empty() {
		if s.kind == gocvFile {
			return io.EOF
		}
		return fmt.Errorf("gocv %s: no frame (stream ended, or the camera was unplugged)", s.name)
	}
	captured := time.Now()
	var format PixelFormat
	switch s.mat.Type() {
	case gocv.MatTypeCV8UC3:
		format = BGR24
	case gocv.MatTypeCV8UC1:
		format = GRAY8
	default:
		return fmt.Errorf("gocv %s: frame is OpenCV type %v, want 8-bit BGR (end a pipeline with \"videoconvert ! video/x-raw,format=BGR ! appsink\")", s.name, s.mat.Type())
	}
	data, err := s.mat.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("gocv %s: %w", s.name, err)
	}
	w, h := s.mat.Cols(), s.mat.Rows()
	n := w * h * s.mat.Channels()
	if len(data) < n {
		return fmt.Errorf("gocv %s: frame has %d bytes, %dx%d %s needs %d", s.name, len(data), w, h, format, n)
	}
	f.Data = append(f.Data[:0], data[:n]...)
	f.Seq, f.Time, f.Format, f.Width, f.Height, f.Label = s.seq, captured, format, w, h, -1
	s.seq++
	return nil
}

// Close releases the capture and the Mat; it is safe to call twice. It
// does not wait for a read in progress: that read returns ErrClosed at
// once, and the worker releases the capture when OpenCV returns.
func (s *gocvSource) Close() error {
	s.once.Do(func() { close(s.done) }) // wakes a Read waiting for OpenCV
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.req)
	if !s.hung {
		<-s.freed
	}
	return nil
}

// Live is true for cameras, streams and pipelines, false for files.
func (s *gocvSource) Live() bool { return s.kind != gocvFile }
