package camera

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

// bt601 returns the limited-range BT.601 code of an RGB pixel (ITU-R
// BT.601-7 §2.5: Y = 16 + 219·E'y, Cb/Cr = 128 + 224·E'), in float so the
// frames built here come from a second, independent formula.
func bt601(r, g, b uint8) (y, cb, cr uint8) {
	R, G, B := float64(r)/255, float64(g)/255, float64(b)/255
	ey := 0.299*R + 0.587*G + 0.114*B
	round := func(v float64) uint8 { return uint8(math.Min(255, math.Max(0, math.Round(v)))) }
	return round(16 + 219*ey), round(128 + 224*(B-ey)/1.772), round(128 + 224*(R-ey)/1.402)
}

// encodeRaw turns packed RGB24 into a raw YUV frame (chroma of each pixel
// pair or 2×2 block averaged) or into BGR24.
func encodeRaw(format PixelFormat, rgb []byte, w, h int) *Frame {
	at := func(x, y int) (uint8, uint8, uint8) {
		x, y = min(x, w-1), min(y, h-1)
		p := rgb[3*(y*w+x):]
		return bt601(p[0], p[1], p[2])
	}
	chroma := func(x, y, nx, ny int) (uint8, uint8) {
		var su, sv, n int
		for j := range ny {
			for i := range nx {
				_, u, v := at(x+i, y+j)
				su, sv, n = su+int(u), sv+int(v), n+1
			}
		}
		return uint8((su + n/2) / n), uint8((sv + n/2) / n)
	}
	f := &Frame{Format: format, Width: w, Height: h, Label: -1}
	cw, ch := (w+1)/2, (h+1)/2
	switch format {
	case BGR24:
		for i := 0; i < len(rgb); i += 3 {
			f.Data = append(f.Data, rgb[i+2], rgb[i+1], rgb[i])
		}
	case YUYV:
		for y := range h {
			for x := 0; x < w; x += 2 {
				y0, _, _ := at(x, y)
				y1, _, _ := at(x+1, y)
				u, v := chroma(x, y, 2, 1)
				f.Data = append(f.Data, y0, u, y1, v)
			}
		}
	case I420, NV12:
		for y := range h {
			for x := range w {
				l, _, _ := at(x, y)
				f.Data = append(f.Data, l)
			}
		}
		us, vs := make([]byte, 0, cw*ch), make([]byte, 0, cw*ch)
		for y := 0; y < h; y += 2 {
			for x := 0; x < w; x += 2 {
				u, v := chroma(x, y, 2, 2)
				us, vs = append(us, u), append(vs, v)
			}
		}
		if format == I420 {
			f.Data = append(append(f.Data, us...), vs...)
		} else {
			for i := range us {
				f.Data = append(f.Data, us[i], vs[i])
			}
		}
	default:
		panic("encodeRaw: " + format)
	}
	return f
}

func solidRGB(w, h int, r, g, b uint8) []byte {
	px := make([]byte, 0, 3*w*h)
	for range w * h {
		px = append(px, r, g, b)
	}
	return px
}

