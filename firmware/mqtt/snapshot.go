package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vggedge/vggedge/firmware/output"

	"github.com/vggedge/vggedge/camera"
	"github.com/vggedge/vggedge/internal/atomicfile"
)

// snapshotRing is how many recent frames ObservePicture keeps: the sink's
// goroutine runs a few frames behind the loop, and the event's own frame
// should still be there when the event fires.
const snapshotRing = 4

// snapshotPrefix starts every snapshot file name; rotation only ever
// deletes files that carry it.
const snapshotPrefix = "vggedge-"

// snapshotConfig is what --snapshot-dir, --snapshot-when,
// --snapshot-max-files and --snapshot-max-bytes say.
type snapshotConfig struct {
	dir      string
	when     []string // nil: every event that names a label
	maxFiles int      // 0: no limit
	maxBytes int64    // 0: no limit
}

func (c *snapshotConfig) validate(labels []string) error {
	if c.dir == "" {
		if len(c.when) > 0 {
			return fmt.Errorf("--snapshot-when needs --snapshot-dir DIR")
		}
		return nil
	}
	if c.maxFiles < 0 {
		return fmt.Errorf("--snapshot-max-files %d: want ≥ 0 (0: no limit)", c.maxFiles)
	}
	if c.maxBytes < 0 {
		return fmt.Errorf("--snapshot-max-bytes %d: want ≥ 0 (0: no limit)", c.maxBytes)
	}
	when, err := output.ResolveLabels("--snapshot-when", c.when, labels)
	if err != nil {
		return err
	}
	c.when = when
	return nil
}

// snapshotFile is one snapshot on disk.
type snapshotFile struct {
	name string
	size int64
}

// snapshotter saves event frames as JPEG files. ObservePicture (inference
// goroutine) only copies the frame into a small ring; save (the sink's
// goroutine, when an event fires) encodes, writes a temp file, renames it
// into place and deletes the oldest snapshots beyond the limits.
type snapshotter struct {
	cfg snapshotConfig

	mu   sync.Mutex
	ring [snapshotRing]camera.Frame // Data capacity reused
	next int                        // ring slot ObservePicture fills next
	n    int                        // frames held

	// The rest belongs to the sink's goroutine.
	raw   camera.Frame // the event's frame, copied out of the ring
	rgb   []byte
	rgba  *image.RGBA
	gray  *image.Gray
	out   bytes.Buffer
	files []snapshotFile // oldest first
	total int64
}

// newSnapshotter creates dir if needed and lists the snapshots already in
// it, so that rotation counts them too.
func newSnapshotter(c snapshotConfig) (*snapshotter, error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("--snapshot-dir: %w", err)
	}
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("--snapshot-dir: %w", err)
	}
	s := &snapshotter{cfg: c}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), snapshotPrefix) || !strings.HasSuffix(e.Name(), ".jpg") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		s.files = append(s.files, snapshotFile{e.Name(), info.Size()})
		s.total += info.Size()
	}
	// Names start with the UTC capture time, so name order is age order.
	slices.SortFunc(s.files, func(a, b snapshotFile) int { return strings.Compare(a.name, b.name) })
	return s, nil
}

// ObservePicture copies f into the ring: a memcpy into a buffer that grows
// to the largest frame once, then never allocates again.
func (s *snapshotter) ObservePicture(f *camera.Frame) {
	s.mu.Lock()
	slot := &s.ring[s.next]
	data := append(slot.Data[:0], f.Data...)
	*slot = *f
	slot.Data = data
	s.next = (s.next + 1) % snapshotRing
	s.n = min(s.n+1, snapshotRing)
	s.mu.Unlock()
}

// wants reports whether an event with this label takes a snapshot.
func (s *snapshotter) wants(label string) bool {
	return label != "" && (s.cfg.when == nil || slices.Contains(s.cfg.when, label))
}

