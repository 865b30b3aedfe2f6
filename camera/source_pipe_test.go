package camera

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
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

// ffmpegFixture makes a real 10-frame 64x48 stream of ffmpeg's testsrc2
// pattern: raw yuv420p (I420) or MJPEG, as a camera would send it.
func ffmpegFixture(t testing.TB, mjpeg bool) string {
	t.Helper()
	ff := requireTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "frames.yuv")
	args := []string{"-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30", "-frames:v", "10"}
	if mjpeg {
		out = filepath.Join(filepath.Dir(out), "frames.mjpeg")
		args = append(args, "-f", "mjpeg", out)
	} else {
		args = append(args, "-pix_fmt", "yuv420p", "-f", "rawvideo", out)
	}
	if b, err := exec.Command(ff, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// syncLog collects Options.Logf lines from several goroutines.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// gone reports whether process pid no longer exists (not even as a zombie).
func gone(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return errors.Is(err, os.ErrNotExist)
}

// checkRawFrames reads n frames and compares each with frame i%10 of the
// fixture file.
func checkRawFrames(t *testing.T, s Source, fixture string, n int, w, h int) {
	t.Helper()
	want, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	size := w * h * 3 / 2
	if len(want) != 10*size {
		t.Fatalf("fixture has %d bytes, want 10 frames of %d", len(want), size)
	}
	var f Frame
	for i := range n {
		if err := s.Read(&f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Seq != uint64(i) || f.Format != I420 || f.Width != w || f.Height != h || f.Label != -1 {
			t.Fatalf("frame %d: seq %d %s %dx%d label %d", i, f.Seq, f.Format, f.Width, f.Height, f.Label)
		}
		if k := i % 10; !bytes.Equal(f.Data, want[k*size:(k+1)*size]) {
			t.Fatalf("frame %d differs from fixture frame %d", i, k)
		}
	}
}

// checkMJPEGFrames reads n frames, each a whole JPEG that decodes to 64x48.
func checkMJPEGFrames(t *testing.T, s Source, fixture string, n int) {
	t.Helper()
	all, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var f Frame
	var got []byte
	for i := range n {
		if err := s.Read(&f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Format != MJPEG || f.Width != 64 || f.Height != 48 || f.Seq != uint64(i) {
			t.Fatalf("frame %d: %s %dx%d seq %d", i, f.Format, f.Width, f.Height, f.Seq)
		}
		img, err := jpeg.Decode(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 48 {
			t.Fatalf("frame %d decodes to %v", i, b)
		}
		if i < 10 {
			got = append(got, f.Data...)
		}
	}
	if n >= 10 && !bytes.Equal(got, all) {
		t.Errorf("the 10 frames joined (%d bytes) are not the stream ffmpeg wrote (%d bytes)", len(got), len(all))
	}
}

func TestPipeSourceRawAndMJPEG(t *testing.T) {
	yuv, mj := ffmpegFixture(t, false), ffmpegFixture(t, true)
	for _, tc := range []struct {
		name, fixture string
		o             Options
	}{
		{"I420", yuv, Options{Format: I420, Width: 64, Height: 48}},
		{"MJPEG", mj, Options{Format: MJPEG}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The command writes its frames, then stays alive like a camera.
			s, err := Open("pipe:cat '"+tc.fixture+"' && exec sleep 600", tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if !IsLive(s) {
				t.Error("pipe source should be live")
			}
			if tc.o.Format == MJPEG {
				checkMJPEGFrames(t, s, tc.fixture, 10)
			} else {
				checkRawFrames(t, s, tc.fixture, 10, 64, 48)
			}
			pid := s.(*streamSource).sup.pid()
			if pid == 0 || gone(pid) {
				t.Fatal("child not running")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if !gone(pid) {
				t.Errorf("child %d still exists after Close (not killed or not reaped)", pid)
			}
			if err := s.Read(&Frame{}); !errors.Is(err, ErrClosed) {
				t.Errorf("read after close: %v", err)
			}
		})
	}
}

// Killing the command mid-run: it is restarted and frames keep coming,
// aligned and numbered on.
func TestPipeSourceRestartsKilledChild(t *testing.T) {
	yuv := ffmpegFixture(t, false)
	var log syncLog
	s, err := Open("pipe:while true; do cat '"+yuv+"'; done", Options{Format: I420, Width: 64, Height: 48, Logf: log.logf, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ss := s.(*streamSource)
	checkRawFrames(t, s, yuv, 5, 64, 48)
	pid := ss.sup.pid()
	syscall.Kill(-pid, syscall.SIGKILL)
	// Whatever was buffered in the pipe still arrives; then the new child
	// starts from its first frame. Every frame must be a whole one.
	want, _ := os.ReadFile(yuv)
	size := 64 * 48 * 3 / 2
	var f Frame
	deadline := time.Now().Add(60 * time.Second)
	for ss.Reconnects() == 0 || f.Seq < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("no restart seen; log:\n%s", &log)
		}
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(want, f.Data) || len(f.Data) != size {
			t.Fatalf("frame %d is not a whole fixture frame", f.Seq)
		}
	}
	if !strings.Contains(log.String(), "command exited (signal: killed); restarting in 10ms") {
		t.Errorf("log does not report the restart:\n%s", &log)
	}
	if ss.sup.pid() == pid {
		t.Error("same child after restart")
	}
}

func TestPipeSourceBadOptions(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		o    Options
		want string
	}{
		{"pipe:", Options{Format: I420}, "no command"},
		{"pipe:cat", Options{}, "pass --format"},
		{"pipe:cat", Options{Format: YUYV}, "need a size: pass --size WxH"},
		{"pipe:cat", Options{Format: I420, Width: 63, Height: 48}, "even width and height"},
		{"pipe:cat", Options{Format: "H264", Width: 64, Height: 48}, `pixel format "H264" has no fixed frame size`},
	} {
		s, err := Open(tc.uri, tc.o)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q, %+v): error %v, want %q", tc.uri, tc.o, err, tc.want)
		}
	}
}

func TestPipeSourceReadAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string
		o       Options
	}{
		{"I420", ffmpegFixture(t, false), Options{Format: I420, Width: 64, Height: 48}},
		{"MJPEG", ffmpegFixture(t, true), Options{Format: MJPEG}},
	} {
		s, err := Open("pipe:while true; do cat '"+tc.fixture+"'; done", tc.o)
		if err != nil {
			t.Fatal(err)
		}
		var f Frame
		for range 20 { // every fixture frame once: Data reaches the largest size
			if err := s.Read(&f); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(200, func() {
			if err := s.Read(&f); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per Read, want 0", tc.name, n)
		}
		s.Close()
	}
}

// jpegSegments builds a JPEG-like byte stream from marker segments; the
// splitter only looks at the structure.
func seg(marker byte, payload ...byte) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestMJPEGSplitterMarkers(t *testing.T) {
	soi, eoi := []byte{0xFF, 0xD8}, []byte{0xFF, 0xD9}
	sof := seg(0xC0, 8, 0, 48, 0, 64, 1, 1, 0x11, 0) // 64x48
	// Entropy-coded data with a stuffed FF 00, a restart marker and fill
	// bytes before EOI, none of which may end the image.
	scan := cat(seg(0xDA, 1, 1, 0, 0, 63, 0), []byte{1, 2, 0xFF, 0x00, 3, 0xFF, 0xD3, 4})
	plain := cat(soi, sof, scan, eoi)
	// An APP1 segment holding a whole thumbnail JPEG: its FF D9 is inside
	// the segment and must not end the outer image.
	withThumb := cat(soi, seg(0xE1, cat([]byte("Exif\x00\x00"), soi, sof, eoi)...), sof, scan, eoi)
	progressive := cat(soi, seg(0xC2, 8, 0, 16, 0, 32, 1, 1, 0x11, 0), scan, seg(0xC4, 0, 1), scan, eoi)
	fill := cat(soi, sof, scan, []byte{0xFF, 0xFF, 0xFF, 0xD9})
	for _, tc := range []struct {
		name   string
		stream []byte
		want   [][]byte
		w, h   int
	}{
		{"one", plain, [][]byte{plain}, 64, 48},
		{"two back to back", cat(plain, plain), [][]byte{plain, plain}, 64, 48},
		{"garbage before", cat([]byte{0, 0xFF, 0x12, 0xFF}, plain), [][]byte{plain}, 64, 48},
		{"thumbnail in APP1", withThumb, [][]byte{withThumb}, 64, 48},
		{"progressive, two scans", progressive, [][]byte{progressive}, 32, 16},
		{"fill bytes before EOI", fill, [][]byte{cat(soi, sof, scan, eoi)}, 64, 48},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mjpegSplitter{br: bufio.NewReaderSize(bytes.NewReader(tc.stream), 16), max: 1 << 20}
			for i, want := range tc.want {
				got, w, h, err := m.next(nil)
				if err != nil {
					t.Fatalf("image %d: %v", i, err)
				}
				if !bytes.Equal(got, want) || w != tc.w || h != tc.h {
					t.Fatalf("image %d: % x (%dx%d)\nwant % x (%dx%d)", i, got, w, h, want, tc.w, tc.h)
				}
			}
			if _, _, _, err := m.next(nil); err != io.EOF {
				t.Errorf("after the last image: %v, want io.EOF", err)
			}
		})
	}
}

