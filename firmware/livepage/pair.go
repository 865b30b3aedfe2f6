package livepage

import (
	"github.com/vggedge/vggedge/firmware/live"

	"github.com/vggedge/vggedge/camera"
)

// The page shows one frame's truth: a picture and the result of that very
// frame, with its frame number. The loop hands the two over on different
// calls — ObservePicture(f) on the inference goroutine, Write(r) later from
// the sink's queue — so the server pairs them, and serves each picture
// together with its result: the JPEG's response (/snapshot.jpg) or its part
// of /stream.mjpg carries X-Frame and X-Result headers, and the page draws
// the picture and writes its result in one step. Polling /api/status for
// the result beside the stream (as the page once did) showed a result of
// another frame more often than not: at 30 fps the two are never of the
// same moment.
//
// Pairing keeps the last few pictures (pictureSlots copies) until their
// results arrive. The result of the newest picture comes a moment after
// it, so what is served is the newest picture whose result has arrived;
// before any has, the newest picture, with no result. A result whose
// picture was overwritten (its queue fell more than pictureSlots-2 frames
// behind) pairs with nothing and is only in /api/status.

// pictureSlots is how many pictures are kept for pairing: the one served,
// and room for results to lag the pictures by two frames. Each holds a
// copy of a frame (a 640x480 YUYV frame is 600 KiB).
const pictureSlots = 4

// pictureSlot is one kept picture and, once it has arrived, its result.
type pictureSlot struct {
	pic    camera.Frame // Data's capacity is reused
	n      uint64       // which picture (Server.picN) it holds; 0 = none
	res    live.Result  // its result when paired; Top's capacity is reused
	paired bool
}

// ObservePicture keeps a copy of the frame until its result arrives. It
// runs on the inference goroutine: a memcpy into a slot whose buffer grows
// to the largest frame once, then never allocates again.
func (s *Server) ObservePicture(f *camera.Frame) {
	s.mu.Lock()
	i := s.slotToFill()
	sl := &s.slots[i]
	data := append(sl.pic.Data[:0], f.Data...)
	sl.pic = *f
	sl.pic.Data = data
	s.picN++
	sl.n, sl.paired = s.picN, false
	s.newest = i
	if !s.paired {
		s.shown = i // before the first result, the newest picture is served bare
		s.shownV++
	}
	s.mu.Unlock()
}

// slotToFill is the slot a new picture goes into: the oldest, except the
// one being served while it is paired (the page keeps showing it until a
// newer picture has its result).
func (s *Server) slotToFill() int {
	fill := -1
	for i := range s.slots {
		if i == s.shown && s.slots[i].paired {
			continue
		}
		if fill < 0 || s.slots[i].n < s.slots[fill].n {
			fill = i
		}
	}
	return fill
}

// Write keeps a copy of the newest result (for /api/status) and pairs it
// with its picture, which is then the one served.
func (s *Server) Write(r *live.Result) error {
	s.mu.Lock()
	copyResult(&s.res, r)
	s.resN++
	match := -1
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.n > 0 && !sl.paired && sl.pic.Seq == r.Frame && (match < 0 || sl.n > s.slots[match].n) {
			match = i
		}
	}
	// Results come in frame order; never go back to an older picture.
	if match >= 0 && (!s.paired || s.slots[match].n > s.slots[s.shown].n) {
		sl := &s.slots[match]
		copyResult(&sl.res, r)
		sl.paired = true
		s.shown, s.paired = match, true
		s.shownV++
	}
	s.mu.Unlock()
	return nil
}

// copyResult copies r into dst, reusing dst.Top's capacity.
func copyResult(dst, r *live.Result) {
	top := append(dst.Top[:0], r.Top...)
	*dst = *r
	dst.Top = top
}
