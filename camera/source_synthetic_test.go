package camera

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// syntheticPixel reads pixel (x, y) of a synthetic frame as its luma (Y,
// or the grey level) and, for colour formats, R, G, B or Y, U, V.
func syntheticPixel(f *Frame, x, y int) [3]int {
	w, h := f.Width, f.Height
	switch f.Format {
	case RGB24:
		i := (y*w + x) * 3
		return [3]int{int(f.Data[i]), int(f.Data[i+1]), int(f.Data[i+2])}
	case BGR24:
		i := (y*w + x) * 3
		return [3]int{int(f.Data[i+2]), int(f.Data[i+1]), int(f.Data[i])}
	case GRAY8:
		g := int(f.Data[y*w+x])
		return [3]int{g, g, g}
	case YUYV:
		i := (y*w + x&^1) * 2
		return [3]int{int(f.Data[i+(x&1)*2]), int(f.Data[i+1]), int(f.Data[i+3])}
	case I420:
		c := w*h + (y/2)*(w/2) + x/2
		return [3]int{int(f.Data[y*w+x]), int(f.Data[c]), int(f.Data[c+(w/2)*(h/2)])}
	case NV12:
		c := w*h + (y/2)*w + x&^1
		return [3]int{int(f.Data[y*w+x]), int(f.Data[c]), int(f.Data[c+1])}
	}
	panic("format " + f.Format)
}

func TestSyntheticPattern(t *testing.T) {
	// Expected values: 100% white, yellow and black bars and the orange
	// (255,128,0) box. In BT.601 limited-range YCbCr white is 235/128/128,
	// black 16/128/128 and 100% yellow 210/16/146, the values of the
	// 100/0/100/0 colour-bar tables (ITU-R BT.601, ±1 for rounding); grey
	// levels are 0.299R+0.587G+0.114B.
	for _, tc := range []struct {
		fmt                       string
		white, yellow, black, box [3]int
	}{
		{"RGB24", [3]int{255, 255, 255}, [3]int{255, 255, 0}, [3]int{0, 0, 0}, [3]int{255, 128, 0}},
		{"BGR24", [3]int{255, 255, 255}, [3]int{255, 255, 0}, [3]int{0, 0, 0}, [3]int{255, 128, 0}},
		{"GRAY", [3]int{255, 255, 255}, [3]int{226, 226, 226}, [3]int{0, 0, 0}, [3]int{151, 151, 151}},
		{"YUYV", [3]int{235, 128, 128}, [3]int{210, 16, 146}, [3]int{16, 128, 128}, [3]int{146, 53, 193}},
		{"I420", [3]int{235, 128, 128}, [3]int{210, 16, 146}, [3]int{16, 128, 128}, [3]int{146, 53, 193}},
		{"NV12", [3]int{235, 128, 128}, [3]int{210, 16, 146}, [3]int{16, 128, 128}, [3]int{146, 53, 193}},
	} {
		t.Run(tc.fmt, func(t *testing.T) {
			s, err := Open("synthetic:?w=160&h=96&fps=0&fmt="+tc.fmt, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !IsLive(s) {
				t.Error("synthetic source should be live")
			}
			var f Frame
			var boxX []int
			for i := range 3 {
				if err := s.Read(&f); err != nil {
					t.Fatal(err)
				}
				want, _ := rawFrameLen(f.Format, 160, 96)
				if f.Width != 160 || f.Height != 96 || len(f.Data) != want || f.Seq != uint64(i) || f.Label != -1 {
					t.Fatalf("frame %dx%d %s, %d bytes, seq %d label %d", f.Width, f.Height, f.Format, len(f.Data), f.Seq, f.Label)
				}
				// Bars: 8 of 20 pixels; sample below the counter strip and
				// above the box.
				for _, bar := range []struct {
					x    int
					want [3]int
				}{{10, tc.white}, {30, tc.yellow}, {150, tc.black}} {
					if got := syntheticPixel(&f, bar.x, 12); !near(got, bar.want, 1) {
						t.Errorf("bar at x=%d: %v, want %v", bar.x, got, bar.want)
					}
				}
				// The counter strip (6 rows, 32 cells of 5 pixels) spells
				// the frame number.
				var n uint64
				for k := range 32 {
					n <<= 1
					if syntheticPixel(&f, k*5+2, 2)[0] > 128 {
						n |= 1
					}
				}
				if n != f.Seq {
					t.Errorf("counter strip reads %d, want %d", n, f.Seq)
				}
				// The box (24x24, rows 36..59) is the run of its colour on
				// row 48.
				left := -1
				for x := range 160 {
					if near(syntheticPixel(&f, x, 48), tc.box, 1) {
						left = x
						break
					}
				}
				boxX = append(boxX, left)
			}
			if boxX[0] != 0 || boxX[1] != 4 || boxX[2] != 8 {
				t.Errorf("box left edge per frame %v, want it moving 4 pixels a frame: [0 4 8]", boxX)
			}
		})
	}
}

func near(a, b [3]int, tol int) bool {
	for i := range a {
		if d := a[i] - b[i]; d > tol || d < -tol {
			return false
		}
	}
	return true
}

func TestSyntheticDefaultsAndOptions(t *testing.T) {
	for _, tc := range []struct {
		uri    string
		o      Options
		w, h   int
		format PixelFormat
	}{
		{"synthetic", Options{}, 320, 240, RGB24},
		{"synthetic:", Options{Width: 224, Height: 224, Format: YUYV}, 224, 224, YUYV},
		{"synthetic:?w=640&h=480&fmt=yuyv", Options{Width: 224, Height: 224}, 640, 480, YUYV},
		{"synthetic:?fmt=GRAY8", Options{Format: MJPEG}, 320, 240, GRAY8},
		{"synthetic", Options{Format: MJPEG}, 320, 240, RGB24},
	} {
		s, err := Open(tc.uri, tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		var f Frame
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if f.Width != tc.w || f.Height != tc.h || f.Format != tc.format {
			t.Errorf("%s %+v: %dx%d %s, want %dx%d %s", tc.uri, tc.o, f.Width, f.Height, f.Format, tc.w, tc.h, tc.format)
		}
	}
}

func TestSyntheticBadURIs(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"synthetic:?w=0", "w=\"0\": want an integer from 64"},
		{"synthetic:?w=abc", `w="abc"`},
		{"synthetic:?h=100000", `h="100000"`},
		{"synthetic:?fmt=MJPEG", "synthetic frames are raw"},
		{"synthetic:?fmt=H264", `pixel format "H264"`},
		{"synthetic:?w=99&fmt=I420", "needs even width and height"},
		{"synthetic:?fps=-3", "fps"},
		{"synthetic:?size=640x480", `unknown query key "size"`},
		{"synthetic:foo", "takes no path"},
	} {
		_, err := Open(tc.uri, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s): error %v, want %q", tc.uri, err, tc.want)
		}
	}
}

func TestSyntheticReadAllocatesNothing(t *testing.T) {
	for _, format := range []string{"RGB24", "YUYV", "I420", "NV12", "GRAY"} {
		s, err := Open("synthetic:?fps=0&fmt="+format, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var f Frame
		s.Read(&f)
		if n := testing.AllocsPerRun(50, func() {
			if err := s.Read(&f); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per Read, want 0", format, n)
		}
		s.Close()
	}
}

func TestSyntheticPacedAndClose(t *testing.T) {
	s, err := Open("synthetic:?fps=100", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var f Frame
	start := time.Now()
	for range 11 {
		if err := s.Read(&f); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("11 frames at 100 fps in %v, want at least 100ms", el)
	}
	s.Close()
	if err := s.Read(&f); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
}
