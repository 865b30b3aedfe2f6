package camera

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

// The pipe source: "pipe:CMD" runs CMD through /bin/sh -c and reads frames
// from its stdout — raw frames of Options.Format and Options.Width×Height
// (the --format and --size flags), or, for MJPEG, a stream of JPEG images
// split at their markers. The command is supervised (see supervise.go):
// when it fails (exits non-zero, is killed, or closes its output and
// hangs) it is restarted with backoff and Seq goes on; when it exits 0 —
// ffmpeg at the end of a file — the source ends (ErrEnded, an io.EOF).
//
//	pipe:ffmpeg -loglevel error -f v4l2 -i /dev/video0 -f rawvideo -pix_fmt yuyv422 -s 640x480 -
//	pipe:gst-launch-1.0 -q videotestsrc ! video/x-raw,format=I420,width=320,height=240 ! fdsink

func init() { register("pipe", openPipeSource) }

// MaxMJPEGFrame bounds one JPEG image in an MJPEG stream; a stream that
// runs longer without an end-of-image marker is corrupt (or not MJPEG).
const MaxMJPEGFrame = 16 << 20

// errCorruptFrame marks a frame that was skipped while the stream goes
// on: a broken JPEG in an MJPEG stream.
var errCorruptFrame = errors.New("corrupt frame")

// MaxCorruptRun is how many corrupt frames in a row a supervised source
// skips before it restarts its program (with the restart backoff): a
// program that sends only garbage (pipe:cat /dev/urandom as MJPEG) then
// costs a restart every few seconds, not a core.
const MaxCorruptRun = 30