// TestRedFrame is the acceptance test: a pure red picture
// (R=255, G=0, B=0) in every format lights up the red input channel only.
// Note that libcamera's "RGB888" is B,G,R in memory: it must be read as
// BGR24, or this test's BGR case is what a Pi camera would show.
func TestRedFrame(t *testing.T) {
	type redFrame struct {
		name string
		f    *Frame
	}
	var frames []redFrame
	for _, fx := range []struct {
		file   string
		format PixelFormat
	}{
		{"red_64x48.rgb24", RGB24}, {"red_64x48.bgr24", BGR24}, {"red_64x48.yuyv", YUYV},
		{"red_64x48.i420", I420}, {"red_64x48.nv12", NV12},
		{"red_64x48_420.jpg", MJPEG}, {"red_64x48_422_nodht.jpg", MJPEG},
	} {
		frames = append(frames, redFrame{"ffmpeg " + fx.file, &Frame{Format: fx.format, Width: 64, Height: 48, Data: readFixture(t, fx.file)}})
	}
	// Built in Go, at a size no fixture has (odd height for the 4:2:0
	// formats' rounded-up chroma).
	const w, h = 50, 37
	red := solidRGB(w, h, 255, 0, 0)
	frames = append(frames, redFrame{"go RGB24", &Frame{Format: RGB24, Width: w, Height: h, Data: red}})
	for _, f := range []PixelFormat{BGR24, YUYV, I420, NV12} {
		frames = append(frames, redFrame{"go " + string(f), encodeRaw(f, red, w, h)})
	}
	frames = append(frames, redFrame{"go MJPEG (image/jpeg)", &Frame{Format: MJPEG, Width: w, Height: h, Data: goJPEG(t, rgbImage(red, w, h), 90)}})

	specs := []struct {
		name string
		in   infer.Shape
		spec infer.InputSpec
		hot  int // the channel that must light up
	}{
		{"RGB resize-crop", infer.Shape{C: 3, H: 32, W: 32}, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 36}, 0},
		{"RGB stretch", infer.Shape{C: 3, H: 24, W: 40}, infer.InputSpec{ChannelOrder: "RGB", Resize: "stretch"}, 0},
		{"BGR resize-crop", infer.Shape{C: 3, H: 32, W: 32}, infer.InputSpec{ChannelOrder: "BGR", Resize: "resize-crop", ResizeShorter: 36}, 2},
		{"BGR stretch", infer.Shape{C: 3, H: 96, W: 128}, infer.InputSpec{ChannelOrder: "BGR", Resize: "stretch"}, 2},
	}
	for _, s := range specs {
		p, err := NewPreprocessor(s.in, s.spec)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, s.in.Elems())
		plane := s.in.H * s.in.W
		for _, fr := range frames {
			t.Run(s.name+"/"+fr.name, func(t *testing.T) {
				if err := p.Into(dst, fr.f); err != nil {
					t.Fatal(err)
				}
				for c := range 3 {
					lo, hi := 255, 0
					for _, v := range dst[c*plane : (c+1)*plane] {
						lo, hi = min(lo, int(v)), max(hi, int(v))
					}
					if c == s.hot && lo < 230 {
						t.Errorf("channel %d (red) has values down to %d, want ≥ 230", c, lo)
					}
					if c != s.hot && hi > 30 {
						t.Errorf("channel %d has values up to %d, want ≤ 30", c, hi)
					}
				}
			})
		}
	}
	// Grey input: red's BT.601 luma is 0.299·255 = 76.
	p, err := NewPreprocessor(infer.Shape{C: 1, H: 28, W: 28}, infer.InputSpec{ChannelOrder: "GRAY", Resize: "stretch"})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 28*28)
	for _, fr := range frames {
		if err := p.Into(dst, fr.f); err != nil {
			t.Fatalf("%s: %v", fr.name, err)
		}
		for _, v := range dst {
			if v < 72 || v > 80 {
				t.Fatalf("%s: grey %d, want 76 ± 4", fr.name, v)
			}
		}
	}
}

// refAxis is the textbook definition of the resampling along one axis,
// for output i: source pixel j covers [j, j+1); the output covers
// [(off+i)·s, (off+i+1)·s) with s = src/resized. Shrinking by 2× or more
// averages over that interval by area; otherwise bilinear interpolation at
// its centre, clamped to the edge pixels.
func refAxis(src, resized, off, i int) map[int]float64 {
	s := float64(src) / float64(resized)
	w := map[int]float64{}
	if s >= 2 {
		a, b := float64(off+i)*s, float64(off+i+1)*s
		a, b = math.Max(a, 0), math.Min(b, float64(src))
		total := 0.0
		for j := 0; j < src; j++ {
			if o := math.Min(b, float64(j+1)) - math.Max(a, float64(j)); o > 0 {
				w[j] += o
				total += o
			}
		}
		if total == 0 {
			w[min(max(int(a), 0), src-1)] = 1
			return w
		}
		for j := range w {
			w[j] /= total
		}
		return w
	}
	c := math.Min(math.Max((float64(off+i)+0.5)*s-0.5, 0), float64(src-1))
	j := int(math.Floor(c))
	f := c - float64(j)
	w[j] += 1 - f
	if f > 0 {
		w[j+1] += f
	}
	return w
}

