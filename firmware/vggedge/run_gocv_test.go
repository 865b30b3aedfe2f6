//go:build gocv

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vggedge/vggedge/camera"
)

// The OpenCV source through the whole loop (required by the issue): real
// MNIST test digits, made into a video file by ffmpeg, read by OpenCV's
// FFmpeg backend as BGR frames, converted to gray, classified by the
// embedded int8 model. Every frame of a file is classified (not live),
// and the answers must be the digits' labels: a channel or size mistake
// anywhere on the path would wreck them.
func TestRunGocvVideoFile(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	imgs, labels, err := camera.LoadIDX(gomnistDir(t), "t10k")
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	dir := t.TempDir()
	raw := filepath.Join(dir, "digits.gray")
	if err := os.WriteFile(raw, imgs.Pixels[:n*imgs.H*imgs.W], 0o644); err != nil {
		t.Fatal(err)
	}
	video := filepath.Join(dir, "digits.avi")
	// Near-lossless MJPEG at 4:4:4 (q 1), which every OpenCV build reads.
	cmd := exec.Command(ffmpeg, "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "gray",
		"-s", strconv.Itoa(imgs.W)+"x"+strconv.Itoa(imgs.H), "-r", "10", "-i", raw,
		"-c:v", "mjpeg", "-q:v", "1", "-pix_fmt", "yuvj444p", video)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	code, out, errOut := runLiveCLI(t, context.Background(), "--model", "digits", "--source", "gocv:"+video,
		"--threads", "1", "--output", "jsonl")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := parseJSONLines(t, out)
	if len(lines) != n {
		t.Fatalf("%d results for a %d-frame video: a file source must drop nothing\n%s", len(lines), n, errOut)
	}
	agree := 0
	for i, l := range lines {
		if l.Top[0].Label == strconv.Itoa(int(labels[i])) {
			agree++
		}
	}
	t.Logf("gocv video: %d/%d frames classified as their MNIST label", agree, n)
	if agree < n*95/100 {
		t.Errorf("only %d/%d frames match their digit", agree, n)
	}
}

// A GStreamer pipeline (videotestsrc, a live source) through the loop.
func TestRunGocvGStreamerPipeline(t *testing.T) {
	requireTool(t, "gst-inspect-1.0")
	if err := exec.Command("gst-inspect-1.0", "--exists", "videotestsrc").Run(); err != nil {
		missingTool(t, "GStreamer's videotestsrc missing (apt-get install gstreamer1.0-plugins-base)")
	}
	src := "gocv:videotestsrc num-buffers=200 ! video/x-raw,width=160,height=120 ! videoconvert ! video/x-raw,format=BGR ! appsink"
	code, out, errOut := runLiveCLI(t, context.Background(), "--model", "digits", "--source", src,
		"--threads", "1", "--max-frames", "10", "--output", "jsonl")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := parseJSONLines(t, out)
	if len(lines) != 10 {
		t.Fatalf("%d results, want --max-frames 10\n%s", len(lines), errOut)
	}
	for i := 1; i < len(lines); i++ {
		if *lines[i].Frame <= *lines[i-1].Frame {
			t.Fatalf("frames out of order: %d after %d", *lines[i].Frame, *lines[i-1].Frame)
		}
	}
}
