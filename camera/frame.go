package camera

import (
	"errors"
	"time"
)

// PixelFormat names how a Frame's bytes are laid out.
type PixelFormat string

// Pixel formats sources deliver. Byte order is explicit: RGB24 is R,G,B
// in memory; BGR24 is B,G,R in memory (what libcamera calls "RGB888").
const (
	YUYV  PixelFormat = "YUYV"  // packed 4:2:2, Y0 U Y1 V (V4L2_PIX_FMT_YUYV)
	I420  PixelFormat = "I420"  // planar 4:2:0: Y plane, U plane, V plane (rpicam-vid --codec yuv420)
	NV12  PixelFormat = "NV12"  // Y plane, interleaved U,V plane (Jetson nvvidconv)
	MJPEG PixelFormat = "MJPEG" // one JPEG image per frame, DHT optional
	RGB24 PixelFormat = "RGB24" // R,G,B per pixel
	BGR24 PixelFormat = "BGR24" // B,G,R per pixel
	GRAY8 PixelFormat = "GRAY"  // one byte per pixel
)

// Frame is one captured picture. Sources reuse Data's capacity from one
// Read to the next, so a steady capture loop allocates nothing.
type Frame struct {
	Seq    uint64    // 0, 1, 2, … in capture order (per source, across reconnects)
	Time   time.Time // when the source captured (or received) it
	Format PixelFormat
	Width  int
	Height int
	Data   []byte // Format's bytes; for MJPEG the whole JPEG
	Label  int    // ground-truth class index, or -1 when the source does not know
	File   string // the image file it was read from (the file source); "" for other sources
}

// Source delivers frames. Read fills f (reusing f.Data) with the next
// frame; it returns io.EOF when a finite source (files, idx) is exhausted,
// and any other error when the device or process failed.
type Source interface {
	Read(f *Frame) error
	Close() error
}

// Live is implemented by sources whose frames arrive in real time
// (cameras, pipes): the loop keeps only the newest frame from them. Finite
// sources (files, idx) are not live: every frame is classified.
type Live interface {
	Live() bool
}

// IsLive reports whether s delivers frames in real time.
func IsLive(s Source) bool {
	l, ok := s.(Live)
	return ok && l.Live()
}

// ErrNoCamera is returned by Open when a default camera was asked for and
// none exists.
var ErrNoCamera = errors.New("no camera found")
