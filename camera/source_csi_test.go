package camera

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestRPicamArgs(t *testing.T) {
	// Each option as rpicam-apps defines it (core/options.cpp,
	// core/video_options.hpp): camera index, timeout 0 = run forever, no
	// preview, raw I420 or MJPEG, mode, flush per frame, stdout.
	for _, tc := range []struct {
		c    csiConfig
		want string
	}{
		{csiConfig{0, 640, 480, 30, "yuv420"}, "--camera 0 -t 0 -n --codec yuv420 --width 640 --height 480 --framerate 30 --flush -o -"},
		{csiConfig{1, 1280, 720, 12.5, "mjpeg"}, "--camera 1 -t 0 -n --codec mjpeg --width 1280 --height 720 --framerate 12.5 --flush -o -"},
	} {
		if got := strings.Join(rpicamArgs(tc.c), " "); got != tc.want {
			t.Errorf("rpicamArgs(%+v):\n got %s\nwant %s", tc.c, got, tc.want)
		}
	}
}

func TestJetsonArgs(t *testing.T) {
	got := jetsonArgs(csiConfig{1, 1280, 720, 29.97, "yuv420"})
	want := []string{
		"-q",
		"nvarguscamerasrc", "sensor-id=1",
		"!", "video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1",
		"!", "nvvidconv",
		"!", "video/x-raw,width=1280,height=720,format=I420",
		"!", "fdsink", "fd=1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("jetsonArgs:\n got %q\nwant %q", got, want)
	}
}

// standIn writes an executable shell script called name into dir. It
// checks its arguments against want, then runs body.
func standIn(t *testing.T, dir, name string, want []string, body string) {
	t.Helper()
	var quoted []string
	for _, a := range want {
		quoted = append(quoted, "'"+a+"'")
	}
	script := "#!/bin/sh\n" +
		"set -- \"$@\"\n" +
		"want=$(printf '%s\\n' " + strings.Join(quoted, " ") + ")\n" +
		"got=$(printf '%s\\n' \"$@\")\n" +
		"if [ \"$got\" != \"$want\" ]; then echo \"" + name + ": unexpected arguments: $*\" >&2; exit 2; fi\n" +
		body + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// withPath puts dir first in PATH for the test.
func withPath(t *testing.T, dir string) {
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// noGst is a csiHost probe that finds no nvarguscamerasrc.
func noGst(context.Context, string) bool { return false }

// csi://0 through the code path that runs the real rpicam-vid: a stand-in
// rpicam-vid first in PATH checks the arguments and writes ffmpeg-made
// frames, raw I420 and MJPEG.
func TestCSISourceRPicamStandIn(t *testing.T) {
	yuv, mj := ffmpegFixture(t, false), ffmpegFixture(t, true)
	for _, tc := range []struct {
		name, uri, codec, fixture string
	}{
		{"yuv420", "csi://0", "yuv420", yuv},
		{"mjpeg", "csi://0?codec=mjpeg", "mjpeg", mj},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			standIn(t, dir, "rpicam-vid", rpicamArgs(csiConfig{0, 64, 48, 30, tc.codec}), "cat '"+tc.fixture+"'\nexec sleep 600")
			withPath(t, dir)
			s, err := Open(tc.uri, Options{Width: 64, Height: 48, FPS: 30})
			if err != nil {
				t.Fatal(err)
			}
			if tc.codec == "mjpeg" {
				checkMJPEGFrames(t, s, tc.fixture, 10)
			} else {
				checkRawFrames(t, s, tc.fixture, 10, 64, 48)
			}
			pid := s.(*streamSource).sup.pid()
			s.Close()
			if !gone(pid) {
				t.Errorf("stand-in rpicam-vid %d still exists after Close", pid)
			}
		})
	}
}

// Only libcamera-vid (older Raspberry Pi OS): it is used with the same
// arguments.
func TestCSISourceLibcameraFallback(t *testing.T) {
	yuv := ffmpegFixture(t, false)
	dir := t.TempDir()
	standIn(t, dir, "libcamera-vid", rpicamArgs(csiConfig{1, 64, 48, 15, "yuv420"}), "cat '"+yuv+"'\nexec sleep 600")
	h := csiHost{fsys: fstest.MapFS{}, lookPath: func(p string) (string, error) {
		if p == "libcamera-vid" {
			return filepath.Join(dir, p), nil
		}
		return "", exec.ErrNotFound
	}, hasGstEl: noGst}
	s, err := h.open("//1", Options{Width: 64, Height: 48, FPS: 15})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkRawFrames(t, s, yuv, 3, 64, 48)
}

