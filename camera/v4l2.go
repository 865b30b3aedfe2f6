package camera

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// V4L2 capture, above a thin device layer (v4l2_linux.go talks to the
// kernel through github.com/blackjack/webcam). Everything in this file —
// mode choice, the newest-frame read loop, error messages — is plain Go
// over the v4l2Device interface, so it is tested with a fake device.

func init() { register("v4l2", openV4L2) }

// V4L2 fourcc codes (linux/videodev2.h: v4l2_fourcc(a,b,c,d) =
// a | b<<8 | c<<16 | d<<24).
const (
	v4l2FourCCYUYV uint32 = 'Y' | 'U'<<8 | 'Y'<<16 | 'V'<<24
	v4l2FourCCMJPG uint32 = 'M' | 'J'<<8 | 'P'<<16 | 'G'<<24
	v4l2FourCCJPEG uint32 = 'J' | 'P'<<8 | 'E'<<16 | 'G'<<24 // some drivers name MJPEG so
)

const (
	// v4l2Buffers is how many kernel buffers we ask for: enough for the
	// driver to fill one while we copy another, few enough that a slow
	// consumer never sees frames older than ~3 frame times.
	v4l2Buffers = 3
	// v4l2USB2Budget is the most a USB 2.0 high-speed isochronous endpoint
	// carries: 3 transactions × 1024 bytes per 125 µs microframe
	// (USB 2.0 spec §5.6.4, table 5-8) = 24.576 MB/s.
	v4l2USB2Budget = 3 * 1024 * 8000
	// v4l2PollStep bounds how long Close waits for a blocked Read.
	v4l2PollStep = time.Second
	// v4l2StallTimeout is how long Read waits for a frame before it
	// calls the camera stalled (the reconnect wrapper then reopens it).
	v4l2StallTimeout = 5 * time.Second
	// v4l2MaxBadFrames consecutive short/corrupt frames make Read fail.
	v4l2MaxBadFrames = 30
)

// v4l2DefaultWidth/Height is the size asked for when Options leave it
// zero: VGA is every UVC camera's default mode.
const v4l2DefaultWidth, v4l2DefaultHeight = 640, 480

// v4l2FormatDesc is one entry of VIDIOC_ENUM_FMT.
type v4l2FormatDesc struct {
	FourCC      uint32
	Description string
}

// v4l2SizeRange is one entry of VIDIOC_ENUM_FRAMESIZES: a discrete size
// has Min == Max and zero steps; a stepwise range has steps ≥ 1.
type v4l2SizeRange struct {
	MinWidth, MaxWidth, StepWidth    int
	MinHeight, MaxHeight, StepHeight int
}

// v4l2MaxSide bounds sizes taken from a driver (V4L2 sizes are u32; on
// 32-bit ARM a garbage one would turn negative as an int).
const v4l2MaxSide = 1 << 16

// valid reports whether r is a usable, sane range.
func (r v4l2SizeRange) valid() bool {
	ok := func(min, max, step int) bool {
		return 0 < min && min <= max && max <= v4l2MaxSide && 0 <= step && step <= v4l2MaxSide
	}
	return ok(r.MinWidth, r.MaxWidth, r.StepWidth) && ok(r.MinHeight, r.MaxHeight, r.StepHeight)
}

// v4l2Fraction is a frame interval in seconds, Num/Den.
type v4l2Fraction struct{ Num, Den uint32 }

// fps is the frame rate of an interval, 0 for a malformed one.
func (f v4l2Fraction) fps() float64 {
	if f.Num == 0 || f.Den == 0 {
		return 0
	}
	return float64(f.Den) / float64(f.Num)
}

// v4l2IntervalRange is one entry of VIDIOC_ENUM_FRAMEINTERVALS: discrete
// when Min == Max and Step is zero, else stepwise from Min to Max.
type v4l2IntervalRange struct{ Min, Max, Step v4l2Fraction }