// refPreprocess resizes packed RGB24 per spec in float64, straight from
// the definition (torchvision geometry, see TestTorchvisionGeometry).
func refPreprocess(rgb []byte, sw, sh int, in infer.Shape, spec infer.InputSpec) []byte {
	rw, rh, ox, oy := in.W, in.H, 0, 0
	if spec.Resize == "resize-crop" {
		if sw <= sh {
			rw, rh = spec.ResizeShorter, int(float64(spec.ResizeShorter)*float64(sh)/float64(sw))
		} else {
			rw, rh = int(float64(spec.ResizeShorter)*float64(sw)/float64(sh)), spec.ResizeShorter
		}
		ox, oy = int(math.RoundToEven(float64(rw-in.W)/2)), int(math.RoundToEven(float64(rh-in.H)/2))
	}
	out := make([]byte, in.Elems())
	for y := range in.H {
		wy := refAxis(sh, rh, oy, y)
		for x := range in.W {
			wx := refAxis(sw, rw, ox, x)
			var acc [3]float64
			for j, a := range wy {
				for i, b := range wx {
					p := rgb[3*(j*sw+i):]
					for c := range 3 {
						acc[c] += a * b * float64(p[c])
					}
				}
			}
			pix := y*in.W + x
			switch spec.ChannelOrder {
			case "GRAY":
				out[pix] = uint8(math.Round(0.299*acc[0] + 0.587*acc[1] + 0.114*acc[2]))
			case "RGB":
				for c := range 3 {
					out[c*in.H*in.W+pix] = uint8(math.Round(acc[c]))
				}
			case "BGR":
				for c := range 3 {
					out[c*in.H*in.W+pix] = uint8(math.Round(acc[2-c]))
				}
			}
		}
	}
	return out
}

// TestPreprocessMatchesReference compares the fixed-point, separable
// Preprocessor with refPreprocess on real pictures: ±1 (fixed-point
// rounding), for upscaling, mild and strong shrinking, crops and stretches.
func TestPreprocessMatchesReference(t *testing.T) {
	vga, err := ToRGB(nil, &Frame{Format: MJPEG, Data: readFixture(t, "testsrc2_640x480_422.jpg")})
	if err != nil {
		t.Fatal(err)
	}
	qvga := readFixture(t, "testsrc2_160x120.rgb24")
	small := readFixture(t, "testsrc2_64x48.rgb24")
	rc := func(order string, shorter int) infer.InputSpec {
		return infer.InputSpec{ChannelOrder: order, Resize: "resize-crop", ResizeShorter: shorter}
	}
	st := func(order string) infer.InputSpec { return infer.InputSpec{ChannelOrder: order, Resize: "stretch"} }
	tests := []struct {
		name   string
		rgb    []byte
		sw, sh int
		in     infer.Shape
		spec   infer.InputSpec
	}{
		{"vga imagenet", vga, 640, 480, infer.Shape{C: 3, H: 224, W: 224}, rc("RGB", 256)},
		{"vga grey 28 area", vga, 640, 480, infer.Shape{C: 1, H: 28, W: 28}, rc("GRAY", 32)},
		{"vga stretch 28", vga, 640, 480, infer.Shape{C: 3, H: 28, W: 28}, st("BGR")},
		{"qvga upscale", qvga, 160, 120, infer.Shape{C: 3, H: 224, W: 224}, rc("RGB", 256)},
		{"qvga area 3.3x", qvga, 160, 120, infer.Shape{C: 3, H: 32, W: 32}, rc("BGR", 36)},
		{"qvga exactly 2x", qvga, 160, 120, infer.Shape{C: 3, H: 60, W: 80}, st("RGB")},
		{"qvga 1.6x/1.33x", qvga, 160, 120, infer.Shape{C: 3, H: 90, W: 100}, st("RGB")},
		{"qvga mixed axes", qvga, 160, 120, infer.Shape{C: 1, H: 100, W: 30}, st("GRAY")},
		{"qvga crop wider than resized", qvga, 160, 120, infer.Shape{C: 3, H: 224, W: 300}, rc("RGB", 224)},
		{"portrait", qvga, 120, 160, infer.Shape{C: 3, H: 40, W: 40}, rc("RGB", 48)},
		{"identity", small, 64, 48, infer.Shape{C: 3, H: 48, W: 64}, st("RGB")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPreprocessor(tc.in, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, tc.in.Elems())
			if err := p.Into(got, &Frame{Format: RGB24, Width: tc.sw, Height: tc.sh, Data: tc.rgb}); err != nil {
				t.Fatal(err)
			}
			want := refPreprocess(tc.rgb, tc.sw, tc.sh, tc.in, tc.spec)
			worst, mean := diffStats(got, want)
			if worst > 1 {
				t.Errorf("differs from the float reference by up to %d (mean %.3f), want ≤ 1", worst, mean)
			}
			if tc.name == "identity" && !bytes.Equal(got, want) {
				t.Error("same-size stretch is not an exact copy")
			}
		})
	}
}

