package camera

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeV4L2 is an in-memory V4L2 device: it lists modes like a real camera
// and runs the buffer queue the way the kernel does (a frame lands in a
// buffer queued to the driver, or is dropped when none is).
type fakeV4L2 struct {
	formats []v4l2FormatDesc
	sizes   map[uint32][]v4l2SizeRange
	rates   func(fourcc uint32, w, h int) []v4l2IntervalRange

	driverFourCC uint32 // SetFormat answers this when nonzero
	setFormatErr error
	startErr     error
	setFPSErr    error

	setFourCC    uint32
	setW, setH   int
	setFPS       float64
	buffers      int
	bufCap       int
	bufs         [][]byte
	driverOwns   []bool
	ready        []uint32
	produce      func(c *fakeV4L2) error // called by WaitFrame when nothing is ready
	dequeueErr   error
	badEnqueues  int
	closed       int
	waitsBlocked int
}

func (c *fakeV4L2) Formats() []v4l2FormatDesc { return c.formats }
func (c *fakeV4L2) FrameSizes(fourcc uint32) []v4l2SizeRange {
	return c.sizes[fourcc]
}
func (c *fakeV4L2) FrameIntervals(fourcc uint32, w, h int) []v4l2IntervalRange {
	if c.rates == nil {
		return nil
	}
	return c.rates(fourcc, w, h)
}
func (c *fakeV4L2) SetFormat(fourcc uint32, w, h int) (uint32, error) {
	if c.setFormatErr != nil {
		return 0, c.setFormatErr
	}
	c.setFourCC, c.setW, c.setH = fourcc, w, h
	if c.driverFourCC != 0 {
		return c.driverFourCC, nil
	}
	return fourcc, nil
}
func (c *fakeV4L2) SetFPS(fps float64) error { c.setFPS = fps; return c.setFPSErr }
func (c *fakeV4L2) Start(n int) error {
	if c.startErr != nil {
		return c.startErr
	}
	c.buffers = n
	size := c.bufCap
	if size == 0 {
		size = c.setW * c.setH * 2
	}
	c.bufs = make([][]byte, n)
	c.driverOwns = make([]bool, n)
	c.ready = make([]uint32, 0, n)
	for i := range c.bufs {
		c.bufs[i] = make([]byte, 0, size)
		c.driverOwns[i] = true
	}
	return nil
}

// capture is the camera producing a frame; false when it was dropped.
func (c *fakeV4L2) capture(data []byte) bool {
	for i, owned := range c.driverOwns {
		if owned {
			c.bufs[i] = append(c.bufs[i][:0], data...)
			c.driverOwns[i] = false
			c.ready = append(c.ready, uint32(i))
			return true
		}
	}
	return false
}

func (c *fakeV4L2) WaitFrame(time.Duration) error {
	if c.closed > 0 {
		return errors.New("bad file descriptor")
	}
	if len(c.ready) == 0 && c.produce != nil {
		if err := c.produce(c); err != nil {
			return err
		}
	}
	if len(c.ready) == 0 && c.dequeueErr == nil {
		return errV4L2Timeout
	}
	return nil
}

func (c *fakeV4L2) Dequeue() ([]byte, uint32, error) {
	if c.dequeueErr != nil {
		return nil, 0, c.dequeueErr
	}
	if len(c.ready) == 0 {
		return nil, 0, errV4L2NoFrame
	}
	i := c.ready[0]
	copy(c.ready, c.ready[1:])
	c.ready = c.ready[:len(c.ready)-1]
	return c.bufs[i], i, nil
}

func (c *fakeV4L2) Enqueue(i uint32) error {
	if int(i) >= len(c.bufs) || c.driverOwns[i] {
		c.badEnqueues++
		return fmt.Errorf("enqueue %d: not dequeued", i)
	}
	for _, r := range c.ready {
		if r == i {
			c.badEnqueues++
			return fmt.Errorf("enqueue %d: still ready", i)
		}
	}
	c.driverOwns[i] = true
	return nil
}