// v4l2Device is the part of the V4L2 API the source needs: the thin layer
// over ioctls. Dequeue returns errV4L2NoFrame when no buffer is ready;
// the data it returns is valid until the buffer is enqueued again.
type v4l2Device interface {
	Formats() []v4l2FormatDesc
	FrameSizes(fourcc uint32) []v4l2SizeRange
	FrameIntervals(fourcc uint32, width, height int) []v4l2IntervalRange
	SetFormat(fourcc uint32, width, height int) (gotFourCC uint32, err error)
	SetFPS(fps float64) error
	Start(buffers int) error
	WaitFrame(timeout time.Duration) error
	Dequeue() (data []byte, index uint32, err error)
	Enqueue(index uint32) error
	Close() error
}

// Errors the device layer reports; the source turns them into messages.
var (
	errV4L2NoFrame    = errors.New("no frame ready")
	errV4L2Timeout    = errors.New("timed out waiting for a frame")
	errV4L2NoDevice   = errors.New("no such device")
	errV4L2NotCapture = errors.New("not a video capture device")
	errV4L2NotV4L2    = errors.New("not a V4L2 device")
)

// v4l2System opens devices and lists the cameras present; tests replace it.
type v4l2System struct {
	open func(path string) (v4l2Device, error)
	// list returns capture devices, each "PATH" or "PATH (NAME)".
	list func() []string
}

// v4l2Mode is what the source asked the camera for.
type v4l2Mode struct {
	FourCC        uint32
	Width, Height int
	FPS           float64 // 0 when the camera lists no rates for the size
}

func (m v4l2Mode) String() string {
	s := fmt.Sprintf("%s %dx%d", v4l2FourCCString(m.FourCC), m.Width, m.Height)
	if m.FPS > 0 {
		s += fmt.Sprintf(" @ %.4g fps", m.FPS)
	}
	return s
}

// v4l2FourCCString spells a fourcc as its four characters.
func v4l2FourCCString(c uint32) string {
	b := []byte{byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24)}
	for i, ch := range b {
		if ch < ' ' || ch > '~' {
			b[i] = '?'
		}
	}
	return strings.TrimRight(string(b), " ")
}

// v4l2PixelFormat maps the fourccs we decode to Frame formats.
func v4l2PixelFormat(fourcc uint32) (PixelFormat, bool) {
	switch fourcc {
	case v4l2FourCCYUYV:
		return YUYV, true
	case v4l2FourCCMJPG, v4l2FourCCJPEG:
		return MJPEG, true
	}
	return "", false
}

// v4l2Candidate is the best mode of one format for the wanted size/rate.
type v4l2Candidate struct {
	mode   v4l2Mode
	covers bool // mode is at least as big as wanted in both dimensions
}