// save writes the frame with sequence number seq (or, when the ring has
// moved past it, the newest frame) as a JPEG and returns the file's name
// (base name, inside the snapshot folder).
func (s *snapshotter) save(seq uint64, label string) (string, error) {
	if !s.pick(seq) {
		return "", errors.New("snapshot: no frame observed yet")
	}
	f := &s.raw
	var data []byte
	if f.Format == camera.MJPEG {
		data = f.Data // the camera's JPEG goes out untouched
	} else {
		img, err := s.image(f)
		if err != nil {
			return "", fmt.Errorf("snapshot of frame %d: %w", f.Seq, err)
		}
		s.out.Reset()
		if err := jpeg.Encode(&s.out, img, &jpeg.Options{Quality: 90}); err != nil {
			return "", fmt.Errorf("snapshot of frame %d: jpeg: %w", f.Seq, err)
		}
		data = s.out.Bytes()
	}
	name := snapshotName(f, label)
	if err := writeFileAtomic(filepath.Join(s.cfg.dir, name), data); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	if n := len(s.files); n > 0 && s.files[n-1].name == name {
		// Two events on one picture (the sink fell behind the ring): the
		// file was replaced by the same picture, not added.
		s.total -= s.files[n-1].size
		s.files = s.files[:n-1]
	}
	s.files = append(s.files, snapshotFile{name, int64(len(data))})
	s.total += int64(len(data))
	return name, s.rotate()
}

// pick copies the frame seq (or the newest) out of the ring into s.raw.
func (s *snapshotter) pick(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return false
	}
	newest := (s.next - 1 + snapshotRing) % snapshotRing
	src := &s.ring[newest]
	for i := range s.n {
		if f := &s.ring[(newest-i+snapshotRing)%snapshotRing]; f.Seq == seq {
			src = f
			break
		}
	}
	data := append(s.raw.Data[:0], src.Data...)
	s.raw = *src
	s.raw.Data = data
	return true
}

// image converts f at full size for the JPEG encoder: GRAY stays grey,
// everything else goes through camera.ToRGB.
func (s *snapshotter) image(f *camera.Frame) (image.Image, error) {
	if f.Width <= 0 || f.Height <= 0 || f.Width > 1<<14 || f.Height > 1<<14 {
		return nil, fmt.Errorf("%s frame of %dx%d: size out of range", f.Format, f.Width, f.Height)
	}
	r := image.Rect(0, 0, f.Width, f.Height)
	if f.Format == camera.GRAY8 {
		if len(f.Data) < f.Width*f.Height {
			return nil, fmt.Errorf("GRAY frame of %dx%d needs %d bytes, has %d", f.Width, f.Height, f.Width*f.Height, len(f.Data))
		}
		if s.gray == nil || s.gray.Rect != r {
			s.gray = image.NewGray(r)
		}
		copy(s.gray.Pix, f.Data)
		return s.gray, nil
	}
	rgb, err := camera.ToRGB(s.rgb, f)
	if err != nil {
		return nil, err
	}
	s.rgb = rgb
	if s.rgba == nil || s.rgba.Rect != r {
		s.rgba = image.NewRGBA(r)
	}
	for i, j := 0, 0; i+2 < len(rgb); i, j = i+3, j+4 {
		s.rgba.Pix[j], s.rgba.Pix[j+1], s.rgba.Pix[j+2], s.rgba.Pix[j+3] = rgb[i], rgb[i+1], rgb[i+2], 255
	}
	return s.rgba, nil
}

// snapshotName is "vggedge-<UTC capture time>-f<frame>-<label>.jpg": name
// order is capture order, and the name says what the picture shows.
func snapshotName(f *camera.Frame, label string) string {
	ts := f.Time.UTC().Format("20060102T150405.000Z")
	return fmt.Sprintf("%s%s-f%09d-%s.jpg", snapshotPrefix, ts, f.Seq, sanitizeID(label))
}

// writeFileAtomic writes data to a synced temp file beside path and
// renames it into place (internal/atomicfile), so a reader never sees half
// a picture. Mode 0600, as the pictures may show people.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// rotate deletes the oldest snapshots while there are more than maxFiles
// or they hold more than maxBytes. The newest is always kept.
func (s *snapshotter) rotate() error {
	var errs []error
	for len(s.files) > 1 && ((s.cfg.maxFiles > 0 && len(s.files) > s.cfg.maxFiles) || (s.cfg.maxBytes > 0 && s.total > s.cfg.maxBytes)) {
		old := s.files[0]
		s.files = s.files[1:]
		s.total -= old.size
		if err := os.Remove(filepath.Join(s.cfg.dir, old.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("snapshot rotation: %w", err))
		}
	}
	return errors.Join(errs...)
}

// sanitizeID maps s to [a-z0-9_-] (MQTT topic levels, Home Assistant
// object ids and file names all accept it): lower case, anything else
// becomes '_'.
func sanitizeID(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