func openPipeSource(rest string, o Options) (Source, error) {
	if rest == "" {
		return nil, errors.New("no command: want pipe:CMD (run by /bin/sh -c)")
	}
	if o.Format == "" {
		return nil, fmt.Errorf("the pixel format of the command's output is unknown: pass --format (%s, MJPEG) and, for raw formats, --size WxH", rawFormatNames)
	}
	uri := "pipe:" + rest
	s, err := newStreamSource(uri, o.Format, o.Width, o.Height)
	if err != nil {
		if o.Format != MJPEG && (o.Width <= 0 || o.Height <= 0) {
			return nil, fmt.Errorf("raw %s frames need a size: pass --size WxH", o.Format)
		}
		return nil, err
	}
	s.timeout = o.sourceTimeout()
	s.sup = newSupervisor(uri, "command", []string{"/bin/sh", "-c", rest}, o)
	s.sup.finite = true // a command that exits 0 has sent all its frames
	if err := s.sup.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// streamSource reads frames from a supervised child's stdout.
type streamSource struct {
	uri      string
	sup      *supervisor
	format   PixelFormat
	w, h     int
	frameLen int // raw formats
	mjpeg    mjpegSplitter
	gen      uint64 // the child whose stdout the splitter buffers
	seq      uint64
	skipped  atomic.Uint64
	// corruptRun counts corrupt frames since the last good one (the last
	// of them: lastCorrupt). A run is logged in one line when it ends —
	// at the next good frame, or with the restart it causes — through
	// corruptLog, which keeps such lines to one a second.
	corruptRun  int
	lastCorrupt error
	corruptLog  logLimiter
	// timeout is the read watchdog (Options.SourceTimeout; 0: off);
	// framesGen is the child that delivered the last frame, so a new
	// child's first frame gets FirstFrameAllowance times as long.
	timeout   time.Duration
	framesGen uint64
	// file: the frames of a video file, each to be classified: not live.
	file bool
}

func newStreamSource(uri string, format PixelFormat, w, h int) (*streamSource, error) {
	s := &streamSource{uri: uri, format: format, w: w, h: h}
	if format == MJPEG {
		s.mjpeg = mjpegSplitter{br: bufio.NewReaderSize(nil, 64<<10), max: MaxMJPEGFrame}
		return s, nil
	}
	n, err := rawFrameLen(format, w, h)
	if err != nil {
		return nil, err
	}
	s.frameLen = n
	return s, nil
}

func (s *streamSource) Read(f *Frame) error {
	for {
		out, gen, err := s.sup.output()
		if err != nil {
			return err
		}
		if s.timeout > 0 {
			d := s.timeout
			if gen != s.framesGen {
				d *= FirstFrameAllowance
			}
			out.SetReadDeadline(time.Now().Add(d))
		}
		if err = s.readFrame(out, gen, f); err == nil {
			s.framesGen = gen
			s.sup.delivered()
			if s.corruptRun > 0 {
				s.corruptLog.logf(s.sup.o, "%s: skipped %d corrupt frame(s) (%d in all), the last: %v", s.uri, s.corruptRun, s.skipped.Load(), s.lastCorrupt)
				s.corruptRun, s.lastCorrupt = 0, nil
			}
			f.Seq, f.Time, f.Format, f.Label = s.seq, time.Now(), s.format, -1
			s.seq++
			return nil
		}
		if s.sup.closed() {
			return ErrClosed
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			d := s.timeout
			if gen != s.framesGen {
				d *= FirstFrameAllowance
			}
			err = fmt.Errorf("no frame for %v: %w", d, err)
		}
		var lim *logLimiter
		if errors.Is(err, errCorruptFrame) {
			s.skipped.Add(1)
			if s.corruptRun++; s.corruptRun < MaxCorruptRun {
				s.lastCorrupt = err
				continue
			}
			err = fmt.Errorf("%d in a row, %d in all; the last: %w", s.corruptRun, s.skipped.Load(), err)
			s.corruptRun, s.lastCorrupt = 0, nil
			lim = &s.corruptLog
		}
		if err := s.sup.restart(gen, err, lim); err != nil {
			return err
		}
	}
}

func (s *streamSource) readFrame(out *os.File, gen uint64, f *Frame) error {
	if s.format != MJPEG {
		f.Data = resizeData(f.Data, s.frameLen)
		if _, err := io.ReadFull(out, f.Data); err != nil {
			return err
		}
		f.Width, f.Height = s.w, s.h
		return nil
	}
	if gen != s.gen {
		s.mjpeg.br.Reset(out)
		s.gen = gen
	}
	data, w, h, err := s.mjpeg.next(f.Data[:0])
	f.Data = data
	if err != nil {
		return err
	}
	if w == 0 || h == 0 { // no SOF seen: trust the configured size
		w, h = s.w, s.h
	}
	f.Width, f.Height = w, h
	return nil
}

// Live reports true, the command producing frames in real time, except
// for a video file's decoder.
func (s *streamSource) Live() bool { return !s.file }

// Reconnects counts the times the command was restarted.
func (s *streamSource) Reconnects() uint64 { return s.sup.restarts.Load() }

// Skipped counts corrupt MJPEG frames dropped.
func (s *streamSource) Skipped() uint64 { return s.skipped.Load() }

// Close stops the command: SIGTERM, SIGKILL after a grace period, reaped.
func (s *streamSource) Close() error {
	s.sup.close()
	return nil
}

// mjpegSplitter cuts a byte stream of concatenated JPEG images into
// images. It walks the marker segments by their lengths (so bytes such as
// FF D9 inside an EXIF thumbnail or a comment do not end the image) and
// scans entropy-coded data for the next marker, stepping over stuffed
// bytes (FF 00), restart markers (FF D0–D7) and fill bytes (FF FF…).
// Garbage before an image's SOI is skipped.
type mjpegSplitter struct {
	br  *bufio.Reader
	max int
	lb  [2]byte // a segment length; a field, as a local would escape to the heap
}

func corruptJPEG(format string, args ...any) error {
	return fmt.Errorf("%w: MJPEG: %s", errCorruptFrame, fmt.Sprintf(format, args...))
}

// next appends the next JPEG image (SOI to EOI) to buf and returns it
// with the size its SOF segment declares (0, 0 when it has none). Errors
// wrapping errCorruptFrame leave the stream usable: the next call looks
// for the next SOI.
func (m *mjpegSplitter) next(buf []byte) (out []byte, w, h int, err error) {
	if err := m.findSOI(); err != nil {
		return buf, 0, 0, err
	}
	buf = append(buf, 0xFF, 0xD8)
	var marker byte
	pending := false
	for {
		if !pending {
			if marker, err = m.readMarker(); err != nil {
				return buf, w, h, err
			}
		}
		pending = false
		switch {
		case marker == 0xD9: // EOI
			return append(buf, 0xFF, 0xD9), w, h, nil
		case marker == 0xD8:
			return buf, w, h, corruptJPEG("start of image inside an image after %d bytes", len(buf))
		case marker >= 0xD0 && marker <= 0xD7, marker == 0x01: // RSTn, TEM: no length
			buf = append(buf, 0xFF, marker)
			continue
		}
		lb := m.lb[:]
		if _, err = io.ReadFull(m.br, lb); err != nil {
			return buf, w, h, err
		}
		n := int(lb[0])<<8 | int(lb[1])
		if n < 2 {
			return buf, w, h, corruptJPEG("segment FF%02X with length %d (want at least 2)", marker, n)
		}
		if len(buf)+2+n > m.max {
			return buf, w, h, corruptJPEG("image larger than %d bytes", m.max)
		}
		buf = append(buf, 0xFF, marker, lb[0], lb[1])
		start := len(buf)
		buf = slices.Grow(buf, n-2)[:start+n-2]
		if _, err = io.ReadFull(m.br, buf[start:]); err != nil {
			return buf[:start], w, h, err
		}
		if isSOF(marker) && n >= 7 {
			seg := buf[start:]
			h, w = int(seg[1])<<8|int(seg[2]), int(seg[3])<<8|int(seg[4])
		}
		if marker != 0xDA { // not SOS: the next marker follows directly
			continue
		}
		// Entropy-coded data runs to the first FF that is not followed
		// by 00 (stuffing) or D0–D7 (restart).
		for {
			chunk, err := m.br.ReadSlice(0xFF)
			if len(buf)+len(chunk) > m.max {
				return buf, w, h, corruptJPEG("image larger than %d bytes", m.max)
			}
			buf = append(buf, chunk...)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				return buf, w, h, err
			}
			b, err := m.br.ReadByte()
			if err != nil {
				return buf, w, h, err
			}
			if b == 0x00 || (b >= 0xD0 && b <= 0xD7) {
				buf = append(buf, b)
				continue
			}
			for b == 0xFF { // fill bytes before a marker
				if b, err = m.br.ReadByte(); err != nil {
					return buf, w, h, err
				}
			}
			if b == 0x00 {
				return buf, w, h, corruptJPEG("fill bytes followed by 00 in entropy-coded data")
			}
			buf = buf[:len(buf)-1] // the FF belongs to the marker
			marker, pending = b, true
			break
		}
	}
}