// chooseV4L2Mode picks the camera mode for o. The rule:
//
//   - Formats: only YUYV and MJPEG (MJPG or JPEG) are decoded; a camera
//     offering neither is an error that lists what it does offer.
//   - Size, per format: the smallest size at least o.Width×o.Height in
//     both dimensions (stepwise ranges are rounded up to their step);
//     when no size is that big, the largest. Zero means 640×480.
//   - Rate, per format and size: the one closest to o.FPS (ties and
//     o.FPS == 0 take the faster).
//   - YUYV or MJPEG: YUYV costs no JPEG decode on the board and its pixels
//     are exact, so it wins when the camera offers it at a size as good as
//     MJPEG's, at a rate no lower than min(o.FPS, MJPEG's rate), and
//     width×height×2×fps fits USB 2.0's 24.576 MB/s. Otherwise MJPEG (which
//     is how UVC cameras deliver HD at 30 fps). o.Format, when YUYV or
//     MJPEG and offered, overrides this.
func chooseV4L2Mode(dev v4l2Device, o Options) (v4l2Mode, error) {
	formats := dev.Formats()
	if len(formats) == 0 {
		return v4l2Mode{}, errors.New("camera lists no pixel formats")
	}
	var yuyv, mjpg uint32
	for _, f := range formats {
		switch f.FourCC {
		case v4l2FourCCYUYV:
			yuyv = f.FourCC
		case v4l2FourCCMJPG:
			mjpg = f.FourCC
		case v4l2FourCCJPEG:
			if mjpg == 0 {
				mjpg = f.FourCC
			}
		}
	}
	if yuyv == 0 && mjpg == 0 {
		offered := make([]string, len(formats))
		for i, f := range formats {
			offered[i] = v4l2FourCCString(f.FourCC)
			if f.Description != "" {
				offered[i] += " (" + f.Description + ")"
			}
		}
		return v4l2Mode{}, fmt.Errorf("camera offers %s; vggedge decodes YUYV and MJPG", strings.Join(offered, ", "))
	}
	switch {
	case o.Format == YUYV && yuyv != 0:
		return v4l2BestMode(dev, yuyv, o).mode, nil
	case o.Format == MJPEG && mjpg != 0:
		return v4l2BestMode(dev, mjpg, o).mode, nil
	case yuyv == 0:
		return v4l2BestMode(dev, mjpg, o).mode, nil
	case mjpg == 0:
		return v4l2BestMode(dev, yuyv, o).mode, nil
	}
	y, m := v4l2BestMode(dev, yuyv, o), v4l2BestMode(dev, mjpg, o)
	if v4l2PreferYUYV(y, m, o.FPS) {
		return y.mode, nil
	}
	return m.mode, nil
}

// v4l2PreferYUYV applies the YUYV-or-MJPEG part of chooseV4L2Mode's rule.
func v4l2PreferYUYV(y, m v4l2Candidate, wantFPS float64) bool {
	yArea, mArea := y.mode.Width*y.mode.Height, m.mode.Width*m.mode.Height
	sizeAsGood := y.covers == m.covers && (y.covers || yArea >= mArea)
	if y.covers && m.covers && yArea > mArea {
		// Both big enough but YUYV only in a bigger size: more bytes over
		// USB and more to resize, for nothing.
		sizeAsGood = false
	}
	needFPS := m.mode.FPS
	if wantFPS > 0 && wantFPS < needFPS {
		needFPS = wantFPS
	}
	// 1% slack: 29.97 counts as 30.
	rateAsGood := y.mode.FPS == 0 || y.mode.FPS >= needFPS*0.99
	fps := y.mode.FPS
	if fps == 0 {
		fps = wantFPS
	}
	fits := float64(yArea)*2*fps <= v4l2USB2Budget
	return sizeAsGood && rateAsGood && fits
}

// v4l2BestMode picks size and rate for one format.
func v4l2BestMode(dev v4l2Device, fourcc uint32, o Options) v4l2Candidate {
	wantW, wantH := o.Width, o.Height
	if wantW <= 0 && wantH <= 0 {
		wantW, wantH = v4l2DefaultWidth, v4l2DefaultHeight
	}
	w, h, covers := v4l2ChooseSize(dev.FrameSizes(fourcc), wantW, wantH)
	fps := v4l2ChooseFPS(dev.FrameIntervals(fourcc, w, h), o.FPS)
	return v4l2Candidate{mode: v4l2Mode{FourCC: fourcc, Width: w, Height: h, FPS: fps}, covers: covers}
}

// v4l2ChooseSize returns the smallest size ≥ want×wantH in both dimensions
// or, when none is, the largest; with no usable list it returns the wanted
// size and lets the driver adjust it.
func v4l2ChooseSize(sizes []v4l2SizeRange, wantW, wantH int) (w, h int, covers bool) {
	type size struct{ w, h int }
	var all []size
	for _, r := range sizes {
		if !r.valid() {
			continue // CONTINUOUS ranges arrive empty from the ioctl layer
		}
		all = append(all, size{r.MaxWidth, r.MaxHeight})
		if r.StepWidth > 0 || r.StepHeight > 0 {
			all = append(all, size{v4l2StepUp(r.MinWidth, r.MaxWidth, r.StepWidth, wantW), v4l2StepUp(r.MinHeight, r.MaxHeight, r.StepHeight, wantH)})
		}
	}
	if len(all) == 0 {
		return wantW, wantH, true
	}
	best, found := size{}, false
	for _, s := range all {
		if s.w < wantW || s.h < wantH {
			continue
		}
		if !found || s.w*s.h < best.w*best.h {
			best, found = s, true
		}
	}
	if found {
		return best.w, best.h, true
	}
	for _, s := range all {
		if s.w*s.h > best.w*best.h {
			best = s
		}
	}
	return best.w, best.h, false
}

