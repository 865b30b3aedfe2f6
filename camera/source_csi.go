package camera

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// The csi source: "csi://N" is camera N on the board's CSI connector,
// read without cgo through the vendor's capture program, supervised like
// pipe: (restarted with backoff when it dies):
//
//   - Raspberry Pi: rpicam-vid (libcamera-vid on older images) writing
//     I420 (--codec yuv420) or MJPEG (csi://N?codec=mjpeg) to stdout.
//   - Jetson: gst-launch-1.0 with nvarguscamerasrc, converted to I420 in
//     system memory by nvvidconv and written to stdout by fdsink.
//
// Size and rate come from Options (default 640×480 at 30 fps). For I420
// the width is rounded up to a multiple of 64 and the height to even:
// rpicam-vid's yuv420 output is the camera buffer as is, stride padding
// included (encoder/null_encoder.cpp in rpicam-apps), and libcamera pads
// rows to 64 bytes, so only such widths give packed frames.
// ?backend=rpicam|libcamera|jetson overrides the detection.

func init() { register("csi", openCSISource) }

// csiConfig is what the capture command is asked for.
type csiConfig struct {
	Camera        int
	Width, Height int
	FPS           float64
	Codec         string // "yuv420" or "mjpeg"
}

// rpicamArgs is the rpicam-vid (or libcamera-vid) argument list. Each
// option is in rpicam-apps' core/options.cpp and core/video_options.hpp
// and documented at
// https://www.raspberrypi.com/documentation/computers/camera_software.html:
// --camera N picks the camera, -t 0 (--timeout) runs until stopped, -n
// (--nopreview) opens no window, --codec yuv420|mjpeg selects raw I420 or
// MJPEG output, --width/--height/--framerate set the mode, --flush writes
// each frame out at once instead of buffering, and -o - writes to stdout.
func rpicamArgs(c csiConfig) []string {
	return []string{
		"--camera", strconv.Itoa(c.Camera),
		"-t", "0",
		"-n",
		"--codec", c.Codec,
		"--width", strconv.Itoa(c.Width),
		"--height", strconv.Itoa(c.Height),
		"--framerate", strconv.FormatFloat(c.FPS, 'g', -1, 64),
		"--flush",
		"-o", "-",
	}
}

// jetsonArgs is the gst-launch-1.0 pipeline for a Jetson CSI camera, as in
// NVIDIA's "Accelerated GStreamer" guide (Jetson Linux Developer Guide,
// Multimedia): nvarguscamerasrc sensor-id=N captures through libargus
// into NVMM memory at the caps' size and rate, nvvidconv converts to I420
// in system memory, and fdsink fd=1 (GStreamer coreelements: "Write data
// to a unix file descriptor", default fd 1) writes it to stdout. -q keeps
// gst-launch's own messages off stdout. The raw caps repeat the size so
// that nvvidconv scales rather than passes on a different sensor mode.
func jetsonArgs(c csiConfig) []string {
	rate := max(1, int(c.FPS+0.5))
	return []string{
		"-q",
		"nvarguscamerasrc", "sensor-id=" + strconv.Itoa(c.Camera),
		"!", fmt.Sprintf("video/x-raw(memory:NVMM),width=%d,height=%d,framerate=%d/1", c.Width, c.Height, rate),
		"!", "nvvidconv",
		"!", fmt.Sprintf("video/x-raw,width=%d,height=%d,format=I420", c.Width, c.Height),
		"!", "fdsink", "fd=1",
	}
}

// csiHost is what detection looks at; tests replace it.
type csiHost struct {
	fsys     fs.FS                                          // the root filesystem, for /proc/device-tree
	lookPath func(string) (string, error)                   // exec.LookPath
	hasGstEl func(ctx context.Context, element string) bool // gst-inspect-1.0 --exists
}

var defaultCSIHost = csiHost{fsys: os.DirFS("/"), lookPath: exec.LookPath, hasGstEl: gstElementExists}

func gstElementExists(ctx context.Context, element string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "gst-inspect-1.0", "--exists", element).Run() == nil
}

// isJetson reports an NVIDIA Tegra board by its device-tree compatible
// list (NUL-separated, e.g. "nvidia,p3767-0005\x00nvidia,tegra234").
func (h csiHost) isJetson() bool {
	compat, err := fs.ReadFile(h.fsys, "proc/device-tree/compatible")
	return err == nil && bytes.Contains(compat, []byte("nvidia,tegra"))
}

// csiBackend is a capture program found on this host.
type csiBackend struct {
	name string // rpicam, libcamera, jetson
	prog string // the program, for the log
	path string // what to execute
}