func (c *fakeV4L2) Close() error { c.closed++; return nil }

// userOwned counts buffers the source holds (dequeued, not requeued).
func (c *fakeV4L2) userOwned() int {
	n := 0
	for i, owned := range c.driverOwns {
		if owned {
			continue
		}
		isReady := false
		for _, r := range c.ready {
			isReady = isReady || int(r) == i
		}
		if !isReady {
			n++
		}
	}
	return n
}

func discrete(w, h int) v4l2SizeRange {
	return v4l2SizeRange{MinWidth: w, MaxWidth: w, MinHeight: h, MaxHeight: h}
}

// rates turns frame rates into discrete intervals (7.5 fps = 2/15 s).
func rates(fps ...float64) []v4l2IntervalRange {
	var rs []v4l2IntervalRange
	for _, r := range fps {
		f := v4l2Fraction{Num: 1, Den: uint32(r)}
		if r != math.Trunc(r) {
			f = v4l2Fraction{Num: 2, Den: uint32(2 * r)}
		}
		rs = append(rs, v4l2IntervalRange{Min: f, Max: f})
	}
	return rs
}

// c920 lists a Logitech HD Pro Webcam C920 as uvcvideo reports it. Sizes:
// the ffmpeg -list_formats output quoted at
// https://mras2an.webnode.fr/embedded-linux/commandes-utiles/v4l/ (YUYV up
// to 2304x1536, MJPEG and H.264 up to 1920x1080). Rates: MJPEG runs every
// size at 30 fps; YUYV rates fall with size so that w·h·2·fps stays under
// USB 2.0's isochronous limit (640x480@30, 1280x720@10, 1920x1080@5).
func c920() *fakeV4L2 {
	sizes := func(ss ...[2]int) []v4l2SizeRange {
		var rs []v4l2SizeRange
		for _, s := range ss {
			rs = append(rs, discrete(s[0], s[1]))
		}
		return rs
	}
	common := [][2]int{{640, 480}, {160, 90}, {160, 120}, {176, 144}, {320, 180}, {320, 240}, {352, 288},
		{432, 240}, {640, 360}, {800, 448}, {800, 600}, {864, 480}, {960, 720}, {1024, 576}, {1280, 720},
		{1600, 896}, {1920, 1080}}
	yuyvMax := map[[2]int]float64{{800, 600}: 24, {864, 480}: 24, {960, 720}: 15, {1024, 576}: 15,
		{1280, 720}: 10, {1600, 896}: 7.5, {1920, 1080}: 5, {2304, 1296}: 2, {2304, 1536}: 2}
	all := []float64{30, 24, 20, 15, 10, 7.5, 5}
	return &fakeV4L2{
		formats: []v4l2FormatDesc{
			{v4l2FourCCYUYV, "YUYV 4:2:2"},
			{'H' | '2'<<8 | '6'<<16 | '4'<<24, "H.264"},
			{v4l2FourCCMJPG, "Motion-JPEG"},
		},
		sizes: map[uint32][]v4l2SizeRange{
			v4l2FourCCYUYV: sizes(append(common, [2]int{2304, 1296}, [2]int{2304, 1536})...),
			v4l2FourCCMJPG: sizes(common...),
		},
		rates: func(fourcc uint32, w, h int) []v4l2IntervalRange {
			if fourcc != v4l2FourCCYUYV {
				return rates(all...)
			}
			max, ok := yuyvMax[[2]int{w, h}]
			if !ok {
				max = 30
			}
			var rs []float64
			for _, r := range all {
				if r <= max {
					rs = append(rs, r)
				}
			}
			if max < 5 {
				rs = []float64{max}
			}
			return rates(rs...)
		},
	}
}