// TestTorchvisionGeometry checks the resize-crop plan against numbers
// worked out by hand from torchvision's code (transforms/functional.py:
// _compute_resized_output_size gives the longer side
// int(size·long/short); center_crop starts at int(round((h−crop)/2)),
// Python's round-half-to-even). 640x480 → Resize(256) → 341x256 →
// CenterCrop(224) starts at x = round(58.5) = 58, y = 16. Output pixel 0's
// centre is then at source x = (58.5)·640/341 − 0.5 = 109.2947…, y =
// 16.5·480/256 − 0.5 = 30.4375.
func TestTorchvisionGeometry(t *testing.T) {
	tests := []struct {
		sw, sh         int
		x0, y0         int     // first source pixel of output (0, 0)
		fx, fy         float64 // weight of the second pixel
		xLast, yLast   int     // first source pixel of the last output
		fxLast, fyLast float64
	}{
		// Last column: (58+223.5)·640/341 − 0.5 = 527.8284…; last row
		// (16+223.5)·1.875 − 0.5 = 448.5625.
		{640, 480, 109, 30, 0.29472, 0.4375, 527, 448, 0.82845, 0.5625},
		// Portrait: the same with the axes swapped.
		{480, 640, 30, 109, 0.4375, 0.29472, 448, 527, 0.5625, 0.82845},
	}
	for _, tc := range tests {
		p, err := NewPreprocessor(infer.Shape{C: 3, H: 224, W: 224}, infer.ImageNetSpec())
		if err != nil {
			t.Fatal(err)
		}
		p.plan(tc.sw, tc.sh)
		check := func(axis string, a *axisPlan, i, start int, frac float64) {
			if a.area {
				t.Fatalf("%dx%d %s: shrink < 2 planned as area", tc.sw, tc.sh, axis)
			}
			ws := a.w[i*a.taps : (i+1)*a.taps]
			// The pixel pair may sit anywhere in the tap window.
			k := -1
			for j, w := range ws {
				if w != 0 {
					k = j
					break
				}
			}
			if k < 0 || a.start[i]+k != start || k+1 >= len(ws) {
				t.Fatalf("%dx%d %s output %d: window %d + %v, want pixels %d, %d", tc.sw, tc.sh, axis, i, a.start[i], ws, start, start+1)
			}
			if got := float64(ws[k+1]) / (1 << weightBits); math.Abs(got-frac) > 1e-4 {
				t.Errorf("%dx%d %s output %d: weight of pixel %d is %.5f, want %.5f", tc.sw, tc.sh, axis, i, start+1, got, frac)
			}
		}
		check("x", &p.hz, 0, tc.x0, tc.fx)
		check("y", &p.vt, 0, tc.y0, tc.fy)
		check("x", &p.hz, 223, tc.xLast, tc.fxLast)
		check("y", &p.vt, 223, tc.yLast, tc.fyLast)
	}
}

