package camera

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// videoClip encodes ffmpeg's testsrc pattern at size and rate for secs
// seconds into dir/name (H.264 in MP4 for .mp4), with extra output
// options before the file name.
func videoClip(t testing.TB, dir, name, size string, rate, secs int, extra ...string) string {
	t.Helper()
	ff := requireTool(t, "ffmpeg")
	out := filepath.Join(dir, name)
	args := []string{"-nostdin", "-loglevel", "error", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc=size=%s:rate=%d:duration=%d", size, rate, secs), "-pix_fmt", "yuv420p"}
	args = append(append(args, extra...), out)
	if b, err := exec.Command(ff, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// probedFrames is ffprobe's count of the frames it decodes in path, the
// count a video: source must deliver. ffprobe comes with ffmpeg, which
// made the file.
func probedFrames(t testing.TB, path string) int {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe -count_frames %s: %v\n%s", path, err, b)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		t.Fatalf("ffprobe -count_frames %s: %q", path, b)
	}
	return n
}

// Every frame of a file, of the size and format asked for, then io.EOF;
// a file is not live. The count is ffprobe's, scaled for ?fps=.
func TestVideoFileFrames(t *testing.T) {
	dir := t.TempDir()
	clip := videoClip(t, dir, "clip.mp4", "64x48", 10, 10)
	rotated := filepath.Join(dir, "rotated.mp4")
	if b, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-i", clip, "-c", "copy", "-metadata:s:v", "rotate=90", rotated).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg rotate: %v\n%s", err, b)
	}
	// Variable frame rate: 25 frames at 10 fps, a 5 s gap, 25 more. A
	// constant-rate output would fill the gap with 50 copies.
	vfr := videoClip(t, dir, "vfr.mkv", "64x48", 10, 5, "-vf", `setpts=if(lt(N\,25)\,N\,N+50)/10/TB`, "-fps_mode", "passthrough")
	n, nVFR := probedFrames(t, clip), probedFrames(t, vfr)
	if n != 100 || nVFR != 50 {
		t.Fatalf("ffprobe counts %d frames in a 10 s clip at 10 fps, %d in the variable-rate one", n, nVFR)
	}
	abs, _ := filepath.Abs(clip)
	rel, _ := filepath.Rel(mustGetwd(t), clip)
	tests := []struct {
		name   string
		uri    string
		o      Options
		format PixelFormat
		w, h   int
		frames int
	}{
		{"file's size", "video:" + clip, Options{}, I420, 64, 48, n},
		{"absolute URI", "video://" + abs, Options{}, I420, 64, 48, n},
		{"relative path", "video:" + rel, Options{}, I420, 64, 48, n},
		{"bare path", clip, Options{}, I420, 64, 48, n},
		{"query scales, gray", "video:" + clip + "?w=32&h=24&fmt=GRAY", Options{}, GRAY8, 32, 24, n},
		{"odd size gives RGB24", "video:" + clip + "?w=63&h=47", Options{}, RGB24, 63, 47, n},
		{"flags size and format", "video:" + clip, Options{Width: 28, Height: 28, Format: BGR24}, BGR24, 28, 28, n},
		{"fps resamples", "video:" + clip + "?fps=5", Options{}, I420, 64, 48, n / 2},
		{"flag fps", clip, Options{FPS: 2.5}, I420, 64, 48, n / 4},
		{"rotation swaps sides", "video:" + rotated, Options{}, I420, 48, 64, n},
		{"variable frame rate", "video:" + vfr, Options{}, I420, 64, 48, nVFR},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log syncLog
			tc.o.Logf = log.logf
			s, err := Open(tc.uri, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if IsLive(s) {
				t.Error("a video file is live: frames would be dropped")
			}
			want, _ := rawFrameLen(tc.format, tc.w, tc.h)
			var f Frame
			got := 0
			for err = s.Read(&f); err == nil; err = s.Read(&f) {
				if f.Format != tc.format || f.Width != tc.w || f.Height != tc.h || len(f.Data) != want {
					t.Fatalf("frame %d: %s %dx%d, %d bytes; want %s %dx%d, %d bytes", got, f.Format, f.Width, f.Height, len(f.Data), tc.format, tc.w, tc.h, want)
				}
				if f.Seq != uint64(got) {
					t.Fatalf("frame %d has Seq %d", got, f.Seq)
				}
				got++
			}
			if !errors.Is(err, io.EOF) || !errors.Is(err, ErrEnded) {
				t.Errorf("after %d frames: %v, want ErrEnded (io.EOF)", got, err)
			}
			if got != tc.frames {
				t.Errorf("%d frames, want %d", got, tc.frames)
			}
			if err := s.Read(&f); !errors.Is(err, io.EOF) {
				t.Errorf("Read after the end: %v", err)
			}
			// ffmpeg said nothing on stderr: its status has no last line.
			if l := log.String(); !strings.Contains(l, "ffmpeg exited (exit status 0): the source ended") {
				t.Errorf("log:\n%s", l)
			}
		})
	}
}