// findCSIBackend picks the capture program: the one asked for, else a
// Jetson's gst-launch-1.0 when the device tree says Tegra, else rpicam-vid,
// libcamera-vid, and last gst-launch-1.0 when nvarguscamerasrc exists.
func (h csiHost) findCSIBackend(want string) (csiBackend, error) {
	try := func(name, prog string) (csiBackend, bool) {
		p, err := h.lookPath(prog)
		return csiBackend{name: name, prog: prog, path: p}, err == nil
	}
	switch want {
	case "rpicam":
		if b, ok := try("rpicam", "rpicam-vid"); ok {
			return b, nil
		}
		return csiBackend{}, errors.New("backend=rpicam: rpicam-vid not found in PATH (Raspberry Pi OS package rpicam-apps)")
	case "libcamera":
		if b, ok := try("libcamera", "libcamera-vid"); ok {
			return b, nil
		}
		return csiBackend{}, errors.New("backend=libcamera: libcamera-vid not found in PATH (package libcamera-apps)")
	case "jetson":
		if b, ok := try("jetson", "gst-launch-1.0"); ok {
			return b, nil
		}
		return csiBackend{}, errors.New("backend=jetson: gst-launch-1.0 not found in PATH (JetPack's gstreamer1.0-tools)")
	}
	if h.isJetson() {
		if b, ok := try("jetson", "gst-launch-1.0"); ok {
			return b, nil
		}
	}
	if b, ok := try("rpicam", "rpicam-vid"); ok {
		return b, nil
	}
	if b, ok := try("libcamera", "libcamera-vid"); ok {
		return b, nil
	}
	if b, ok := try("jetson", "gst-launch-1.0"); ok && h.hasGstEl(context.Background(), "nvarguscamerasrc") {
		return b, nil
	}
	return csiBackend{}, errors.New("no CSI camera stack: none of rpicam-vid, libcamera-vid (Raspberry Pi) or gst-launch-1.0 with nvarguscamerasrc (Jetson) is installed")
}

func openCSISource(rest string, o Options) (Source, error) {
	return defaultCSIHost.open(rest, o)
}

func (h csiHost) open(rest string, o Options) (Source, error) {
	path, q, err := splitSourceQuery("csi", rest, "codec", "backend")
	if err != nil {
		return nil, err
	}
	// csi://N: rest is "//N"; csi:N is accepted too.
	if len(path) >= 2 && path[:2] == "//" {
		path = path[2:]
	}
	if path == "" {
		path = "0"
	}
	cam, err := strconv.Atoi(path)
	if err != nil || cam < 0 || cam > 15 {
		return nil, fmt.Errorf("camera %q: want a camera number, csi://0 or csi://1", path)
	}
	codec, err := q.str("codec", "yuv420", "yuv420", "mjpeg")
	if err != nil {
		return nil, err
	}
	want, err := q.str("backend", "", "rpicam", "libcamera", "jetson")
	if err != nil {
		return nil, err
	}
	c := csiConfig{Camera: cam, Width: 640, Height: 480, FPS: 30, Codec: codec}
	if o.Width > 0 && o.Height > 0 {
		c.Width, c.Height = o.Width, o.Height
	}
	if o.FPS > 0 {
		c.FPS = o.FPS
	}
	if c.Width > maxFrameSide || c.Height > maxFrameSide {
		return nil, fmt.Errorf("size %dx%d: want sides up to %d", c.Width, c.Height, maxFrameSide)
	}
	b, err := h.findCSIBackend(want)
	if err != nil {
		return nil, err
	}
	format := I420
	if codec == "mjpeg" {
		if b.name == "jetson" {
			return nil, errors.New("codec=mjpeg: only for rpicam-vid; the Jetson pipeline delivers I420")
		}
		format = MJPEG
	} else {
		c.Width, c.Height = (c.Width+63)&^63, (c.Height+1)&^1
	}
	args := rpicamArgs(c)
	if b.name == "jetson" {
		args = jetsonArgs(c)
	}
	uri := fmt.Sprintf("csi://%d", cam)
	s, err := newStreamSource(uri, format, c.Width, c.Height)
	if err != nil {
		return nil, err
	}
	if w, h := o.Width, o.Height; w > 0 && h > 0 && (w != c.Width || h != c.Height) {
		logf(o, "%s: asking %s for %dx%d (wanted %dx%d; I420 rows are padded to 64 bytes)", uri, b.prog, c.Width, c.Height, w, h)
	}
	s.timeout = o.sourceTimeout()
	s.sup = newSupervisor(uri, b.prog, append([]string{b.path}, args...), o)
	if err := s.sup.start(); err != nil {
		return nil, err
	}
	return s, nil
}