// On a Jetson (device tree says Tegra) csi://0 runs the gst-launch-1.0
// pipeline; a stand-in checks the pipeline and writes I420 frames.
func TestCSISourceJetsonStandIn(t *testing.T) {
	yuv := ffmpegFixture(t, false)
	dir := t.TempDir()
	standIn(t, dir, "gst-launch-1.0", jetsonArgs(csiConfig{0, 64, 48, 30, "yuv420"}), "cat '"+yuv+"'\nexec sleep 600")
	withPath(t, dir)
	h := csiHost{
		fsys:     fstest.MapFS{"proc/device-tree/compatible": {Data: []byte("nvidia,p3767-0005\x00nvidia,tegra234\x00")}},
		lookPath: exec.LookPath,
		hasGstEl: noGst,
	}
	s, err := h.open("//0", Options{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkRawFrames(t, s, yuv, 10, 64, 48)
}

// A camera program that dies after 10 frames is restarted; the reader
// sees frames on, numbered on, and the log says why.
func TestCSISourceRestartsExitedCamera(t *testing.T) {
	yuv := ffmpegFixture(t, false)
	dir := t.TempDir()
	standIn(t, dir, "rpicam-vid", rpicamArgs(csiConfig{0, 64, 48, 30, "yuv420"}), "cat '"+yuv+"'\necho 'ERROR: camera frontend has timed out' >&2\nexit 1")
	withPath(t, dir)
	var log syncLog
	s, err := Open("csi://0", Options{Width: 64, Height: 48, Logf: log.logf, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkRawFrames(t, s, yuv, 25, 64, 48)
	if n := s.(interface{ Reconnects() uint64 }).Reconnects(); n < 2 {
		t.Errorf("%d restarts for 25 frames of a 10-frame camera, want 2", n)
	}
	if want := "csi://0: rpicam-vid exited (exit status 1: ERROR: camera frontend has timed out); restarting in 5ms"; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, &log)
	}
}

func TestCSISourceSizeRounding(t *testing.T) {
	dir := t.TempDir()
	// 224x224 I420 is asked for as 256x224: rows padded to 64 bytes.
	standIn(t, dir, "rpicam-vid", rpicamArgs(csiConfig{0, 256, 224, 30, "yuv420"}), "head -c 86016 /dev/zero\nexec sleep 600")
	withPath(t, dir)
	var log syncLog
	s, err := Open("csi://0", Options{Width: 224, Height: 224, Logf: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	if err := s.Read(&f); err != nil {
		t.Fatal(err)
	}
	if f.Width != 256 || f.Height != 224 || len(f.Data) != 256*224*3/2 {
		t.Errorf("frame %dx%d, %d bytes; want 256x224", f.Width, f.Height, len(f.Data))
	}
	if !strings.Contains(log.String(), "asking rpicam-vid for 256x224 (wanted 224x224") {
		t.Errorf("log: %s", &log)
	}
}

func TestCSISourceReadAllocatesNothing(t *testing.T) {
	yuv := ffmpegFixture(t, false)
	dir := t.TempDir()
	standIn(t, dir, "rpicam-vid", rpicamArgs(csiConfig{0, 64, 48, 30, "yuv420"}), "while true; do cat '"+yuv+"'; done")
	withPath(t, dir)
	s, err := Open("csi://0", Options{Width: 64, Height: 48})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	s.Read(&f)
	if n := testing.AllocsPerRun(200, func() {
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per Read, want 0", n)
	}
}

func TestCSISourceBadURIs(t *testing.T) {
	none := csiHost{fsys: fstest.MapFS{}, lookPath: func(string) (string, error) { return "", exec.ErrNotFound }, hasGstEl: noGst}
	for _, tc := range []struct{ rest, want string }{
		{"//x", `camera "x": want a camera number`},
		{"//0?codec=h264", `codec="h264": want one of yuv420, mjpeg`},
		{"//0?fmt=I420", `unknown query key "fmt"`},
		{"//0", "no CSI camera stack: none of rpicam-vid, libcamera-vid"},
		{"//0?backend=jetson", "gst-launch-1.0 not found"},
	} {
		_, err := none.open(tc.rest, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("csi:%s: error %v, want %q", tc.rest, err, tc.want)
		}
	}
	if _, err := Open("csi://0?backend=zz", Options{}); err == nil || !strings.HasPrefix(err.Error(), "source csi://0?backend=zz: ") {
		t.Errorf("error %v should name the URI", err)
	}
}

// A camera program that exits 0 is restarted too: unlike a pipe: command,
// a camera has no end.
func TestCSISourceRestartsCameraExitingZero(t *testing.T) {
	dir := t.TempDir()
	standIn(t, dir, "rpicam-vid", rpicamArgs(csiConfig{0, 64, 48, 30, "yuv420"}), "head -c 46080 /dev/zero\nexit 0") // 10 frames
	withPath(t, dir)
	var log syncLog
	s, err := Open("csi://0", Options{Width: 64, Height: 48, Logf: log.logf, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	for i := range 25 {
		if err := s.Read(&f); err != nil {
			t.Fatalf("frame %d: %v; log:\n%s", i, err, &log)
		}
	}
	if want := "csi://0: rpicam-vid exited (exit status 0); restarting in 5ms"; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, &log)
	}
}