func mustGetwd(t testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// The frames are the file's pixels: the first frame of testsrc (left half
// white-ish bars, not a constant) read as GRAY matches ffmpeg's own
// decode of it.
func TestVideoFilePixelsMatchFFmpeg(t *testing.T) {
	dir := t.TempDir()
	clip := videoClip(t, dir, "clip.mp4", "64x48", 10, 1)
	want, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-i", clip, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-").Output()
	if err != nil || len(want) != 64*48 {
		t.Fatalf("ffmpeg: %v, %d bytes", err, len(want))
	}
	s, err := Open("video:"+clip+"?fmt=GRAY", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	if err := s.Read(&f); err != nil {
		t.Fatal(err)
	}
	if string(f.Data) != string(want) {
		t.Error("the first frame differs from ffmpeg's decode")
	}
	lo, hi := f.Data[0], f.Data[0]
	for _, v := range f.Data {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi-lo < 100 {
		t.Errorf("first frame spans %d..%d: not the test pattern", lo, hi)
	}
}

// Bad input is a one-line error at Open that names the file and says
// what is wrong; nothing is started over and over.
func TestVideoFileErrors(t *testing.T) {
	requireTool(t, "ffmpeg")
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.mp4")
	os.WriteFile(text, []byte("not a video\n"), 0o644)
	audio := filepath.Join(dir, "tone.wav")
	if b, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine", "-t", "1", audio).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	clip := videoClip(t, dir, "clip.mp4", "64x48", 10, 1)
	empty := t.TempDir()
	tests := []struct {
		name, uri string
		path      string // PATH for the test; "" leaves it
		want      []string
	}{
		{"missing file", "video:" + filepath.Join(dir, "gone.mp4"), "", []string{"gone.mp4", "no such file"}},
		{"missing bare path", filepath.Join(dir, "gone.mkv"), "", []string{"gone.mkv", "no such file"}},
		{"not a video", "video:" + text, "", []string{"notes.mp4", "Invalid data"}},
		{"audio only", "video:" + audio, "", []string{"tone.wav", "no video stream"}},
		{"a directory", "video:" + dir, "", []string{dir, "not a regular file"}},
		{"no path", "video:", "", []string{"want video:PATH"}},
		{"unknown key", "video:" + clip + "?size=10x10", "", []string{`unknown query key "size"`, "w, h, fps, loop, fmt"}},
		{"w without h", "video:" + clip + "?w=10", "", []string{"give both or neither"}},
		{"MJPEG", "video:" + clip + "?fmt=MJPEG", "", []string{"MJPEG", "read raw"}},
		{"bad fps", "video:" + clip + "?fps=-1", "", []string{"fps", "from 0 to"}},
		{"no ffmpeg", "video:" + clip, empty, []string{"video:" + clip, "ffmpeg not found (apt-get install ffmpeg)"}},
		{"no ffmpeg, stream", "rtsp://127.0.0.1:9/x", empty, []string{"rtsp://127.0.0.1:9/x", "ffmpeg not found (apt-get install ffmpeg)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
			}
			s, err := Open(tc.uri, Options{})
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error of several lines:\n%s", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}

// A decoder that dies mid-file ends the source with its status: it is not
// restarted, which would classify the file again from its start.
func TestVideoFileKilledDecoderIsNotRestarted(t *testing.T) {
	clip := videoClip(t, t.TempDir(), "clip.mp4", "64x48", 10, 1)
	var log syncLog
	s, err := Open("video:"+clip+"?loop=1", Options{Logf: log.logf, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	for range 30 { // past the end of one pass: loop=1 starts over
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
	}
	ss := s.(*streamSource)
	pid := ss.sup.pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for err = s.Read(&f); err == nil; err = s.Read(&f) {
	}
	if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "ffmpeg exited (signal: killed)") {
		t.Errorf("after the kill: %v, want ffmpeg's status", err)
	}
	if err2 := s.Read(&f); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("next Read: %v, want %v again", err2, err)
	}
	if n := ss.Reconnects(); n != 0 || ss.sup.pid() != 0 {
		t.Errorf("%d restarts, pid %d: the file was started over", n, ss.sup.pid())
	}
	if strings.Contains(log.String(), "restarting") {
		t.Errorf("log:\n%s", &log)
	}
}

func TestVideoFileReadAllocatesNothing(t *testing.T) {
	clip := videoClip(t, t.TempDir(), "clip.mp4", "64x48", 10, 1)
	s, err := Open("video:"+clip+"?loop=1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	s.Read(&f)
	if a := testing.AllocsPerRun(50, func() {
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per frame", a)
	}
}

// ffmpeg's argument lists: a file is opened through the file: protocol (a
// name with a colon is no protocol), a stream URL whole, query included.
func TestVideoFFmpegArgs(t *testing.T) {
	tests := []struct {
		name string
		c    videoConfig
		want string
	}{
		{"file", videoConfig{input: "file:a:b.mp4", w: 64, h: 48, format: I420, syncOpt: "-fps_mode"},
			"-nostdin -hide_banner -loglevel error -i file:a:b.mp4 -map 0:v:0 -an -sn -dn -vf scale=64:48,setpts=N -pix_fmt yuv420p -fps_mode passthrough -f rawvideo -"},
		{"loop, fps, gray", videoConfig{input: "file:c.mkv", loop: true, fps: 2.5, w: 28, h: 28, format: GRAY8, syncOpt: "-vsync"},
			"-nostdin -hide_banner -loglevel error -stream_loop -1 -i file:c.mkv -map 0:v:0 -an -sn -dn -vf fps=2.5,scale=28:28,setpts=N -pix_fmt gray -vsync passthrough -f rawvideo -"},
		{"rtsp over tcp", videoConfig{input: "rtsp://cam/s?ch=1&fps=5", rtsp: true, w: 640, h: 480, format: RGB24, syncOpt: "-fps_mode"},
			"-nostdin -hide_banner -loglevel error -rtsp_transport tcp -i rtsp://cam/s?ch=1&fps=5 -map 0:v:0 -an -sn -dn -vf scale=640:480,setpts=N -pix_fmt rgb24 -fps_mode passthrough -f rawvideo -"},
	}
	for _, tc := range tests {
		if got := strings.Join(ffmpegArgs(tc.c), " "); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// -fps_mode from ffmpeg 5.1 on, -vsync before; the version line of the
// ffmpeg installed here picks an option that it takes.
func TestVideoFFmpegSyncOption(t *testing.T) {
	for _, tc := range []struct{ version, want string }{
		{"ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026", "-fps_mode"},
		{"ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright", "-vsync"},
		{"ffmpeg version 4.2.7-0ubuntu0.1", "-vsync"},
		{"ffmpeg version 5.0.3 Copyright", "-vsync"},
		{"ffmpeg version n7.0 Copyright", "-fps_mode"},
		{"ffmpeg version 8.0 Copyright", "-fps_mode"},
		{"ffmpeg version N-113012-g1234abcd Copyright", "-fps_mode"},
		{"", "-fps_mode"},
	} {
		if got := syncOptionFor(tc.version); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.version, got, tc.want)
		}
	}
	ff := requireTool(t, "ffmpeg")
	opt := ffmpegSyncOption(ff)
	if b, err := exec.Command(ff, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=16x16:rate=5", "-frames:v", "2",
		opt, "passthrough", "-f", "null", "-").CombinedOutput(); err != nil {
		t.Errorf("ffmpeg %s passthrough: %v\n%s", opt, err, b)
	}
}

func TestVideoProbeParse(t *testing.T) {
	tests := []struct {
		name, json string
		w, h       int
		rate, err  string
	}{
		{"plain", `{"streams":[{"codec_name":"h264","width":64,"height":48,"r_frame_rate":"30000/1001"}]}`, 64, 48, "29.97", ""},
		{"display matrix -90", `{"streams":[{"width":64,"height":48,"side_data_list":[{"rotation":-90}]}]}`, 48, 64, "unknown", ""},
		{"rotate tag 180", `{"streams":[{"width":64,"height":48,"tags":{"rotate":"180"}}]}`, 64, 48, "unknown", ""},
		{"rotate tag 270", `{"streams":[{"width":64,"height":48,"r_frame_rate":"0/0","tags":{"rotate":"270"}}]}`, 48, 64, "unknown", ""},
		{"no stream", `{"programs":[],"streams":[]}`, 0, 0, "", "no video stream"},
		{"no size", `{"streams":[{"codec_name":"h264"}]}`, 0, 0, "", "unknown size"},
		{"not json", `Input #0`, 0, 0, "", "ffprobe output"},
	}
	for _, tc := range tests {
		p, err := parseVideoProbe([]byte(tc.json))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || p.W != tc.w || p.H != tc.h || frameRateText(p.Rate) != tc.rate {
			t.Errorf("%s: %+v %v, want %dx%d at %s", tc.name, p, err, tc.w, tc.h, tc.rate)
		}
	}
}

func TestVideoNames(t *testing.T) {
	for _, tc := range []struct {
		uri string
		is  bool
	}{
		{"clip.mp4", true}, {"/data/Run.MKV", true}, {"a:b.webm", true}, {"clip.mp4?loop=1", true},
		{"shot.jpg", false}, {"clip.mp4.txt", false}, {"v4l2:0", false}, {"img?.mp4x", false},
	} {
		if got := isVideoName(tc.uri); got != tc.is {
			t.Errorf("isVideoName(%q) = %t", tc.uri, got)
		}
	}
}

// mjpegServer serves ffmpeg's testsrc at 64x48 as multipart JPEG over
// HTTP (what IP cameras send) at url: ffmpeg -listen 1 serves one client
// and exits, and the next one is started, as a camera's server comes
// back after a restart.
type mjpegServer struct {
	url  string
	mu   sync.Mutex
	cur  *exec.Cmd
	done chan struct{}
}

// freeHTTPURL is a URL on a port that was free a moment ago.
func freeHTTPURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String() + "/cam.mjpg"
}

// serveMJPEG starts serving at url until the test ends.
func serveMJPEG(t testing.TB, url string) *mjpegServer {
	ff := requireTool(t, "ffmpeg")
	ctx, cancel := context.WithCancel(context.Background())
	srv := &mjpegServer{url: url, done: make(chan struct{})}
	go func() {
		defer close(srv.done)
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, ff, "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi",
				"-i", "testsrc=size=64x48:rate=25", "-f", "mpjpeg", "-listen", "1", url)
			if err := cmd.Start(); err != nil {
				return // cancelled
			}
			srv.mu.Lock()
			srv.cur = cmd
			srv.mu.Unlock()
			cmd.Wait()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-srv.done
	})
	return srv
}

// kill ends the server that runs now, as a crash would.
func (s *mjpegServer) kill(t testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		t.Fatal("no server started")
	}
	s.cur.Process.Kill()
}

// readStream reads n frames of w×h I420 from s.
func readStream(t *testing.T, s Source, f *Frame, n, w, h int, log *syncLog) {
	t.Helper()
	for i := range n {
		if err := s.Read(f); err != nil {
			t.Fatalf("frame %d: %v; log:\n%s", i, err, log)
		}
		if f.Width != w || f.Height != h || f.Format != I420 {
			t.Fatalf("frame %s %dx%d, want I420 %dx%d", f.Format, f.Width, f.Height, w, h)
		}
	}
}

// An HTTP stream is live, and reconnects when the server goes away:
// frames go on after the server is killed, and the restart is counted
// and logged.
func TestVideoStreamReconnectsAfterServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg servers")
	}
	srv := serveMJPEG(t, freeHTTPURL(t))
	// ffprobe at Open may come before the first server listens.
	var s Source
	var err error
	var log syncLog
	o := Options{Logf: log.logf, Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) { // waiting for the server to listen
		if s, err = Open(srv.url, o); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("open %s: %v", srv.url, err)
		}
	}
	defer s.Close()
	if !IsLive(s) {
		t.Error("a stream is not live")
	}
	var f Frame
	readStream(t, s, &f, 10, 64, 48, &log)
	ss := s.(*streamSource)
	seq, restarts := f.Seq, ss.Reconnects()
	srv.kill(t)
	// The pipe still holds a few frames of the killed server's stream.
	for i := 0; ss.Reconnects() == restarts; i++ {
		if i == 1000 {
			t.Fatalf("1000 frames after the server was killed, and no reconnect; log:\n%s", &log)
		}
		readStream(t, s, &f, 1, 64, 48, &log)
	}
	readStream(t, s, &f, 10, 64, 48, &log)
	if f.Seq <= seq+10 {
		t.Errorf("after the server restart: Seq %d (was %d)", f.Seq, seq)
	}
	if l := log.String(); !strings.Contains(l, srv.url+": ffmpeg ") || !strings.Contains(l, "restarting in") {
		t.Errorf("log:\n%s", l)
	}
}

// With a size given, a stream is not probed: it opens while its server is
// down (a camera not up yet at boot), and frames, scaled to that size,
// come once the server is up.
func TestVideoStreamWithSizeOpensBeforeServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg servers")
	}
	requireTool(t, "ffmpeg")
	url := freeHTTPURL(t)
	var log syncLog
	s, err := Open(url, Options{Width: 32, Height: 24, Logf: log.logf, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("open with no server: %v", err)
	}
	defer s.Close()
	var f Frame
	got := make(chan error, 1)
	go func() { got <- s.Read(&f) }()                                                                                                            // retries ffmpeg while the server is down
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(log.String(), "Connection refused"); time.Sleep(10 * time.Millisecond) { // waiting for a refused connection
		if time.Now().After(deadline) {
			t.Fatalf("no refused connection logged in 20 s:\n%s", &log)
		}
	}
	serveMJPEG(t, url)
	if err := <-got; err != nil {
		t.Fatalf("first frame: %v; log:\n%s", err, &log)
	}
	readStream(t, s, &f, 5, 32, 24, &log)
	if l := log.String(); !strings.Contains(l, "not probed") {
		t.Errorf("log:\n%s", l)
	}
}