// mjpegOnly is a cheap UVC camera (the common "USB 2.0 Camera" modules
// sold for Raspberry Pis) that offers nothing but MJPEG.
func mjpegOnly() *fakeV4L2 {
	r := map[[2]int][]float64{
		{1920, 1080}: {30}, {1280, 720}: {60, 30}, {1024, 768}: {30},
		{800, 600}: {60, 30}, {640, 480}: {120, 60, 30}, {320, 240}: {120, 60, 30},
	}
	var sizes []v4l2SizeRange
	for _, s := range [][2]int{{1920, 1080}, {1280, 720}, {1024, 768}, {800, 600}, {640, 480}, {320, 240}} {
		sizes = append(sizes, discrete(s[0], s[1]))
	}
	return &fakeV4L2{
		formats: []v4l2FormatDesc{{v4l2FourCCMJPG, "Motion-JPEG"}},
		sizes:   map[uint32][]v4l2SizeRange{v4l2FourCCMJPG: sizes},
		rates: func(_ uint32, w, h int) []v4l2IntervalRange {
			return rates(r[[2]int{w, h}]...)
		},
	}
}

// stepwiseCam reports sizes and intervals as ranges, as the Raspberry Pi's
// bcm2835-v4l2 driver does (32x32 to 2592x1944 in steps of 2).
func stepwiseCam() *fakeV4L2 {
	sr := []v4l2SizeRange{{MinWidth: 32, MaxWidth: 2592, StepWidth: 2, MinHeight: 32, MaxHeight: 1944, StepHeight: 2}}
	return &fakeV4L2{
		formats: []v4l2FormatDesc{{'Y' | 'U'<<8 | '1'<<16 | '2'<<24, "Planar YUV 4:2:0"}, {v4l2FourCCYUYV, "YUYV 4:2:2"}, {v4l2FourCCJPEG, "JFIF JPEG"}},
		sizes:   map[uint32][]v4l2SizeRange{v4l2FourCCYUYV: sr, v4l2FourCCJPEG: sr},
		rates: func(uint32, int, int) []v4l2IntervalRange {
			return []v4l2IntervalRange{{Min: v4l2Fraction{1, 90}, Max: v4l2Fraction{1, 1}, Step: v4l2Fraction{1, 1000000}}}
		},
	}
}