// testImages are the same pictures as the image package types ImageToCHW
// meets in image folders.
func testImages(t *testing.T) map[string]image.Image {
	rgb := readFixture(t, "testsrc2_160x120.rgb24")
	ycc, err := jpeg.Decode(bytes.NewReader(readFixture(t, "testsrc2_160x120_422.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	rgba := rgbImage(rgb, 160, 120)
	gray := image.NewGray(rgba.Bounds())
	nrgba := image.NewNRGBA(image.Rect(10, 20, 110, 95)) // not at the origin
	for y := range 120 {
		for x := range 160 {
			gray.Set(x, y, color.GrayModel.Convert(rgba.At(x, y)))
			nrgba.Set(x+10, y+20, rgba.At(x, y))
		}
	}
	return map[string]image.Image{"RGBA": rgba, "YCbCr 4:2:2": ycc, "Gray": gray, "NRGBA offset": nrgba}
}

// TestImageToCHWMatchesPreprocessor: eval on an image folder sees exactly
// the pixels the camera loop would feed for the same picture.
func TestImageToCHWMatchesPreprocessor(t *testing.T) {
	specs := []struct {
		in   infer.Shape
		spec infer.InputSpec
	}{
		{infer.Shape{C: 3, H: 64, W: 64}, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 72}},
		{infer.Shape{C: 3, H: 30, W: 40}, infer.InputSpec{ChannelOrder: "BGR", Resize: "stretch"}},
		{infer.Shape{C: 1, H: 28, W: 28}, infer.InputSpec{ChannelOrder: "GRAY", Resize: "stretch"}},
		{infer.Shape{C: 3, H: 24, W: 24}, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 27, ResizeFilter: infer.ResizeBilinearAntialias}},
	}
	for name, img := range testImages(t) {
		b := img.Bounds()
		var px []byte
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
				px = append(px, c.R, c.G, c.B)
			}
		}
		frame := &Frame{Format: RGB24, Width: b.Dx(), Height: b.Dy(), Data: px}
		for _, s := range specs {
			t.Run(fmt.Sprintf("%s/%s %v", name, s.spec.ChannelOrder, s.in), func(t *testing.T) {
				got := make([]byte, s.in.Elems())
				if err := ImageToCHW(img, s.in, s.spec, got); err != nil {
					t.Fatal(err)
				}
				p, err := NewPreprocessor(s.in, s.spec)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]byte, s.in.Elems())
				if err := p.Into(want, frame); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					worst, _ := diffStats(got, want)
					t.Fatalf("ImageToCHW differs from the Preprocessor by up to %d", worst)
				}
			})
		}
	}
}

// TestPreprocessFormatsAgree feeds one picture in every format and
// compares the model input with the RGB24 one's. Resizing averages away
// much of the chroma-subsampling error that TestToRGBFormatsAgree sees.
func TestPreprocessFormatsAgree(t *testing.T) {
	for _, s := range []struct {
		in   infer.Shape
		spec infer.InputSpec
	}{
		{infer.Shape{C: 3, H: 24, W: 32}, infer.InputSpec{ChannelOrder: "RGB", Resize: "stretch"}},
		{infer.Shape{C: 1, H: 28, W: 28}, infer.InputSpec{ChannelOrder: "GRAY", Resize: "resize-crop", ResizeShorter: 32}},
	} {
		p, err := NewPreprocessor(s.in, s.spec)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, s.in.Elems())
		if err := p.Into(want, &Frame{Format: RGB24, Width: 64, Height: 48, Data: readFixture(t, "testsrc2_64x48.rgb24")}); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, s.in.Elems())
		fixtures := append(formatFixtures[1:], struct {
			file    string
			format  PixelFormat
			maxDiff int
			mean    float64
		}{"testsrc2_64x48.gray", GRAY8, 2, 0.1})
		for _, fx := range fixtures {
			if fx.format == GRAY8 && s.in.C == 3 {
				continue
			}
			if err := p.Into(got, &Frame{Format: fx.format, Width: 64, Height: 48, Data: readFixture(t, fx.file)}); err != nil {
				t.Fatalf("%s: %v", fx.file, err)
			}
			worst, mean := diffStats(got, want)
			t.Logf("%s %-28s max %3d mean %.2f", s.spec.ChannelOrder, fx.file, worst, mean)
			if worst > fx.maxDiff || mean > fx.mean {
				t.Errorf("%s %s: max %d mean %.2f, want ≤ %d, ≤ %.2f", s.spec.ChannelOrder, fx.file, worst, mean, fx.maxDiff, fx.mean)
			}
		}
	}
}

// allocFrames are frames of every format for the allocation tests.
func allocFrames(t testing.TB) map[string]*Frame {
	rgb := readFixture(t, "testsrc2_64x48.rgb24")
	frames := map[string]*Frame{
		"RGB24":     {Format: RGB24, Width: 64, Height: 48, Data: rgb},
		"GRAY":      {Format: GRAY8, Width: 64, Height: 48, Data: readFixture(t, "testsrc2_64x48.gray")},
		"grey JPEG": {Format: MJPEG, Data: goJPEG(t, image.NewGray(image.Rect(0, 0, 40, 30)), 80)},
	}
	for _, f := range []PixelFormat{BGR24, YUYV, I420, NV12} {
		frames[string(f)] = encodeRaw(f, rgb, 64, 48)
	}
	for _, n := range []string{"420", "422", "444", "420_dri", "422_nodht"} {
		frames["MJPEG "+n] = &Frame{Format: MJPEG, Width: 64, Height: 48, Data: readFixture(t, "testsrc2_64x48_"+n+".jpg")}
	}
	return frames
}