// findSOI skips to just after the next FF D8.
func (m *mjpegSplitter) findSOI() error {
	skipped := 0
	for {
		b, err := m.br.ReadByte()
		if err != nil {
			return err
		}
		for b == 0xFF {
			if b, err = m.br.ReadByte(); err != nil {
				return err
			}
			if b == 0xD8 {
				return nil
			}
			skipped++
		}
		if skipped++; skipped > m.max {
			return corruptJPEG("no start-of-image marker (FF D8) in %d bytes", m.max)
		}
	}
}

// readMarker reads FF, any fill bytes, and the marker code.
func (m *mjpegSplitter) readMarker() (byte, error) {
	b, err := m.br.ReadByte()
	if err != nil {
		return 0, err
	}
	if b != 0xFF {
		return 0, corruptJPEG("byte %02X where a marker (FF xx) should start", b)
	}
	for b == 0xFF {
		if b, err = m.br.ReadByte(); err != nil {
			return 0, err
		}
	}
	if b == 0x00 {
		return 0, corruptJPEG("FF 00 where a marker should be")
	}
	return b, nil
}

// isSOF reports the start-of-frame markers (C0–CF except DHT C4, JPG C8,
// DAC CC), whose segment carries the image size.
func isSOF(m byte) bool {
	return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC
}