func TestV4L2ChooseMode(t *testing.T) {
	tests := []struct {
		name   string
		cam    func() *fakeV4L2
		o      Options
		fourcc uint32
		w, h   int
		fps    float64
	}{
		{"c920 model input 224", c920, Options{Width: 224, Height: 224, FPS: 30}, v4l2FourCCYUYV, 320, 240, 30},
		{"c920 VGA 30", c920, Options{Width: 640, Height: 480, FPS: 30}, v4l2FourCCYUYV, 640, 480, 30},
		{"c920 defaults", c920, Options{}, v4l2FourCCYUYV, 640, 480, 30},
		{"c920 tiny picks smallest covering", c920, Options{Width: 28, Height: 28, FPS: 15}, v4l2FourCCYUYV, 160, 90, 15},
		{"c920 720p30 needs MJPEG", c920, Options{Width: 1280, Height: 720, FPS: 30}, v4l2FourCCMJPG, 1280, 720, 30},
		{"c920 720p10 fits YUYV", c920, Options{Width: 1280, Height: 720, FPS: 10}, v4l2FourCCYUYV, 1280, 720, 10},
		{"c920 1080p fastest", c920, Options{Width: 1920, Height: 1080}, v4l2FourCCMJPG, 1920, 1080, 30},
		{"c920 odd size rounds up", c920, Options{Width: 1000, Height: 700, FPS: 25}, v4l2FourCCMJPG, 1280, 720, 24},
		{"c920 too big at 30 takes MJPEG largest", c920, Options{Width: 4000, Height: 3000, FPS: 30}, v4l2FourCCMJPG, 1920, 1080, 30},
		{"c920 too big at 2 takes YUYV largest", c920, Options{Width: 4000, Height: 3000, FPS: 2}, v4l2FourCCYUYV, 2304, 1536, 2},
		{"c920 MJPEG asked for", c920, Options{Width: 224, Height: 224, FPS: 30, Format: MJPEG}, v4l2FourCCMJPG, 320, 240, 30},
		{"mjpeg-only 224", mjpegOnly, Options{Width: 224, Height: 224, FPS: 30}, v4l2FourCCMJPG, 320, 240, 30},
		{"mjpeg-only VGA 60", mjpegOnly, Options{Width: 640, Height: 480, FPS: 60}, v4l2FourCCMJPG, 640, 480, 60},
		{"mjpeg-only fastest", mjpegOnly, Options{Width: 640, Height: 480}, v4l2FourCCMJPG, 640, 480, 120},
		{"mjpeg-only tie takes faster", mjpegOnly, Options{Width: 1280, Height: 720, FPS: 45}, v4l2FourCCMJPG, 1280, 720, 60},
		{"mjpeg-only YUYV asked for", mjpegOnly, Options{Width: 640, Height: 480, FPS: 30, Format: YUYV}, v4l2FourCCMJPG, 640, 480, 30},
		{"stepwise rounds up to step", stepwiseCam, Options{Width: 225, Height: 223, FPS: 25}, v4l2FourCCYUYV, 226, 224, 25},
		{"stepwise clamps to min", stepwiseCam, Options{Width: 10, Height: 10, FPS: 200}, v4l2FourCCYUYV, 32, 32, 90},
		{"stepwise too big", stepwiseCam, Options{Width: 3000, Height: 2000, FPS: 2}, v4l2FourCCYUYV, 2592, 1944, 2},
		{"stepwise JPEG asked for", stepwiseCam, Options{Width: 224, Height: 224, FPS: 30, Format: MJPEG}, v4l2FourCCJPEG, 224, 224, 30},
		{"stepwise big and fast takes JPEG", stepwiseCam, Options{Width: 1920, Height: 1080, FPS: 30}, v4l2FourCCJPEG, 1920, 1080, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := chooseV4L2Mode(tt.cam(), tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if m.FourCC != tt.fourcc || m.Width != tt.w || m.Height != tt.h || math.Abs(m.FPS-tt.fps) > 0.01 {
				t.Errorf("got %s, want %s", m, v4l2Mode{tt.fourcc, tt.w, tt.h, tt.fps})
			}
		})
	}
}