func TestMJPEGSplitterCorrupt(t *testing.T) {
	soi, eoi := []byte{0xFF, 0xD8}, []byte{0xFF, 0xD9}
	good := cat(soi, seg(0xDA, 0), []byte{9, 9}, eoi)
	for _, tc := range []struct {
		name, want string
		stream     []byte
		max        int
	}{
		{"bad length", "length 1", cat(soi, []byte{0xFF, 0xE0, 0, 1}), 1 << 20},
		{"no marker", "where a marker", cat(soi, []byte{0x12}), 1 << 20},
		{"SOI inside", "inside an image", cat(soi, soi), 1 << 20},
		{"too big", "larger than 64 bytes", cat(soi, seg(0xDA, 0), make([]byte, 100), eoi), 64},
		{"no SOI", "no start-of-image", make([]byte, 100), 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mjpegSplitter{br: bufio.NewReader(bytes.NewReader(cat(tc.stream, good))), max: tc.max}
			_, _, _, err := m.next(nil)
			if !errors.Is(err, errCorruptFrame) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want corrupt frame %q", err, tc.want)
			}
			// The stream resynchronises on the next image.
			if tc.name != "no SOI" {
				if got, _, _, err := m.next(nil); err != nil || !bytes.Equal(got, good) {
					t.Errorf("after the corrupt frame: % x, %v", got, err)
				}
			}
		})
	}
}

