package camera

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"time"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// v4l2Host is the real system: devices under /dev/video*.
var v4l2Host = v4l2System{open: openV4L2Webcam, list: listV4L2Webcams}

// v4l2Webcam is the thin ioctl layer: github.com/blackjack/webcam (pure Go,
// x/sys/unix, mmap streaming, single-planar capture only).
type v4l2Webcam struct{ cam *webcam.Webcam }

func openV4L2Webcam(path string) (v4l2Device, error) {
	cam, err := webcam.Open(path)
	if err != nil {
		return nil, v4l2OpenCause(err)
	}
	return &v4l2Webcam{cam: cam}, nil
}

// v4l2OpenCause sorts webcam.Open's errors into the ones the source
// explains; webcam reports capability problems as plain strings.
func v4l2OpenCause(err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return errV4L2NoDevice
	case errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EINVAL):
		return errV4L2NotV4L2
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%w (its ioctls are not implemented here; qemu-user does not emulate V4L2)", errV4L2NotV4L2)
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w (add the user to the video group)", err)
	case err.Error() == "Not a video capture device":
		return errV4L2NotCapture
	case err.Error() == "Device does not support the streaming I/O method":
		return fmt.Errorf("%w: no streaming I/O", errV4L2NotCapture)
	}
	return err
}

// listV4L2Webcams returns the capture devices present, "PATH (NAME)".
func listV4L2Webcams() []string {
	paths, _ := filepath.Glob("/dev/video*")
	v4l2SortDevices(paths)
	var cams []string
	for _, p := range paths {
		cam, err := webcam.Open(p)
		if err != nil {
			continue // metadata nodes, busy or foreign devices
		}
		if name, err := cam.GetName(); err == nil && name != "" {
			p += " (" + name + ")"
		}
		cam.Close()
		cams = append(cams, p)
	}
	return cams
}

func (w *v4l2Webcam) Formats() []v4l2FormatDesc {
	var fs []v4l2FormatDesc
	for code, desc := range w.cam.GetSupportedFormats() {
		fs = append(fs, v4l2FormatDesc{FourCC: uint32(code), Description: desc})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].FourCC < fs[j].FourCC })
	return fs
}

func (w *v4l2Webcam) FrameSizes(fourcc uint32) []v4l2SizeRange {
	var rs []v4l2SizeRange
	for _, s := range w.cam.GetSupportedFrameSizes(webcam.PixelFormat(fourcc)) {
		rs = append(rs, v4l2SizeRange{
			MinWidth: int(s.MinWidth), MaxWidth: int(s.MaxWidth), StepWidth: int(s.StepWidth),
			MinHeight: int(s.MinHeight), MaxHeight: int(s.MaxHeight), StepHeight: int(s.StepHeight),
		})
	}
	return rs
}

func (w *v4l2Webcam) FrameIntervals(fourcc uint32, width, height int) []v4l2IntervalRange {
	var rs []v4l2IntervalRange
	for _, r := range w.cam.GetSupportedFramerates(webcam.PixelFormat(fourcc), uint32(width), uint32(height)) {
		rs = append(rs, v4l2IntervalRange{
			Min:  v4l2Fraction{r.MinNumerator, r.MinDenominator},
			Max:  v4l2Fraction{r.MaxNumerator, r.MaxDenominator},
			Step: v4l2Fraction{r.StepNumerator, r.StepDenominator},
		})
	}
	return rs
}

// SetFormat returns the fourcc the driver chose. (webcam v0.6.1 returns
// the requested size, not the driver's, so the source checks every YUYV
// frame's length instead.)
func (w *v4l2Webcam) SetFormat(fourcc uint32, width, height int) (uint32, error) {
	got, _, _, err := w.cam.SetImageFormat(webcam.PixelFormat(fourcc), uint32(width), uint32(height))
	if errors.Is(err, unix.EBUSY) {
		return 0, fmt.Errorf("%w (another program is using the camera)", err)
	}
	return uint32(got), err
}

func (w *v4l2Webcam) SetFPS(fps float64) error { return w.cam.SetFramerate(float32(fps)) }

func (w *v4l2Webcam) Start(buffers int) error {
	if err := w.cam.SetBufferCount(uint32(buffers)); err != nil {
		return err
	}
	return w.cam.StartStreaming()
}

func (w *v4l2Webcam) WaitFrame(timeout time.Duration) error {
	secs := uint32(math.Ceil(timeout.Seconds())) // webcam polls in whole seconds
	err := w.cam.WaitForFrame(secs)
	if _, timedOut := err.(*webcam.Timeout); timedOut {
		return errV4L2Timeout
	}
	return err
}

func (w *v4l2Webcam) Dequeue() ([]byte, uint32, error) {
	data, index, err := w.cam.GetFrame()
	if errors.Is(err, unix.EAGAIN) {
		return nil, 0, errV4L2NoFrame
	}
	return data, index, err
}

func (w *v4l2Webcam) Enqueue(index uint32) error { return w.cam.ReleaseFrame(index) }

func (w *v4l2Webcam) Close() error { return w.cam.Close() }