// v4l2StepUp is the smallest value min + k·step ≥ want, clamped to [min, max].
func v4l2StepUp(min, max, step, want int) int {
	if want <= min {
		return min
	}
	if want >= max {
		return max
	}
	if step <= 0 {
		step = 1
	}
	v := min + (want-min+step-1)/step*step
	if v > max {
		v = max
	}
	return v
}

// v4l2ChooseFPS returns the listed rate closest to want (the fastest when
// want is 0, the faster on ties); 0 when nothing is listed.
func v4l2ChooseFPS(intervals []v4l2IntervalRange, want float64) float64 {
	var rates []float64
	for _, r := range intervals {
		lo, hi := r.Max.fps(), r.Min.fps() // the longest interval is the slowest rate
		if lo == 0 || hi == 0 {
			continue
		}
		rates = append(rates, hi, lo)
		if r.Step == (v4l2Fraction{}) || want <= 0 {
			continue
		}
		// Stepwise: intervals Min, Min+Step, …, Max (in seconds).
		tMin, tMax := 1/hi, 1/lo
		step := 0.0
		if r.Step.Den != 0 {
			step = float64(r.Step.Num) / float64(r.Step.Den)
		}
		t := math.Min(math.Max(1/want, tMin), tMax)
		if step > 0 {
			t = tMin + math.Round((t-tMin)/step)*step
			t = math.Min(math.Max(t, tMin), tMax)
		}
		rates = append(rates, 1/t)
	}
	best := 0.0
	for _, r := range rates {
		switch {
		case best == 0, want <= 0 && r > best:
			best = r
		case want > 0:
			d, bd := math.Abs(r-want), math.Abs(best-want)
			if d < bd-1e-9 || (math.Abs(d-bd) <= 1e-9 && r > best) {
				best = r
			}
		}
	}
	return best
}

// v4l2Source reads frames from a V4L2 camera. Read and Close may be called
// from different goroutines: Close waits for a Read in progress (at most
// about a second, the poll step).
type v4l2Source struct {
	path   string
	format PixelFormat
	mode   v4l2Mode
	// frameBytes is the exact size of a YUYV frame; 0 for MJPEG.
	frameBytes  int
	bufferBytes int64
	stall       time.Duration

	// closing tells a Read blocked in its poll loop to give up, so that
	// Close gets mu within one poll step.
	closing atomic.Bool
	mu      sync.Mutex
	dev     v4l2Device
	seq     uint64
	closed  bool
}

// openV4L2 opens "v4l2:///dev/videoN", "v4l2:/dev/videoN", "v4l2:N", or
// "v4l2:" (the first camera).
func openV4L2(rest string, o Options) (Source, error) {
	return openV4L2With(rest, o, v4l2Host)
}

func openV4L2With(rest string, o Options, sys v4l2System) (*v4l2Source, error) {
	path, err := v4l2Path(rest, sys)
	if err != nil {
		return nil, err
	}
	dev, err := sys.open(path)
	if err != nil {
		return nil, v4l2OpenError(path, err, sys)
	}
	s, err := newV4L2Source(path, dev, o)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return s, nil
}