func FuzzMJPEGSplitter(f *testing.F) {
	soi, eoi := []byte{0xFF, 0xD8}, []byte{0xFF, 0xD9}
	f.Add(cat(soi, seg(0xC0, 8, 0, 48, 0, 64, 1), seg(0xDA, 0), []byte{1, 0xFF, 0, 0xFF, 0xD0}, eoi))
	f.Add(cat(soi, seg(0xE1, 0xFF, 0xD9), eoi, soi))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := mjpegSplitter{br: bufio.NewReaderSize(bytes.NewReader(data), 16), max: 4096}
		for range len(data) + 1 { // each call consumes at least one byte
			img, _, _, err := m.next(nil)
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				if !errors.Is(err, errCorruptFrame) {
					t.Fatalf("error %v does not wrap errCorruptFrame", err)
				}
				continue
			}
			if len(img) < 4 || !bytes.HasPrefix(img, soi) || !bytes.HasSuffix(img, eoi) || len(img) > 4096 {
				t.Fatalf("image % x", img)
			}
		}
		t.Fatal("splitter did not reach the end of the stream")
	})
}

// A pipe: command that exits 0 (ffmpeg at the end of a file) has sent all
// its frames: the source ends with ErrEnded, an io.EOF, also through the
// reconnecting wrapper run puts around live sources — it is not restarted.
// A command that exits non-zero is still restarted.
func TestPipeSourceEndsOnExitZero(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		var log syncLog
		o := Options{Format: GRAY8, Width: 8, Height: 8, Logf: log.logf, Backoff: 5 * time.Millisecond}
		open := func() (Source, error) { return Open("pipe:head -c 200 /dev/zero", o) } // 3 frames and 8 bytes
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		if wrapped {
			first := s
			s = Reconnecting("pipe:head", func() (Source, error) {
				if f := first; f != nil {
					first = nil
					return f, nil
				}
				return open()
			}, o)
		}
		var f Frame
		n := 0
		for err = s.Read(&f); err == nil; err = s.Read(&f) {
			n++
		}
		if n != 3 || !errors.Is(err, ErrEnded) || !errors.Is(err, io.EOF) {
			t.Errorf("wrapped %t: %d frames, then %v; want 3 and ErrEnded", wrapped, n, err)
		}
		if err := s.Read(&f); !errors.Is(err, io.EOF) && !errors.Is(err, ErrClosed) {
			t.Errorf("wrapped %t: Read after the end: %v", wrapped, err)
		}
		s.Close()
		if l := log.String(); !strings.Contains(l, "command exited (exit status 0): the source ended") || strings.Contains(l, "restarting") || strings.Contains(l, "reconnecting") {
			t.Errorf("wrapped %t: log:\n%s", wrapped, l)
		}
	}

	var log syncLog
	s, err := Open("pipe:head -c 64 /dev/zero; exit 3", Options{Format: GRAY8, Width: 8, Height: 8, Logf: log.logf, Backoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var f Frame
	for range 3 {
		if err := s.Read(&f); err != nil {
			t.Fatalf("a failing command: %v, want it restarted", err)
		}
	}
	if !strings.Contains(log.String(), "command exited (exit status 3); restarting") {
		t.Errorf("log:\n%s", &log)
	}
}

// A command that sends only garbage as MJPEG (issue 14: ~1,650 log lines
// a second at 61% of a core) is logged at most once a second, with a
// count of what was held back, and restarted with backoff after
// MaxCorruptRun corrupt frames in a row: the frames skipped stay a few
// runs' worth, not thousands a second.
func TestPipeSourceGarbageIsRateLimitedAndBacksOff(t *testing.T) {
	var log syncLog
	o := Options{Format: MJPEG, Logf: log.logf, Backoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}
	s, err := Open("pipe:cat /dev/urandom", o)
	if err != nil {
		t.Fatal(err)
	}
	ss := s.(*streamSource)
	readErr := make(chan error, 1)
	go func() {
		var f Frame
		for {
			if err := s.Read(&f); err != nil {
				readErr <- err
				return
			}
		}
	}()
	const window = 3 * time.Second
	time.Sleep(window)
	s.Close()
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after Close")
	}
	log.mu.Lock()
	lines := len(log.lines)
	log.mu.Unlock()
	restarts, skipped := ss.Reconnects(), ss.Skipped()
	t.Logf("%v: %d log lines, %d restarts, %d corrupt frames skipped", window, lines, restarts, skipped)
	if max := int(window/logEvery) + 1; lines > max {
		t.Errorf("%d log lines in %v, want at most %d:\n%s", lines, window, max, &log)
	}
	if restarts < 2 {
		t.Errorf("%d restarts in %v, want the garbage command restarted (backoff 100ms..400ms):\n%s", restarts, window, &log)
	}
	// Every run of the command ends after MaxCorruptRun corrupt frames.
	if want := uint64(MaxCorruptRun) * (restarts + 1); skipped > want {
		t.Errorf("%d corrupt frames skipped in %d runs of the command, want at most %d", skipped, restarts+1, want)
	}
	if !strings.Contains(log.String(), "sent only corrupt frames") || !strings.Contains(log.String(), "suppressed]") {
		t.Errorf("the log does not name the restart for corrupt frames and the suppressed lines:\n%s", &log)
	}
}