func TestPreprocessAllocs(t *testing.T) {
	for _, s := range []struct {
		in   infer.Shape
		spec infer.InputSpec
	}{
		{infer.Shape{C: 3, H: 32, W: 32}, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 36}},
		{infer.Shape{C: 3, H: 100, W: 100}, infer.InputSpec{ChannelOrder: "BGR", Resize: "stretch"}},
		{infer.Shape{C: 1, H: 28, W: 28}, infer.InputSpec{ChannelOrder: "GRAY", Resize: "stretch"}},
		{infer.Shape{C: 3, H: 32, W: 32}, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 36, ResizeFilter: infer.ResizeBilinearAntialias}},
	} {
		p, err := NewPreprocessor(s.in, s.spec)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, s.in.Elems())
		for name, f := range allocFrames(t) {
			if err := p.Into(dst, f); err != nil { // plans for this size
				t.Fatalf("%s: %v", name, err)
			}
			if n := testing.AllocsPerRun(10, func() { _ = p.Into(dst, f) }); n != 0 {
				t.Errorf("%s → %s %v: %.1f allocations per frame, want 0", name, s.spec.ChannelOrder, s.in, n)
			}
		}
	}
}

func TestPreprocessErrors(t *testing.T) {
	good := infer.InputSpec{ChannelOrder: "RGB", Resize: "stretch"}
	for _, tc := range []struct {
		name string
		in   infer.Shape
		spec infer.InputSpec
		want string
	}{
		{"gray with 3 channels", infer.Shape{C: 3, H: 8, W: 8}, infer.InputSpec{ChannelOrder: "GRAY", Resize: "stretch"}, "GRAY needs 1 input channel, the model has 3"},
		{"rgb with 1 channel", infer.Shape{C: 1, H: 8, W: 8}, good, "RGB needs 3 input channels"},
		{"unknown order", infer.Shape{C: 3, H: 8, W: 8}, infer.InputSpec{ChannelOrder: "rgb", Resize: "stretch"}, `channel order "rgb": want RGB, BGR or GRAY`},
		{"unknown resize", infer.Shape{C: 3, H: 8, W: 8}, infer.InputSpec{ChannelOrder: "RGB", Resize: "crop"}, `resize "crop"`},
		{"unknown filter", infer.Shape{C: 3, H: 8, W: 8}, infer.InputSpec{ChannelOrder: "RGB", Resize: "stretch", ResizeFilter: "lanczos"}, `resize filter "lanczos": want bilinear-antialias`},
		{"shorter too small", infer.Shape{C: 3, H: 8, W: 8}, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 7}, "resize_shorter 7"},
		{"empty input", infer.Shape{C: 3, H: 0, W: 8}, good, "want 1..16384"},
	} {
		if _, err := NewPreprocessor(tc.in, tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	p, err := NewPreprocessor(infer.Shape{C: 3, H: 8, W: 8}, good)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Into(make([]byte, 100), &Frame{Format: GRAY8, Width: 1, Height: 1, Data: []byte{1}}); err == nil || !strings.Contains(err.Error(), "destination has 100 bytes, want 192") {
		t.Errorf("wrong dst: err = %v", err)
	}
	jpg := readFixture(t, "testsrc2_64x48_420.jpg")
	dst := make([]byte, 192)
	for _, tc := range badFrames {
		f := tc.f
		if strings.Contains(tc.name, "mismatch") {
			f.Data = jpg
		}
		if err := p.Into(dst, &f); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

var fuzzFormats = []PixelFormat{YUYV, I420, NV12, MJPEG, RGB24, BGR24, GRAY8, "XRGB"}

func FuzzPreprocess(f *testing.F) {
	for _, fx := range formatFixtures {
		f.Add(byte(0), uint16(64), uint16(48), readFixture(f, fx.file), false)
	}
	for i := range fuzzFormats {
		f.Add(byte(i), uint16(3), uint16(3), make([]byte, 27), true)
	}
	rgb, err := NewPreprocessor(infer.Shape{C: 3, H: 6, W: 8}, infer.InputSpec{ChannelOrder: "BGR", Resize: "resize-crop", ResizeShorter: 7})
	if err != nil {
		f.Fatal(err)
	}
	gray, err := NewPreprocessor(infer.Shape{C: 1, H: 5, W: 5}, infer.InputSpec{ChannelOrder: "GRAY", Resize: "stretch"})
	if err != nil {
		f.Fatal(err)
	}
	dRGB, dGray := make([]byte, 3*6*8), make([]byte, 25)
	f.Fuzz(func(t *testing.T, format byte, w, h uint16, data []byte, grey bool) {
		fr := &Frame{Format: fuzzFormats[int(format)%len(fuzzFormats)], Width: int(int16(w)), Height: int(int16(h)), Data: data}
		if fr.Format == MJPEG && format >= byte(len(fuzzFormats)) {
			fr.Width, fr.Height = 0, 0 // size unknown, as from some sources
		}
		var err error
		if grey {
			err = gray.Into(dGray, fr)
		} else {
			err = rgb.Into(dRGB, fr)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}

// benchFrames are one VGA picture (a 4:2:2 JPEG from ffmpeg, as UVC
// webcams send) as YUYV, I420 and MJPEG frames.
func benchFrames(b *testing.B) map[string]*Frame {
	jpg := readFixture(b, "testsrc2_640x480_422.jpg")
	rgb, err := ToRGB(nil, &Frame{Format: MJPEG, Data: jpg})
	if err != nil {
		b.Fatal(err)
	}
	return map[string]*Frame{
		"YUYV":  encodeRaw(YUYV, rgb, 640, 480),
		"I420":  encodeRaw(I420, rgb, 640, 480),
		"MJPEG": {Format: MJPEG, Width: 640, Height: 480, Data: jpg},
	}
}

func BenchmarkPreprocess(b *testing.B) {
	frames := benchFrames(b)
	pil := infer.ImageNetSpec()
	pil.ResizeFilter = infer.ResizeBilinearAntialias
	pil64 := pil
	pil64.ResizeShorter = 73
	area64 := infer.ImageNetSpec()
	area64.ResizeShorter = 73
	for _, s := range []struct {
		name string
		in   infer.Shape
		spec infer.InputSpec
	}{
		{"224RGB", infer.Shape{C: 3, H: 224, W: 224}, infer.ImageNetSpec()},
		{"224RGB-antialias", infer.Shape{C: 3, H: 224, W: 224}, pil},
		{"64RGB", infer.Shape{C: 3, H: 64, W: 64}, area64},
		{"64RGB-antialias", infer.Shape{C: 3, H: 64, W: 64}, pil64},
		{"28GRAY", infer.Shape{C: 1, H: 28, W: 28}, infer.InputSpec{ChannelOrder: "GRAY", Resize: "stretch"}},
	} {
		for _, name := range []string{"YUYV", "I420", "MJPEG"} {
			b.Run(name+"/"+s.name, func(b *testing.B) {
				p, err := NewPreprocessor(s.in, s.spec)
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, s.in.Elems())
				f := frames[name]
				if err := p.Into(dst, f); err != nil { // plan and size the buffers once
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := p.Into(dst, f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkJPEGDecode(b *testing.B) {
	jpg := readFixture(b, "testsrc2_640x480_422.jpg")
	var d JPEGDecoder
	if err := d.Decode(jpg); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(jpg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(jpg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPreprocessSizeChange alternates frame sizes and formats through one
// Preprocessor: each result must equal a fresh Preprocessor's.
func TestPreprocessSizeChange(t *testing.T) {
	in, spec := infer.Shape{C: 3, H: 40, W: 40}, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 44}
	shared, err := NewPreprocessor(in, spec)
	if err != nil {
		t.Fatal(err)
	}
	frames := []*Frame{
		{Format: RGB24, Width: 64, Height: 48, Data: readFixture(t, "testsrc2_64x48.rgb24")},
		{Format: MJPEG, Data: readFixture(t, "testsrc2_160x120_422.jpg")},
		{Format: RGB24, Width: 62, Height: 46, Data: readFixture(t, "testsrc2_62x46.rgb24")},
		{Format: YUYV, Width: 64, Height: 48, Data: readFixture(t, "testsrc2_64x48.yuyv")},
		{Format: RGB24, Width: 160, Height: 120, Data: readFixture(t, "testsrc2_160x120.rgb24")},
	}
	got, want := make([]byte, in.Elems()), make([]byte, in.Elems())
	for round := range 2 {
		for i, f := range frames {
			fresh, _ := NewPreprocessor(in, spec)
			if err := shared.Into(got, f); err != nil {
				t.Fatal(err)
			}
			if err := fresh.Into(want, f); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("round %d frame %d (%s %dx%d): reused Preprocessor differs from a fresh one", round, i, f.Format, f.Width, f.Height)
			}
		}
	}
}

// TestAntialiasTaps checks PIL's bilinear weights where they are known in
// closed form: a 2× shrink is the [1 3 3 1]/8 kernel (renormalised where
// it hangs over the edge), a 4× one a triangle 8 pixels wide, and an
// enlargement plain bilinear between the two nearest centres.
func TestAntialiasTaps(t *testing.T) {
	for _, c := range []struct {
		name       string
		src        int
		scale      float64
		i, wantLo  int
		wantWeight []float64
	}{
		{"2x interior", 8, 2, 1, 1, []float64{1. / 8, 3. / 8, 3. / 8, 1. / 8}},
		{"2x left edge", 8, 2, 0, 0, []float64{3. / 7, 3. / 7, 1. / 7}},
		{"2x right edge", 8, 2, 3, 5, []float64{1. / 7, 3. / 7, 3. / 7}},
		{"4x interior", 16, 4, 1, 2, []float64{1. / 32, 3. / 32, 5. / 32, 7. / 32, 7. / 32, 5. / 32, 3. / 32, 1. / 32}},
		{"2x enlarge", 4, 0.5, 3, 1, []float64{0.75, 0.25}},   // centre 1.75: between pixels 1 and 2
		{"2x enlarge 2", 4, 0.5, 2, 0, []float64{0.25, 0.75}}, // centre 1.25: between 0 and 1
		{"past the edge", 4, 1, 9, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			lo, ws := antialiasTaps(c.src, c.scale, c.i)
			ok := len(ws) == len(c.wantWeight) && (len(ws) == 0 || lo == c.wantLo)
			for k := range ws {
				ok = ok && math.Abs(ws[k]-c.wantWeight[k]) < 1e-12
			}
			if !ok {
				t.Errorf("antialiasTaps(%d, %g, %d) = %d %v, want %d %v", c.src, c.scale, c.i, lo, ws, c.wantLo, c.wantWeight)
			}
		})
	}
}

// TestAntialiasFlatStaysFlat: every output's weights sum to exactly 1 at
// any shrink, so a flat picture comes out flat (13× and 1.3× shrinks, an
// enlargement, and a crop wider than the resized picture).
func TestAntialiasFlatStaysFlat(t *testing.T) {
	for _, c := range []struct {
		in   infer.Shape
		w, h int
		spec infer.InputSpec
	}{
		{infer.Shape{C: 3, H: 32, W: 32}, 640, 480, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 36}},
		{infer.Shape{C: 3, H: 320, W: 320}, 640, 480, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 365}},
		{infer.Shape{C: 3, H: 64, W: 64}, 30, 20, infer.InputSpec{ChannelOrder: "BGR", Resize: "stretch"}},
		{infer.Shape{C: 3, H: 40, W: 80}, 50, 50, infer.InputSpec{ChannelOrder: "RGB", Resize: "resize-crop", ResizeShorter: 40}},
	} {
		c.spec.ResizeFilter = infer.ResizeBilinearAntialias
		p, err := NewPreprocessor(c.in, c.spec)
		if err != nil {
			t.Fatal(err)
		}
		f := &Frame{Format: RGB24, Width: c.w, Height: c.h, Data: make([]byte, 3*c.w*c.h)}
		for i := range c.w * c.h {
			f.Data[3*i], f.Data[3*i+1], f.Data[3*i+2] = 17, 128, 251
		}
		dst := make([]byte, c.in.Elems())
		if err := p.Into(dst, f); err != nil {
			t.Fatal(err)
		}
		plane := c.in.H * c.in.W
		for i, v := range dst {
			want := [3]byte{17, 128, 251}[i/plane]
			if c.spec.ChannelOrder == "BGR" {
				want = [3]byte{251, 128, 17}[i/plane]
			}
			if v != want {
				t.Fatalf("%dx%d → %v: pixel %d = %d, want %d", c.w, c.h, c.in, i, v, want)
			}
		}
	}
}
