package livepage

import (
	"github.com/vggedge/vggedge/firmware/live"

	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/models"
)

// framesSeen is the live page as the loop's output, recording on the way
// in every picture and result it is handed, by frame, so that a test can
// tell which frame a picture on the page is and what that frame's result
// was.
type framesSeen struct {
	*Server
	labels []string

	mu      sync.Mutex
	pixels  map[uint64][]byte // the frame's grey pixels
	truth   map[uint64]string // its true label, from the source
	top1    map[uint64]string // the model's top-1 label for it
	pictW   int
	pictH   int
	pictErr error
}

func (r *framesSeen) ObservePicture(f *camera.Frame) {
	r.mu.Lock()
	if f.Format != camera.GRAY8 || len(f.Data) != f.Width*f.Height {
		r.pictErr = fmt.Errorf("frame %d: %s %dx%d with %d bytes, want grey", f.Seq, f.Format, f.Width, f.Height, len(f.Data))
	}
	r.pictW, r.pictH = f.Width, f.Height
	r.pixels[f.Seq] = append([]byte(nil), f.Data...)
	if f.Label >= 0 && f.Label < len(r.labels) {
		r.truth[f.Seq] = r.labels[f.Label]
	}
	r.mu.Unlock()
	r.Server.ObservePicture(f)
}

func (r *framesSeen) Write(res *live.Result) error {
	r.mu.Lock()
	if len(res.Top) > 0 {
		r.top1[res.Frame] = res.Top[0].Label
	}
	r.mu.Unlock()
	return r.Server.Write(res)
}

// loopStats is the loop's StatsSource once the loop exists.
type loopStats struct{ l atomic.Pointer[live.Loop] }

func (s *loopStats) Stats() live.Stats {
	if l := s.l.Load(); l != nil {
		return l.Stats()
	}
	return live.Stats{}
}

// shownFrame is a JS expression: what the page presents at this instant,
// read in one task (so picture and text are of the same moment): the
// frame number it claims, the top-1 label and truth line, and the grey
// pixels of the picture as drawn (whatever element shows it).
const shownFrame = `(() => {
  const $ = id => document.getElementById(id);
  const p = $("picture");
  const w = p instanceof HTMLImageElement ? p.naturalWidth : p.width;
  const h = p instanceof HTMLImageElement ? p.naturalHeight : p.height;
  if (!w || !h) return null;
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  const g = c.getContext("2d");
  g.drawImage(p, 0, 0);
  const d = g.getImageData(0, 0, w, h).data;
  const px = [];
  for (let i = 0; i < d.length; i += 4) px.push(d[i]);
  return {frame: $("frame").textContent, top1: $("top1-label").textContent, truth: $("truth").textContent, w, h, px};
})()`

type shown struct {
	Frame string `json:"frame"`
	Top1  string `json:"top1"`
	Truth string `json:"truth"`
	W     int    `json:"w"`
	H     int    `json:"h"`
	Px    []int  `json:"px"`
}

// meanAbsDiff is the mean absolute difference of two grey pictures.
func meanAbsDiff(a []int, b []byte) float64 {
	var sum int
	for i := range b {
		d := a[i] - int(b[i])
		sum += max(d, -d)
	}
	return float64(sum) / float64(len(b))
}