// v4l2Path turns the URI rest into a device path.
func v4l2Path(rest string, sys v4l2System) (string, error) {
	p := strings.TrimPrefix(rest, "//")
	switch {
	case p == "" || p == "/":
		cams := sys.list()
		if len(cams) == 0 {
			return "", fmt.Errorf("v4l2: %w (no capture device under /dev/video*)", ErrNoCamera)
		}
		path, _, _ := strings.Cut(cams[0], " ")
		return path, nil
	case strings.HasPrefix(p, "/"):
		return p, nil
	}
	if n, err := strconv.Atoi(p); err == nil && n >= 0 {
		return "/dev/video" + p, nil
	}
	return "", fmt.Errorf("v4l2 %q: want v4l2:///dev/videoN or v4l2:N", p)
}

// v4l2OpenError explains a failed open and lists the cameras that exist.
func v4l2OpenError(path string, err error, sys v4l2System) error {
	var hint string
	if cams := sys.list(); len(cams) > 0 {
		hint = "; cameras here: " + strings.Join(cams, ", ")
	} else {
		hint = "; no cameras found"
	}
	switch {
	case errors.Is(err, errV4L2NoDevice):
		return fmt.Errorf("v4l2 %s: %w%s", path, errV4L2NoDevice, hint)
	case errors.Is(err, errV4L2NotCapture):
		return fmt.Errorf("v4l2 %s: %w (UVC cameras also create metadata nodes)%s", path, err, hint)
	case errors.Is(err, errV4L2NotV4L2):
		return fmt.Errorf("v4l2 %s: %w%s", path, err, hint)
	}
	return fmt.Errorf("v4l2 %s: open: %w", path, err)
}

// newV4L2Source chooses the mode, configures dev and starts streaming.
func newV4L2Source(path string, dev v4l2Device, o Options) (*v4l2Source, error) {
	mode, err := chooseV4L2Mode(dev, o)
	if err != nil {
		return nil, fmt.Errorf("v4l2 %s: %w", path, err)
	}
	got, err := dev.SetFormat(mode.FourCC, mode.Width, mode.Height)
	if err != nil {
		return nil, fmt.Errorf("v4l2 %s: set format %s: %w", path, mode, err)
	}
	format, ok := v4l2PixelFormat(got)
	if !ok {
		return nil, fmt.Errorf("v4l2 %s: asked for %s, driver chose %s", path, mode, v4l2FourCCString(got))
	}
	mode.FourCC = got
	if mode.FPS > 0 {
		// Not every driver can set the rate (S_PARM is optional); the
		// camera then runs at its default, which is not worth failing for.
		if err := dev.SetFPS(mode.FPS); err != nil && o.Logf != nil {
			o.Logf("v4l2 %s: cannot set %.4g fps: %v", path, mode.FPS, err)
		}
	}
	if err := dev.Start(v4l2Buffers); err != nil {
		return nil, fmt.Errorf("v4l2 %s: start streaming %s: %w", path, mode, err)
	}
	s := &v4l2Source{path: path, dev: dev, format: format, mode: mode, stall: v4l2StallTimeout}
	if t := o.sourceTimeout(); t > 0 {
		s.stall = t
	}
	if format == YUYV {
		s.frameBytes = mode.Width * mode.Height * 2
	}
	// UVC sizes every buffer, MJPEG too, at the camera's maximum frame
	// size, which for MJPEG is usually width×height×2 as well.
	s.bufferBytes = int64(v4l2Buffers) * int64(mode.Width) * int64(mode.Height) * 2
	if o.Logf != nil {
		o.Logf("v4l2 %s: %s (wanted %dx%d @ %.4g fps)", path, mode, o.Width, o.Height, o.FPS)
	}
	return s, nil
}

