package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A 10-second video file through video: (and as a bare path) ends the run
// with exit 0 and exactly one JSON line per frame — ffprobe's count of the
// frames it decodes — in order: a file is not live, no frame is dropped.
func TestRunVideoFileOneLinePerFrame(t *testing.T) {
	ff := requireTool(t, "ffmpeg")
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	if b, err := exec.Command(ff, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
		"-t", "10", "-pix_fmt", "yuv420p", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", clip).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, b)
	}
	frames, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || frames != 100 {
		t.Fatalf("ffprobe counts %q frames in 10 s at 10 fps, want 100", b)
	}
	for _, tc := range []struct{ name, source string }{{"video:PATH", "video:" + clip}, {"bare path", clip}} {
		source := tc.source
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			code, out, errOut := runLiveCLI(t, ctx, "--model", "digits", "--source", source, "--topk", "1")
			if code != exitOK || ctx.Err() != nil {
				t.Fatalf("exit %d (context: %v): %s", code, ctx.Err(), errOut)
			}
			lines := parseJSONLines(t, out)
			if len(lines) != frames {
				t.Fatalf("%d lines for %d frames; log:\n%s", len(lines), frames, errOut)
			}
			for i, l := range lines {
				if *l.Frame != uint64(i) {
					t.Fatalf("line %d is frame %d: every frame of a file is classified, in order", i, *l.Frame)
				}
			}
			for _, want := range []string{"(every frame)", "ffmpeg exited (exit status 0): the source ended", "dropped 0"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("log does not say %q:\n%s", want, errOut)
				}
			}
			if strings.Contains(errOut, "restarting") || strings.Contains(errOut, "reconnecting") {
				t.Errorf("log:\n%s", errOut)
			}
		})
	}
}

// Without ffmpeg, or with a file that is missing or no video, the run
// fails at once with one error line naming the file (and the package to
// install), exit 2, and no results.
func TestRunVideoErrors(t *testing.T) {
	ff := requireTool(t, "ffmpeg")
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	if b, err := exec.Command(ff, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
		"-t", "1", "-pix_fmt", "yuv420p", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	text := filepath.Join(dir, "notes.mkv")
	os.WriteFile(text, []byte("not a video\n"), 0o644)
	tests := []struct {
		name, source string
		noFFmpeg     bool
		want         string
	}{
		{"ffmpeg missing", "video:" + clip, true, "video:" + clip + ": ffmpeg not found (apt-get install ffmpeg)"},
		{"file missing", "video:" + filepath.Join(dir, "gone.mp4"), false, "gone.mp4: no such file or directory"},
		{"not a video", text, false, "notes.mkv: ffprobe: Invalid data found when processing input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noFFmpeg {
				t.Setenv("PATH", t.TempDir())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, out, errOut := runLiveCLI(t, ctx, "--model", "digits", "--source", tc.source)
			if code != exitBadInput || out != "" {
				t.Errorf("exit %d, %d bytes of results; want exit %d and none", code, len(out), exitBadInput)
			}
			if !strings.Contains(errOut, tc.want) || strings.Count(errOut, "error:") != 1 || strings.Contains(errOut, "panic") {
				t.Errorf("stderr does not say %q in one error line:\n%s", tc.want, errOut)
			}
		})
	}
}

// A stream's password stays out of the loop's stats, which the live page
// and MQTT publish (the log and errors redact it already).
func TestRunVideoStreamStatsHidePassword(t *testing.T) {
	requireTool(t, "ffmpeg")
	var rf runFlags
	// With --size the stream is not probed: no server is needed.
	if err := parseFlags(rf.flagSet(io.Discard), []string{"--model", "digits", "--source", "rtsp://user:secret@127.0.0.1:9/cam", "--size", "64x48"}); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r, err := setUpRun(&rf, io.Discard, newRunLog(&log, false))
	if err != nil {
		t.Fatal(err)
	}
	defer r.sess.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.loop.Run(ctx) // closes the source
	if src := r.loop.Stats().Source; src != "rtsp://user:xxxxx@127.0.0.1:9/cam" {
		t.Errorf("stats name the source %q", src)
	}
	if strings.Contains(log.String(), "secret") {
		t.Errorf("log:\n%s", &log)
	}
}