func TestV4L2ChooseModeErrors(t *testing.T) {
	grey := uint32('G' | 'R'<<8 | 'E'<<16 | 'Y'<<24)
	h264 := uint32('H' | '2'<<8 | '6'<<16 | '4'<<24)
	tests := []struct {
		name string
		cam  *fakeV4L2
		want string
	}{
		{"nothing decodable", &fakeV4L2{formats: []v4l2FormatDesc{{grey, "8-bit Greyscale"}, {h264, "H.264"}}},
			"camera offers GREY (8-bit Greyscale), H264 (H.264); vggedge decodes YUYV and MJPG"},
		{"no formats", &fakeV4L2{}, "camera lists no pixel formats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chooseV4L2Mode(tt.cam, Options{Width: 224, Height: 224})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestV4L2ChooseSizeWithoutList(t *testing.T) {
	// webcam v0.6.1 turns CONTINUOUS ranges into zero sizes: the wanted
	// size goes to the driver, which adjusts it.
	w, h, covers := v4l2ChooseSize([]v4l2SizeRange{{}}, 224, 224)
	if w != 224 || h != 224 || !covers {
		t.Fatalf("got %dx%d covers=%v, want 224x224 true", w, h, covers)
	}
	if fps := v4l2ChooseFPS(nil, 30); fps != 0 {
		t.Fatalf("fps without a list = %v, want 0", fps)
	}
}

func TestV4L2SortDevices(t *testing.T) {
	got := []string{"/dev/video10", "/dev/video2", "/dev/video0", "/dev/video1"}
	v4l2SortDevices(got)
	if want := "/dev/video0 /dev/video1 /dev/video2 /dev/video10"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

// yuyvFrame is a w×h YUYV picture whose first byte is tag.
func yuyvFrame(w, h int, tag byte) []byte {
	b := bytes.Repeat([]byte{16, 128, 16, 128}, w*h/2)
	b[0] = tag
	return b
}

// startFake opens a source on cam as if it were /dev/video0.
func startFake(t *testing.T, cam *fakeV4L2, o Options) *v4l2Source {
	t.Helper()
	s, err := openV4L2With("///dev/video0", o, v4l2System{
		open: func(string) (v4l2Device, error) { return cam, nil },
		list: func() []string { return []string{"/dev/video0"} },
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestV4L2ReadDeliversNewestFrame(t *testing.T) {
	cam := mjpegOnly()
	cam.formats = append(cam.formats, v4l2FormatDesc{v4l2FourCCYUYV, "YUYV"})
	cam.sizes[v4l2FourCCYUYV] = []v4l2SizeRange{discrete(320, 240)}
	s := startFake(t, cam, Options{Width: 224, Height: 224, FPS: 30})
	if cam.setFourCC != v4l2FourCCYUYV || cam.setW != 320 || cam.setH != 240 || cam.setFPS != 30 || cam.buffers != v4l2Buffers {
		t.Fatalf("device set to %s %dx%d @ %v, %d buffers", v4l2FourCCString(cam.setFourCC), cam.setW, cam.setH, cam.setFPS, cam.buffers)
	}
	if !IsLive(s) {
		t.Error("v4l2 source is not live")
	}
	if got, want := s.BufferBytes(), int64(v4l2Buffers*320*240*2); got != want {
		t.Errorf("BufferBytes = %d, want %d", got, want)
	}
	// The camera runs ahead of the consumer: three frames are waiting
	// (one more than fits is dropped by the driver) and Read must skip
	// to the newest.
	tag := byte(0)
	cam.produce = func(c *fakeV4L2) error {
		for range 4 {
			tag++
			c.capture(yuyvFrame(320, 240, tag))
		}
		return nil
	}
	var f Frame
	var last time.Time
	for i := range 3 {
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
		if f.Seq != uint64(i) || f.Format != YUYV || f.Width != 320 || f.Height != 240 || f.Label != -1 || len(f.Data) != 320*240*2 {
			t.Fatalf("frame %d: seq %d %s %dx%d label %d, %d bytes", i, f.Seq, f.Format, f.Width, f.Height, f.Label, len(f.Data))
		}
		// Frames 4i+1..4i+3 landed in the three buffers, 4i+4 was dropped.
		if want := byte(4*i + 3); f.Data[0] != want {
			t.Errorf("frame %d: got frame tagged %d, want the newest, %d", i, f.Data[0], want)
		}
		if f.Time.IsZero() || f.Time.Before(last) {
			t.Errorf("frame %d: time %v after %v", i, f.Time, last)
		}
		last = f.Time
		if n := cam.userOwned(); n != 0 || cam.badEnqueues != 0 {
			t.Fatalf("after Read: %d buffers not returned, %d bad enqueues", n, cam.badEnqueues)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil || cam.closed != 1 {
		t.Fatalf("second Close: %v, device closed %d times", err, cam.closed)
	}
	if err := s.Read(&f); err == nil || !strings.Contains(err.Error(), "read after close") {
		t.Fatalf("Read after Close: %v", err)
	}
}

func TestV4L2ReadSkipsBrokenFrames(t *testing.T) {
	jpegLike := append([]byte{0xFF, 0xD8, 0xFF, 0xDB}, make([]byte, 100)...)
	tests := []struct {
		name    string
		format  PixelFormat
		frames  [][]byte // delivered one per wait, cycling
		wantErr string
		want    []byte
	}{
		{"short YUYV then good", YUYV, [][]byte{make([]byte, 1000), yuyvFrame(320, 240, 7)}, "", yuyvFrame(320, 240, 7)},
		{"padded YUYV is trimmed", YUYV, [][]byte{append(yuyvFrame(320, 240, 9), 1, 2, 3)}, "", yuyvFrame(320, 240, 9)},
		{"empty MJPEG then good", MJPEG, [][]byte{{}, jpegLike}, "", jpegLike},
		{"only garbage", MJPEG, [][]byte{{0, 0, 0, 0, 0}}, "v4l2 /dev/video0: 30 unusable frames in a row (last 5 bytes, want a JPEG starting with FF D8)", nil},
		{"only short YUYV", YUYV, [][]byte{make([]byte, 10)}, "v4l2 /dev/video0: 30 unusable frames in a row (last 10 bytes, want 153600 for YUYV 320x240)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cam := c920()
			cam.bufCap = 320*240*2 + 16
			s := startFake(t, cam, Options{Width: 320, Height: 240, FPS: 30, Format: tt.format})
			defer s.Close()
			next := 0
			cam.produce = func(c *fakeV4L2) error {
				c.capture(tt.frames[next%len(tt.frames)])
				next++
				return nil
			}
			var f Frame
			err := s.Read(&f)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Data, tt.want) || f.Format != tt.format {
				t.Fatalf("got %s %d bytes, want %s %d bytes", f.Format, len(f.Data), tt.format, len(tt.want))
			}
			if cam.userOwned() != 0 {
				t.Fatal("buffer not returned")
			}
		})
	}
}

func TestV4L2ReadErrors(t *testing.T) {
	unplugged := errors.New("no such device")
	tests := []struct {
		name    string
		setup   func(c *fakeV4L2)
		want    string
		wantErr error
	}{
		{"unplugged mid-run", func(c *fakeV4L2) { c.dequeueErr = unplugged }, "v4l2 /dev/video0: read frame: no such device", unplugged},
		{"poll fails", func(c *fakeV4L2) {
			c.produce = func(*fakeV4L2) error { return unplugged }
		}, "v4l2 /dev/video0: wait for frame: no such device", unplugged},
		{"stalled", func(c *fakeV4L2) {}, "v4l2 /dev/video0: no frame for 5s (camera stalled or unplugged)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cam := c920()
			s := startFake(t, cam, Options{Width: 640, Height: 480})
			defer s.Close()
			tt.setup(cam)
			var f Frame
			err := s.Read(&f)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("%v does not wrap %v", err, tt.wantErr)
			}
		})
	}
}

func TestV4L2CloseUnblocksRead(t *testing.T) {
	cam := c920()
	s := startFake(t, cam, Options{Width: 640, Height: 480})
	s.stall = time.Hour
	var once sync.Once
	waiting := make(chan struct{})
	cam.produce = func(*fakeV4L2) error {
		once.Do(func() { close(waiting) })
		time.Sleep(time.Millisecond) // a poll step that sees no frame
		return nil
	}
	done := make(chan error, 1)
	go func() {
		var f Frame
		done <- s.Read(&f)
	}()
	<-waiting
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "read after close") {
			t.Fatalf("Read returned %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Read still blocked a minute after Close")
	}
}

func TestV4L2ReadAllocatesNothing(t *testing.T) {
	cam := c920()
	s := startFake(t, cam, Options{Width: 320, Height: 240, FPS: 30})
	defer s.Close()
	frame := yuyvFrame(320, 240, 1)
	cam.produce = func(c *fakeV4L2) error {
		c.capture(frame)
		c.capture(frame)
		return nil
	}
	var f Frame
	if err := s.Read(&f); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Read allocates %v times per frame, want 0", allocs)
	}
}

func TestV4L2OpenErrors(t *testing.T) {
	fakeSys := func(openErr error, cams ...string) v4l2System {
		return v4l2System{
			open: func(string) (v4l2Device, error) {
				if openErr != nil {
					return nil, openErr
				}
				return c920(), nil
			},
			list: func() []string { return cams },
		}
	}
	tests := []struct {
		name    string
		rest    string
		sys     v4l2System
		want    string
		wantErr error
	}{
		{"missing, others here", "///dev/video9", fakeSys(errV4L2NoDevice, "/dev/video0 (HD Pro Webcam C920)"),
			"v4l2 /dev/video9: no such device; cameras here: /dev/video0 (HD Pro Webcam C920)", errV4L2NoDevice},
		{"missing, none here", "///dev/video9", fakeSys(errV4L2NoDevice), "v4l2 /dev/video9: no such device; no cameras found", errV4L2NoDevice},
		{"metadata node", "/dev/video1", fakeSys(errV4L2NotCapture, "/dev/video0"),
			"v4l2 /dev/video1: not a video capture device (UVC cameras also create metadata nodes); cameras here: /dev/video0", errV4L2NotCapture},
		{"not v4l2", "3", fakeSys(errV4L2NotV4L2), "v4l2 /dev/video3: not a V4L2 device; no cameras found", errV4L2NotV4L2},
		{"permission", "///dev/video0", fakeSys(os.ErrPermission), "v4l2 /dev/video0: open: permission denied", os.ErrPermission},
		{"default without cameras", "//", fakeSys(nil), "v4l2: no camera found (no capture device under /dev/video*)", ErrNoCamera},
		{"bad path", "//video0", fakeSys(nil), `v4l2 "video0": want v4l2:///dev/videoN or v4l2:N`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openV4L2With(tt.rest, Options{}, tt.sys)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("%v does not wrap %v", err, tt.wantErr)
			}
		})
	}
}