// TestLivePageShowsOneFramesTruth runs the real loop (the bundled digits
// at 30 fps, the embedded digits model) into the live page in headless
// Chromium and captures the page 24 times. In every capture the picture
// must be the frame the page says it shows — decoded from the page and
// matched against every frame the loop produced — and the top-1 label and
// truth must be that frame's.
func TestLivePageShowsOneFramesTruth(t *testing.T) {
	chromiumPath(t)
	const captures = 24
	f, ok, err := models.Open("digits")
	if !ok || err != nil {
		t.Fatalf("embedded digits model: %v", err)
	}
	sess, err := infer.NewSessionThreads(f.Int8, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	pre, err := camera.NewPreprocessor(f.Int8.Input, f.Int8.Meta.Spec)
	if err != nil {
		t.Fatal(err)
	}
	const uri = "bundled:digits?fps=30"
	src, err := camera.Open(uri, camera.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var stats loopStats
	s, _ := startServer(t, "127.0.0.1:0", &stats)
	rec := &framesSeen{Server: s, labels: f.Int8.Meta.Labels,
		pixels: map[uint64][]byte{}, truth: map[uint64]string{}, top1: map[uint64]string{}}
	l, err := live.New(live.Config{
		Source: src, SourceName: uri, Session: sess, Pre: pre, Labels: f.Int8.Meta.Labels, TopK: 5,
		Outputs: []live.NamedSink{{Name: "http", Sink: rec}}, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	stats.l.Store(l)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("loop: %v", err)
		}
	}()

	d := startChromium(t, s.testURL("/"))
	waitFor(t, d, "a picture with a frame number and a result",
		`(p => (p.naturalWidth || p.width) > 0)(document.getElementById("picture")) &&
		 /^\d+$/.test(document.getElementById("frame").textContent) &&
		 document.getElementById("top1-label").textContent !== ""`)

	frames := map[uint64]bool{}
	for i := range captures {
		// Pacing only: spread the captures over the stream's phases.
		time.Sleep(time.Duration(60+(i*37)%90) * time.Millisecond)
		var got shown
		if err := d.eval(shownFrame, &got); err != nil {
			t.Fatalf("capture %d: %v", i, err)
		}
		if i == 0 || i == captures-1 {
			screenshot(t, d, fmt.Sprintf("live-page-sync-%d.png", i), 1280, 900)
		}
		claimed, err := strconv.ParseUint(got.Frame, 10, 64)
		if err != nil {
			t.Errorf("capture %d: the page names no frame (%q)", i, got.Frame)
			continue
		}
		frames[claimed] = true
		rec.mu.Lock()
		want, known := rec.pixels[claimed]
		truth, top1 := rec.truth[claimed], rec.top1[claimed]
		w, h := rec.pictW, rec.pictH
		sizeOK := got.W == w && got.H == h && len(got.Px) == w*h
		// Which frame the picture really is: the nearest of all the loop
		// produced (the bundled digits are 1000 different images).
		best, bestDiff := uint64(0), 256.0
		if sizeOK {
			for seq, px := range rec.pixels {
				if diff := meanAbsDiff(got.Px, px); diff < bestDiff {
					best, bestDiff = seq, diff
				}
			}
		}
		same := bytes.Equal(rec.pixels[best], want) // the set loops after 1000 digits
		pictErr := rec.pictErr
		rec.mu.Unlock()
		if pictErr != nil {
			t.Fatal(pictErr)
		}
		if !known {
			t.Errorf("capture %d: the page says frame %d, which the loop never showed it", i, claimed)
			continue
		}
		if !sizeOK {
			t.Errorf("capture %d: picture %dx%d (%d pixels), want %dx%d", i, got.W, got.H, len(got.Px), w, h)
			continue
		}
		// JPEG at quality 95 moves a 28x28 digit's pixels by under 1 on
		// average; two different digits differ by 15 or more.
		if diff := meanAbsDiff(got.Px, want); diff > 6 || !same {
			t.Errorf("capture %d: the page says frame %d but shows frame %d (mean difference %.1f to frame %d, %.1f to frame %d)",
				i, claimed, best, bestDiff, best, diff, claimed)
		}
		if top1 == "" {
			t.Errorf("capture %d: frame %d has no result yet, but the page shows top-1 %q", i, claimed, got.Top1)
			continue
		}
		mark := "✗"
		if top1 == truth {
			mark = "✓"
		}
		if wantTruth := "truth: " + truth + " " + mark; got.Top1 != top1 || got.Truth != wantTruth {
			t.Errorf("capture %d: frame %d shows top-1 %q and %q; its result is top-1 %q, %q", i, claimed, got.Top1, got.Truth, top1, wantTruth)
		}
	}
	// The page must be following the loop, not resting on one good frame.
	if len(frames) < captures/3 {
		t.Errorf("%d captures showed only %d different frames, want at least %d", captures, len(frames), captures/3)
	}
	if len(d.events) > 0 {
		t.Errorf("the page threw: %s", strings.Join(d.events, "\n"))
	}
}
