package camera

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// OpenDefault opens the first camera this machine has and returns it with
// its URI: a V4L2 capture device (/dev/video0, /dev/video1, … through the
// v4l2 scheme, when this binary has it), else the CSI camera 0 when a
// capture program for it (rpicam-vid, libcamera-vid, or a Jetson's
// gst-launch-1.0 with nvarguscamerasrc) is installed. With neither it
// returns ErrNoCamera; the caller may then fall back to bundled:digits.
func OpenDefault(o Options) (Source, string, error) {
	return defaultCameraProbe().open(o)
}

// cameraProbe is what OpenDefault looks at; tests replace the parts.
type cameraProbe struct {
	fsys    fs.FS // the root filesystem: dev/video*, sys/class/video4linux
	csi     csiHost
	openURI func(uri string, o Options) (Source, error)
	has     func(scheme string) bool
}

func defaultCameraProbe() cameraProbe {
	return cameraProbe{
		fsys:    os.DirFS("/"),
		csi:     defaultCSIHost,
		openURI: Open,
		has:     func(s string) bool { _, ok := openers[s]; return ok },
	}
}

// nonCameraV4L2 are V4L2 drivers whose nodes are not cameras a program can
// read frames from directly: the Pi's codec, ISP and CSI receiver nodes
// (libcamera drives the latter), and a Jetson's raw-Bayer CSI nodes
// (nvarguscamerasrc drives those). Matched as substrings of the node name.
var nonCameraV4L2 = []string{"bcm2835-codec", "bcm2835-isp", "pispbe", "rpi-hevc-dec", "rpivid", "unicam", "rp1-cfe", "vi-output"}

func (p cameraProbe) open(o Options) (Source, string, error) {
	var tried []string
	if p.has("v4l2") {
		for _, dev := range p.videoDevices() {
			uri := "v4l2://" + dev
			s, err := p.openURI(uri, o)
			if err == nil {
				return s, uri, nil
			}
			tried = append(tried, fmt.Sprintf("%s (%v)", dev, err))
		}
	}
	if _, err := p.csi.findCSIBackend(""); err == nil {
		s, err := p.openURI("csi://0", o)
		if err == nil {
			return s, "csi://0", nil
		}
		tried = append(tried, fmt.Sprintf("csi://0 (%v)", err))
	}
	if len(tried) > 0 {
		return nil, "", fmt.Errorf("%w: tried %s", ErrNoCamera, strings.Join(tried, "; "))
	}
	return nil, "", ErrNoCamera
}

// videoDevices lists /dev/videoN in numeric order, leaving out the nodes
// whose driver (sys/class/video4linux/videoN/name) is not a camera.
func (p cameraProbe) videoDevices() []string {
	entries, err := fs.ReadDir(p.fsys, "dev")
	if err != nil {
		return nil
	}
	var nums []int
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "video")
		if i, err := strconv.Atoi(n); ok && err == nil && i >= 0 {
			nums = append(nums, i)
		}
	}
	slices.Sort(nums)
	var devs []string
	for _, i := range nums {
		name, err := fs.ReadFile(p.fsys, path.Join("sys/class/video4linux", "video"+strconv.Itoa(i), "name"))
		if err == nil && slices.ContainsFunc(nonCameraV4L2, func(d string) bool {
			return strings.Contains(string(name), d)
		}) {
			continue
		}
		devs = append(devs, "/dev/video"+strconv.Itoa(i))
	}
	return devs
}