func TestV4L2OpenConfigErrors(t *testing.T) {
	busy := errors.New("device or resource busy")
	tests := []struct {
		name  string
		setup func(c *fakeV4L2)
		want  string
	}{
		{"set format busy", func(c *fakeV4L2) { c.setFormatErr = busy }, "v4l2 /dev/video0: set format YUYV 640x480 @ 30 fps: device or resource busy"},
		{"driver swaps format", func(c *fakeV4L2) { c.driverFourCC = 'H' | '2'<<8 | '6'<<16 | '4'<<24 },
			"v4l2 /dev/video0: asked for YUYV 640x480 @ 30 fps, driver chose H264"},
		{"streaming fails", func(c *fakeV4L2) { c.startErr = busy }, "v4l2 /dev/video0: start streaming YUYV 640x480 @ 30 fps: device or resource busy"},
		{"no decodable format", func(c *fakeV4L2) { c.formats = c.formats[1:2] }, "v4l2 /dev/video0: camera offers H264 (H.264); vggedge decodes YUYV and MJPG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cam := c920()
			tt.setup(cam)
			_, err := openV4L2With("///dev/video0", Options{}, v4l2System{
				open: func(string) (v4l2Device, error) { return cam, nil },
				list: func() []string { return nil },
			})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if cam.closed != 1 {
				t.Fatalf("device closed %d times after a failed open, want 1", cam.closed)
			}
		})
	}
}

