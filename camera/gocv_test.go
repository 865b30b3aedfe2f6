//go:build gocv

package camera

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseGoCV(t *testing.T) {
	tests := []struct {
		rest    string
		want    gocvTarget
		wantErr string
	}{
		{"0", gocvTarget{kind: gocvDevice, index: 0}, ""},
		{"2", gocvTarget{kind: gocvDevice, index: 2}, ""},
		{"/data/clip.mp4", gocvTarget{kind: gocvFile, what: "/data/clip.mp4"}, ""},
		{"file:///data/clip.mp4", gocvTarget{kind: gocvFile, what: "/data/clip.mp4"}, ""},
		{"rtsp://10.0.0.5:8554/cam", gocvTarget{kind: gocvURL, what: "rtsp://10.0.0.5:8554/cam"}, ""},
		{"http://cam.local/video.mjpg", gocvTarget{kind: gocvURL, what: "http://cam.local/video.mjpg"}, ""},
		{"gst:videotestsrc ! appsink", gocvTarget{kind: gocvPipeline, what: "videotestsrc ! appsink"}, ""},
		{"nvarguscamerasrc ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1",
			gocvTarget{kind: gocvPipeline, what: "nvarguscamerasrc ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1"}, ""},
		{"gst:videotestsrc ! autovideosink", gocvTarget{}, `gocv pipeline "videotestsrc ! autovideosink": must end in appsink, e.g. "videotestsrc ! videoconvert ! video/x-raw,format=BGR ! appsink"`},
		{"", gocvTarget{}, "gocv: nothing to open; want gocv:N, gocv:PATH, gocv:URL or gocv:gst:PIPELINE"},
		{"-1", gocvTarget{}, "gocv:-1: camera index must be 0 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.rest, func(t *testing.T) {
			got, err := parseGoCV(tt.rest)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// meanBGR averages a BGR24 frame's channels.
func meanBGR(f *Frame) (b, g, r float64) {
	n := float64(len(f.Data) / 3)
	for i := 0; i+2 < len(f.Data); i += 3 {
		b += float64(f.Data[i])
		g += float64(f.Data[i+1])
		r += float64(f.Data[i+2])
	}
	return b / n, g / n, r / n
}

// redEnough says a frame is (lossily coded) pure red: R high, B and G low.
func redEnough(t *testing.T, i int, f *Frame) {
	t.Helper()
	if b, g, r := meanBGR(f); b > 25 || g > 25 || r < 230 {
		t.Errorf("frame %d: mean B,G,R = %.0f,%.0f,%.0f, want about 0,0,255 (red)", i, b, g, r)
	}
}

// TestGoCVVideoFile reads videos ffmpeg writes in the codecs cameras and
// recorders use; lavfi's color source makes every pixel pure red
// (https://ffmpeg.org/ffmpeg-filters.html#color).
func TestGoCVVideoFile(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	dir := t.TempDir()
	tests := []struct {
		file  string
		codec []string
	}{
		{"mjpeg.avi", []string{"-c:v", "mjpeg", "-q:v", "3"}},
		{"mpeg4.avi", []string{"-c:v", "mpeg4", "-q:v", "3"}},
		{"h264.mp4", []string{"-c:v", "libx264", "-pix_fmt", "yuv420p"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			args := append([]string{"-v", "error", "-f", "lavfi", "-i", "color=c=red:size=160x120:rate=10", "-frames:v", "20"}, tt.codec...)
			if out, err := exec.Command(ffmpeg, append(args, path)...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, out)
			}
			src, err := Open("gocv:"+path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if IsLive(src) {
				t.Error("a video file must not be live")
			}
			var f Frame
			n := 0
			for ; ; n++ {
				err := src.Read(&f)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("frame %d: %v", n, err)
				}
				if f.Seq != uint64(n) || f.Format != BGR24 || f.Width != 160 || f.Height != 120 || len(f.Data) != 160*120*3 || f.Time.IsZero() {
					t.Fatalf("frame %d: seq %d %s %dx%d %d bytes", n, f.Seq, f.Format, f.Width, f.Height, len(f.Data))
				}
				redEnough(t, n, &f)
			}
			if n != 20 {
				t.Fatalf("read %d frames, ffmpeg wrote 20", n)
			}
		})
	}
}

// gocvNeedGStreamer skips unless GStreamer has the elements the pipeline
// tests use (package gstreamer1.0-plugins-base), failing instead in CI.
func gocvNeedGStreamer(t *testing.T) {
	t.Helper()
	inspect := requireTool(t, "gst-inspect-1.0")
	for _, el := range []string{"videotestsrc", "videoconvert", "appsink", "rawvideoparse", "filesrc"} {
		if err := exec.Command(inspect, el).Run(); err != nil {
			missingTool(t, "GStreamer element %s missing (apt-get install gstreamer1.0-plugins-base): %v", el, err)
		}
	}
}

func TestGoCVGStreamerPipeline(t *testing.T) {
	gocvNeedGStreamer(t)
	const caps = " ! video/x-raw,width=160,height=120,framerate=30/1 ! videoconvert ! "
	tests := []struct {
		name   string
		uri    string
		format PixelFormat
		check  func(t *testing.T, i int, f *Frame)
	}{
		{"gst: prefix, red", "gocv:gst:videotestsrc num-buffers=20 pattern=red" + caps + "video/x-raw,format=BGR ! appsink",
			BGR24, redEnough},
		{"bare pipeline, blue", "gocv:videotestsrc num-buffers=20 pattern=blue" + caps + "video/x-raw,format=BGR ! appsink",
			BGR24, func(t *testing.T, i int, f *Frame) {
				if b, g, r := meanBGR(f); b < 250 || g > 5 || r > 5 {
					t.Errorf("frame %d: mean B,G,R = %.0f,%.0f,%.0f, want 255,0,0 (blue)", i, b, g, r)
				}
			}},
		// videoconvert turns RGB into GRAY8 as video-range luma: white is
		// Y' = 235, not 255 (ITU-R BT.601 §2.5.3, 8-bit coding).
		{"gray", "gocv:videotestsrc num-buffers=20 pattern=white" + caps + "video/x-raw,format=GRAY8 ! appsink",
			GRAY8, func(t *testing.T, i int, f *Frame) {
				for _, v := range f.Data {
					if v < 232 || v > 238 {
						t.Fatalf("frame %d: gray value %d, want 235 (white in video range)", i, v)
					}
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Open(tt.uri, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if !IsLive(src) {
				t.Error("a pipeline must be live")
			}
			channels := 3
			if tt.format == GRAY8 {
				channels = 1
			}
			var f Frame
			for i := range 20 {
				if err := src.Read(&f); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if f.Seq != uint64(i) || f.Format != tt.format || f.Width != 160 || f.Height != 120 || len(f.Data) != 160*120*channels {
					t.Fatalf("frame %d: seq %d %s %dx%d %d bytes", i, f.Seq, f.Format, f.Width, f.Height, len(f.Data))
				}
				tt.check(t, i, &f)
			}
			// num-buffers=20 ends the stream: for a live source that is
			// an error (the reconnect wrapper restarts it), not io.EOF.
			err = src.Read(&f)
			if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "no frame") {
				t.Fatalf("after the last buffer: %v, want a no-frame error", err)
			}
		})
	}
}

// TestGoCVReadAllocs checks the steady state allocates nothing on the Go
// side: OpenCV decodes into the one reused Mat and f.Data is reused.
// (OpenCV's and GStreamer's C allocations are not counted here.)
func TestGoCVReadAllocs(t *testing.T) {
	gocvNeedGStreamer(t)
	src, err := Open("gocv:videotestsrc num-buffers=200 ! video/x-raw,width=160,height=120 ! videoconvert ! video/x-raw,format=BGR ! appsink", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var f Frame
	if err := src.Read(&f); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if err := src.Read(&f); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("gocv Read: %v allocations per frame", allocs)
	if allocs != 0 {
		t.Fatalf("gocv Read allocates %v times per frame, want 0", allocs)
	}
}

func TestGoCVOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notVideo := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notVideo, []byte("not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.avi")
	tests := []struct {
		uri     string
		want    string
		wantErr error
	}{
		{"gocv:" + missing, "gocv " + missing + ": stat " + missing + ": no such file or directory", os.ErrNotExist},
		{"gocv:" + notVideo, "gocv " + notVideo + ": OpenCV cannot open it (not a video OpenCV's FFmpeg backend can decode)", nil},
		{"gocv:gst:nosuchelement ! appsink", "gocv nosuchelement ! appsink: OpenCV cannot open it (GStreamer rejected the pipeline; try it with gst-launch-1.0)", nil},
		{"gocv:gst:videotestsrc", `gocv pipeline "videotestsrc": must end in appsink`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			_, err := Open(tt.uri, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want it to contain %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("%v does not wrap %v", err, tt.wantErr)
			}
		})
	}
}

// stallingPipeline is a GStreamer pipeline fed from a fifo that delivers
// frames w×h BGR of value 40·(i+1) for i < n, and then nothing while
// connected, as a stalled RTSP camera does. hangUp ends it; done reports the
// writer's error.
func stallingPipeline(t *testing.T, w, h, n int) (uri string, hangUp func(), done <-chan error) {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "frames")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var once sync.Once
	hangUp = func() { once.Do(func() { close(stop) }) }
	t.Cleanup(hangUp)
	writerDone := make(chan error, 1)
	go func() {
		// O_RDWR, not O_WRONLY: GStreamer's filesrc under OpenCV opens the
		// file twice (strace shows two O_RDONLY opens). A write-only end
		// opened once pairs with the first open only: when that reader
		// closed first the writes failed (EPIPE, "no frame"), or the second
		// open blocked for want of a writer and Open hung (a CI run timed
		// out). Holding both ends, the pipe always has a writer and a
		// reader, so every open succeeds and the frames wait in the pipe
		// for whichever open reads them.
		out, err := os.OpenFile(fifo, os.O_RDWR, 0)
		if err != nil {
			writerDone <- err
			return
		}
		frame := make([]byte, w*h*3)
		for i := range n {
			for j := range frame {
				frame[j] = byte(40 * (i + 1))
			}
			if _, err := out.Write(frame); err != nil {
				out.Close()
				writerDone <- err
				return
			}
		}
		<-stop
		writerDone <- out.Close()
	}()
	// filesrc fills whole blocks: one frame per block, or it waits for more.
	uri = fmt.Sprintf("gocv:gst:filesrc blocksize=%d location=%s ! rawvideoparse width=%d height=%d format=bgr framerate=30/1 ! videoconvert ! video/x-raw,format=BGR ! appsink", w*h*3, fifo, w, h)
	return uri, hangUp, writerDone
}

// TestGoCVWatchdog: OpenCV's read of a stalled pipeline blocks in C, and
// only the watchdog gets Read back. Close must not wait for the stuck read,
// and the capture is released once OpenCV returns (here: when the writer
// hangs up).
func TestGoCVWatchdog(t *testing.T) {
	gocvNeedGStreamer(t)
	const w, h, timeout = 16, 8, 300 * time.Millisecond
	uri, hangUp, writerDone := stallingPipeline(t, w, h, 3)
	src, err := Open(uri, Options{SourceTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*gocvSource)
	var f Frame
	for i := range 3 {
		if err := src.Read(&f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Width != w || f.Height != h || f.Data[0] != byte(40*(i+1)) {
			t.Fatalf("frame %d: %dx%d, first byte %d, want %dx%d, %d", i, f.Width, f.Height, f.Data[0], w, h, 40*(i+1))
		}
	}
	start := time.Now()
	err = src.Read(&f)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "watchdog") {
		t.Fatalf("read from the stalled pipeline: %v, want the watchdog's error", err)
	}
	t.Logf("stalled read returned after %v: %v", took, err)
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("the watchdog fired after %v, want about %v", took, timeout)
	}
	if err := src.Read(&f); err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("read after the watchdog fired: %v, want an error saying the read is stuck", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the stuck OpenCV read")
	}
	select {
	case <-s.freed:
		t.Fatal("capture released while OpenCV was still reading it")
	default:
	}
	hangUp()
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	select {
	case <-s.freed:
	case <-time.After(10 * time.Second):
		t.Fatal("capture not released after OpenCV's read returned")
	}
}

// Close wakes a Read that is waiting for OpenCV, with the watchdog off.
func TestGoCVCloseInterruptsRead(t *testing.T) {
	gocvNeedGStreamer(t)
	uri, _, _ := stallingPipeline(t, 16, 8, 1)
	src, err := Open(uri, Options{SourceTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		var f Frame
		for {
			if err := src.Read(&f); err != nil {
				read <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the reader is past its one frame, waiting in OpenCV
	select {
	case err := <-read:
		t.Fatalf("Read returned %v before Close", err)
	default:
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt the Read waiting for OpenCV")
	}
}