// A camera program that sends a few frames and then hangs with its
// output open (issue 14: "… ; sleep 600" was never noticed) is restarted
// once it delivered nothing for SourceTimeout.
func TestPipeSourceWatchdogRestartsHungCommand(t *testing.T) {
	var log syncLog
	const timeout = 300 * time.Millisecond
	o := Options{Format: GRAY8, Width: 8, Height: 8, Logf: log.logf, Backoff: 10 * time.Millisecond, SourceTimeout: timeout}
	s, err := Open("pipe:head -c 192 /dev/zero; exec sleep 600", o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ss := s.(*streamSource)
	var f Frame
	var last time.Time
	for round := range 3 {
		pid := ss.sup.pid()
		for i := range 3 {
			if err := s.Read(&f); err != nil {
				t.Fatalf("round %d frame %d: %v", round, i, err)
			}
			if i == 0 && round > 0 {
				gap := time.Since(last)
				t.Logf("round %d: first frame %v after the last one of the hung child", round, gap)
				if gap < timeout || gap > timeout+time.Second {
					t.Errorf("round %d: restarted %v after the last frame, want %v..%v", round, gap, timeout, timeout+time.Second)
				}
				if ss.sup.pid() == pid {
					t.Errorf("round %d: same child", round)
				}
			}
			last = time.Now()
		}
		if got := ss.Reconnects(); got != uint64(round) {
			t.Errorf("round %d: %d restarts", round, got)
		}
	}
	if !strings.Contains(log.String(), "command stopped delivering frames (no frame for 300ms") {
		t.Errorf("the log does not say why the command was restarted:\n%s", &log)
	}
}