func TestV4L2SetFPSFailureIsLogged(t *testing.T) {
	cam := c920()
	cam.setFPSErr = errors.New("inappropriate ioctl for device")
	var logs []string
	s := startFake(t, cam, Options{Width: 640, Height: 480, FPS: 30, Logf: func(format string, args ...any) {
		logs = append(logs, fmt.Sprintf(format, args...))
	}})
	defer s.Close()
	want := []string{
		"v4l2 /dev/video0: cannot set 30 fps: inappropriate ioctl for device",
		"v4l2 /dev/video0: YUYV 640x480 @ 30 fps (wanted 640x480 @ 30 fps)",
	}
	if strings.Join(logs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logs:\n%s\nwant:\n%s", strings.Join(logs, "\n"), strings.Join(want, "\n"))
	}
}

// TestV4L2HostErrors opens real paths through the real ioctl layer: a
// device that does not exist and a character device that is not V4L2.
func TestV4L2HostErrors(t *testing.T) {
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	tests := []struct {
		uri  string
		want string
	}{
		{"v4l2:///dev/video987", "v4l2 /dev/video987: no such device; "},
		{"v4l2:///dev/null", "v4l2 /dev/null: not a V4L2 device"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			_, err := Open(tt.uri, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		})
	}
}

// TestV4L2RealFrames pushes frames ffmpeg encodes the way UVC cameras
// send them (packed YUYV, and MJPEG) through the source and checks they
// arrive byte for byte and that the MJPEG ones decode to the mode's size.
func TestV4L2RealFrames(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	const w, h = 320, 240
	encode := func(args ...string) []byte {
		t.Helper()
		args = append([]string{"-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30", w, h), "-frames:v", "1"}, args...)
		out, err := exec.Command(ffmpeg, append(args, "-")...).Output()
		if err != nil {
			t.Fatalf("ffmpeg %v: %v", args, err)
		}
		return out
	}
	tests := []struct {
		format PixelFormat
		frame  []byte
	}{
		{YUYV, encode("-f", "rawvideo", "-pix_fmt", "yuyv422")},
		{MJPEG, encode("-f", "mjpeg", "-pix_fmt", "yuvj422p")},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			cam := c920()
			s := startFake(t, cam, Options{Width: w, Height: h, FPS: 30, Format: tt.format})
			defer s.Close()
			cam.produce = func(c *fakeV4L2) error { c.capture(tt.frame); return nil }
			var f Frame
			if err := s.Read(&f); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Data, tt.frame) || f.Format != tt.format || f.Width != w || f.Height != h {
				t.Fatalf("got %s %dx%d %d bytes, want %s %dx%d %d bytes", f.Format, f.Width, f.Height, len(f.Data), tt.format, w, h, len(tt.frame))
			}
			if tt.format == MJPEG {
				cfg, err := jpeg.DecodeConfig(bytes.NewReader(f.Data))
				if err != nil || cfg.Width != w || cfg.Height != h {
					t.Fatalf("MJPEG frame: %v, %dx%d", err, cfg.Width, cfg.Height)
				}
			}
		})
	}
}