// Read copies the newest frame into f. Older frames already queued are
// dropped, so latency never piles up behind a slow consumer. f.Time is
// when the buffer was dequeued (webcam v0.6.1 does not expose the
// driver's timestamp), at most a poll wake-up after the capture.
func (s *v4l2Source) Read(f *Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	bad := 0
	var waited time.Duration
	for {
		if s.closed || s.closing.Load() {
			return fmt.Errorf("v4l2 %s: read after close", s.path)
		}
		err := s.dev.WaitFrame(v4l2PollStep)
		if errors.Is(err, errV4L2Timeout) {
			if waited += v4l2PollStep; waited >= s.stall {
				return fmt.Errorf("v4l2 %s: no frame for %v (camera stalled or unplugged)", s.path, waited)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("v4l2 %s: wait for frame: %w", s.path, err)
		}
		waited = 0
		data, index, err := s.newest()
		if errors.Is(err, errV4L2NoFrame) {
			continue // woken without a buffer ready
		}
		if err != nil {
			return err
		}
		captured := time.Now()
		ok := s.usable(data)
		if ok {
			if s.frameBytes > 0 {
				data = data[:s.frameBytes] // drivers may pad the buffer
			}
			f.Data = append(f.Data[:0], data...)
		}
		// The copy is done: hand the buffer back before anything else.
		if err := s.dev.Enqueue(index); err != nil {
			return fmt.Errorf("v4l2 %s: requeue buffer: %w", s.path, err)
		}
		if !ok {
			if bad++; bad >= v4l2MaxBadFrames {
				return fmt.Errorf("v4l2 %s: %d unusable frames in a row (last %d bytes, %s)", s.path, bad, len(data), s.wantBytes())
			}
			continue
		}
		f.Seq, f.Time = s.seq, captured
		f.Format, f.Width, f.Height, f.Label = s.format, s.mode.Width, s.mode.Height, -1
		s.seq++
		return nil
	}
}

// newest dequeues every ready buffer, requeues all but the last one and
// returns that one.
func (s *v4l2Source) newest() ([]byte, uint32, error) {
	data, index, err := s.dev.Dequeue()
	if err != nil {
		if errors.Is(err, errV4L2NoFrame) {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("v4l2 %s: read frame: %w", s.path, err)
	}
	for {
		next, nextIndex, err := s.dev.Dequeue()
		if errors.Is(err, errV4L2NoFrame) {
			return data, index, nil
		}
		if err != nil {
			s.dev.Enqueue(index)
			return nil, 0, fmt.Errorf("v4l2 %s: read frame: %w", s.path, err)
		}
		if err := s.dev.Enqueue(index); err != nil {
			return nil, 0, fmt.Errorf("v4l2 %s: requeue buffer: %w", s.path, err)
		}
		data, index = next, nextIndex
	}
}

// usable rejects the short and empty buffers UVC delivers after USB
// errors: a YUYV frame must be complete, an MJPEG one must start with SOI.
func (s *v4l2Source) usable(data []byte) bool {
	if s.frameBytes > 0 {
		return len(data) >= s.frameBytes
	}
	return len(data) >= 4 && data[0] == 0xFF && data[1] == 0xD8
}

func (s *v4l2Source) wantBytes() string {
	if s.frameBytes > 0 {
		return fmt.Sprintf("want %d for YUYV %dx%d", s.frameBytes, s.mode.Width, s.mode.Height)
	}
	return "want a JPEG starting with FF D8"
}

// Close stops streaming and closes the device; it is safe to call twice.
func (s *v4l2Source) Close() error {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.dev.Close(); err != nil {
		return fmt.Errorf("v4l2 %s: close: %w", s.path, err)
	}
	return nil
}

// Live reports true: a camera delivers frames in real time.
func (s *v4l2Source) Live() bool { return true }

// BufferBytes is the memory the camera's kernel buffers take (buffers ×
// bytes per buffer); the loop adds it to the board's memory budget.
func (s *v4l2Source) BufferBytes() int64 { return s.bufferBytes }

// String names the device and its mode, e.g. "/dev/video0 YUYV 320x240 @ 30 fps".
func (s *v4l2Source) String() string { return s.path + " " + s.mode.String() }

// v4l2SortDevices orders /dev/videoN paths by N (video10 after video9).
func v4l2SortDevices(paths []string) {
	num := func(p string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(p, "/dev/video"))
		if err != nil {
			return math.MaxInt
		}
		return n
	}
	sort.SliceStable(paths, func(i, j int) bool { return num(paths[i]) < num(paths[j]) })
}