// FuzzV4L2ChooseSize feeds arbitrary size ranges: the choice never panics
// and always lies inside one of the ranges (or is the wanted size when the
// list has nothing usable).
func FuzzV4L2ChooseSize(f *testing.F) {
	f.Add(32, 2592, 2, 32, 1944, 2, 225, 223)
	f.Add(640, 640, 0, 480, 480, 0, 224, 224)
	f.Add(0, 0, 0, 0, 0, 0, 1, 1)
	f.Add(100, 50, -3, 100, 50, 7, 1<<30, -5)
	f.Fuzz(func(t *testing.T, minW, maxW, stepW, minH, maxH, stepH, wantW, wantH int) {
		r := v4l2SizeRange{minW, maxW, stepW, minH, maxH, stepH}
		w, h, _ := v4l2ChooseSize([]v4l2SizeRange{r}, wantW, wantH)
		sane := func(min, max, step int) bool {
			return 0 < min && min <= max && max <= 1<<16 && 0 <= step && step <= 1<<16
		}
		if !sane(minW, maxW, stepW) || !sane(minH, maxH, stepH) {
			if w != wantW || h != wantH {
				t.Fatalf("unusable range %+v: got %dx%d, want the wanted %dx%d", r, w, h, wantW, wantH)
			}
			return
		}
		if w < minW || w > maxW || h < minH || h > maxH {
			t.Fatalf("range %+v want %dx%d: chose %dx%d outside it", r, wantW, wantH, w, h)
		}
		if stepW > 0 && (w-minW)%stepW != 0 && w != maxW {
			t.Fatalf("range %+v: width %d is off the step", r, w)
		}
	})
}

// TestGoCVWithoutOpenCV: the default (CGO_ENABLED=0) build still knows the
// gocv scheme and says how to get it.
func TestGoCVWithoutOpenCV(t *testing.T) {
	if gocvBuilt {
		t.Skip("built with -tags gocv")
	}
	_, err := Open("gocv:0", Options{})
	want := "source gocv:0: this vggedge was built without OpenCV; rebuild with -tags gocv (needs libopencv-dev)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}
