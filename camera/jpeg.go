package camera

import (
	"errors"
	"fmt"
)

// MaxFrameSide bounds a frame's width and height (and a JPEG's declared
// size): 16384 is four times 4K, beyond any camera vggedge targets, and
// keeps every byte count below 2^31 on 32-bit boards.
const MaxFrameSide = 16384

// JPEGDecoder decodes baseline (and extended sequential, 8-bit) Huffman
// JPEG: 1 or 3 components, any sampling whose ratios to the largest are 1,
// 2 or 4 (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1), restart intervals, several
// scans, and frames without a DHT segment, for which it uses the standard
// tables of ITU T.81 Annex K.3 as UVC MJPEG cameras expect. It writes each
// component into its own plane and keeps those planes (and its tables)
// from one Decode to the next, so decoding frames of one size allocates
// nothing. Progressive, arithmetic-coded, lossless, hierarchical and
// 12-bit JPEGs are refused with an error naming the process: cameras do
// not send them in MJPEG streams (image/jpeg reads progressive stills).
//
// The zero value is ready to use. A JPEGDecoder is not safe for
// concurrent use.
type JPEGDecoder struct {
	width, height int
	ncomp         int
	comp          [3]jpegComponent
	hmax, vmax    int
	mcusX, mcusY  int
	restart       int // MCUs per restart interval; 0: none
	adobeRGB      bool
	planes        []byte // every component's plane, one allocation
	// lumaOnly skips the IDCT of the chroma blocks (their Huffman data
	// must still be read): a grey model needs only Y.
	lumaOnly bool

	quant    [4][64]int32 // in zig-zag order
	quantSet [4]bool
	huff     [2][4]huffTable // [class][id]; class 0 DC, 1 AC
	huffSet  [2][4]bool

	// entropy-coded data reader
	data  []byte
	pos   int
	acc   uint64 // bits, most significant first
	nbits uint
	fake  int // zero bytes fed past a marker or the end

	blk [64]int32
}

type jpegComponent struct {
	id       byte
	h, v     int // sampling factors
	hs, vs   uint
	tq       int
	stride   int // bytes per plane row: mcusX·h·8
	rows     int // plane rows: mcusY·v·8
	plane    []byte
	dc, ac   *huffTable
	pred     int32
	coded    bool
	blocksX  int // blocks that hold pixels, for non-interleaved scans
	blocksY  int
	quantRef *[64]int32
}

// Size is the decoded picture's width and height.
func (d *JPEGDecoder) Size() (w, h int) { return d.width, d.height }

// Components is 1 for a grey JPEG and 3 for colour.
func (d *JPEGDecoder) Components() int { return d.ncomp }

// Decode decodes one JPEG image held in data. The result stays in d until
// the next Decode.
func (d *JPEGDecoder) Decode(data []byte) error {
	if err := d.decode(data); err != nil {
		return fmt.Errorf("jpeg: %w", err)
	}
	return nil
}

func (d *JPEGDecoder) decode(data []byte) error {
	d.width, d.height, d.ncomp, d.restart, d.adobeRGB = 0, 0, 0, 0, false
	d.quantSet = [4]bool{}
	d.huffSet = [2][4]bool{}
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return errors.New("not a JPEG image (no SOI marker 0xFFD8 at the start)")
	}
	scans := 0
	pos := 2
	for {
		// Markers may be preceded by any number of 0xFF fill bytes.
		if pos >= len(data) {
			if scans > 0 {
				break // a missing EOI is common in truncated-but-whole MJPEG frames
			}
			return errors.New("data ends before the first scan (SOS)")
		}
		if data[pos] != 0xFF {
			return fmt.Errorf("expected a marker at byte %d, found 0x%02X", pos, data[pos])
		}
		for pos < len(data) && data[pos] == 0xFF {
			pos++
		}
		if pos >= len(data) {
			return errors.New("data ends inside a marker")
		}
		m := data[pos]
		pos++
		if m == 0xD9 { // EOI
			if scans == 0 {
				return errors.New("EOI before any scan")
			}
			break
		}
		if m == 0x01 || (m >= 0xD0 && m <= 0xD7) { // TEM, stray RSTn: no segment
			continue
		}
		if m == 0xD8 {
			return fmt.Errorf("second SOI marker at byte %d", pos-2)
		}
		if pos+2 > len(data) {
			return fmt.Errorf("marker 0xFF%02X at byte %d: data ends before its length", m, pos-2)
		}
		n := int(data[pos])<<8 | int(data[pos+1])
		if n < 2 || pos+n > len(data) {
			return fmt.Errorf("marker 0xFF%02X at byte %d: segment length %d, but %d bytes remain", m, pos-2, n, len(data)-pos)
		}
		seg := data[pos+2 : pos+n]
		pos += n
		var err error
		switch {
		case m == 0xC0 || m == 0xC1: // baseline, extended sequential Huffman
			err = d.parseSOF(seg, len(data))
		case m == 0xC2:
			err = errors.New("progressive JPEG not supported in frames (the camera or encoder must send baseline JPEG)")
		case m == 0xC4:
			err = d.parseDHT(seg)
		case m == 0xCC:
			err = errors.New("arithmetic-coded JPEG not supported")
		case m >= 0xC3 && m <= 0xCF: // C3, C5–C7, C9–CB, CD–CF (C4, C8, CC handled)
			if m != 0xC8 {
				err = fmt.Errorf("SOF%d (lossless, hierarchical or arithmetic JPEG) not supported", m-0xC0)
			}
		case m == 0xDB:
			err = d.parseDQT(seg)
		case m == 0xDD:
			if len(seg) != 2 {
				err = fmt.Errorf("DRI segment of %d bytes, want 2", len(seg))
			} else {
				d.restart = int(seg[0])<<8 | int(seg[1])
			}
		case m == 0xDC:
			err = errors.New("DNL marker (height defined after the scan) not supported")
		case m == 0xEE:
			// Adobe APP14: transform 0 on a 3-component image means RGB,
			// not YCbCr.
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobeRGB = seg[11] == 0
			}
		case m == 0xDA:
			if d.ncomp == 0 {
				return errors.New("scan (SOS) before the frame header (SOF)")
			}
			pos, err = d.scan(seg, data, pos)
			scans++
		}
		if err != nil {
			return err
		}
	}
	if d.ncomp == 0 {
		return errors.New("no frame header (SOF)")
	}
	for i := range d.ncomp {
		if !d.comp[i].coded {
			return fmt.Errorf("component %d is in no scan", d.comp[i].id)
		}
	}
	return nil
}

func (d *JPEGDecoder) parseSOF(seg []byte, fileBytes int) error {
	if d.ncomp != 0 {
		return errors.New("second frame header (SOF): multi-frame JPEG not supported")
	}
	if len(seg) < 6 {
		return fmt.Errorf("SOF segment of %d bytes, want at least 6", len(seg))
	}
	if seg[0] != 8 {
		return fmt.Errorf("sample precision %d bits, want 8", seg[0])
	}
	h := int(seg[1])<<8 | int(seg[2])
	w := int(seg[3])<<8 | int(seg[4])
	nc := int(seg[5])
	if w == 0 || h == 0 {
		return fmt.Errorf("size %dx%d: want both sides positive (DNL not supported)", w, h)
	}
	if w > MaxFrameSide || h > MaxFrameSide {
		return fmt.Errorf("size %dx%d: beyond the %d pixels per side vggedge accepts", w, h, MaxFrameSide)
	}
	if nc != 1 && nc != 3 {
		return fmt.Errorf("%d components, want 1 (grey) or 3 (YCbCr)", nc)
	}
	if len(seg) != 6+3*nc {
		return fmt.Errorf("SOF segment of %d bytes for %d components, want %d", len(seg), nc, 6+3*nc)
	}
	d.hmax, d.vmax = 1, 1
	for i := range nc {
		c := &d.comp[i]
		c.id = seg[6+3*i]
		c.h, c.v = int(seg[7+3*i]>>4), int(seg[7+3*i]&15)
		c.tq = int(seg[8+3*i])
		c.coded = false
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return fmt.Errorf("component %d: sampling %dx%d, want 1..4", c.id, c.h, c.v)
		}
		if c.tq > 3 {
			return fmt.Errorf("component %d: quantization table %d, want 0..3", c.id, c.tq)
		}
		for j := range i {
			if d.comp[j].id == c.id {
				return fmt.Errorf("component id %d appears twice", c.id)
			}
		}
		if nc == 1 {
			c.h, c.v = 1, 1 // a lone component is coded block by block (T.81 A.2.2)
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	if d.comp[0].h != d.hmax || d.comp[0].v != d.vmax {
		return fmt.Errorf("sampling %dx%d for luma below a chroma's %dx%d not supported", d.comp[0].h, d.comp[0].v, d.hmax, d.vmax)
	}
	d.mcusX = (w + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (h + 8*d.vmax - 1) / (8 * d.vmax)
	planeBytes, codedBlocks := 0, 0
	for i := range nc {
		c := &d.comp[i]
		hs, hok := ratioShift(d.hmax / c.h)
		vs, vok := ratioShift(d.vmax / c.v)
		if d.hmax%c.h != 0 || d.vmax%c.v != 0 || !hok || !vok {
			return fmt.Errorf("component %d: sampling %dx%d against %dx%d: ratios must be 1, 2 or 4", c.id, c.h, c.v, d.hmax, d.vmax)
		}
		c.hs, c.vs = hs, vs
		c.stride = d.mcusX * c.h * 8
		c.rows = d.mcusY * c.v * 8
		c.blocksX = ((w*c.h+d.hmax-1)/d.hmax + 7) / 8
		c.blocksY = ((h*c.v+d.vmax-1)/d.vmax + 7) / 8
		planeBytes += c.stride * c.rows
		codedBlocks += c.blocksX * c.blocksY
	}
	// Every coded block costs at least 2 bits (a 1-bit DC code and a 1-bit
	// end-of-block), so a file of n bytes holds at most 4n blocks. Check before
	// allocating, so a 100-byte file cannot ask for gigabytes.
	if codedBlocks > 4*fileBytes {
		return fmt.Errorf("size %dx%d needs at least %d bytes of coded data, the file has %d", w, h, codedBlocks/4, fileBytes)
	}
	if cap(d.planes) < planeBytes {
		d.planes = make([]byte, planeBytes)
	}
	off := 0
	for i := range nc {
		c := &d.comp[i]
		n := c.stride * c.rows
		c.plane = d.planes[off : off+n : off+n]
		off += n
	}
	d.width, d.height, d.ncomp = w, h, nc
	return nil
}

func ratioShift(r int) (uint, bool) {
	switch r {
	case 1:
		return 0, true
	case 2:
		return 1, true
	case 4:
		return 2, true
	}
	return 0, false
}

func (d *JPEGDecoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if pq > 1 || tq > 3 {
			return fmt.Errorf("DQT: precision %d, table %d: want precision 0 or 1 and table 0..3", pq, tq)
		}
		n := 64 << pq
		if len(seg) < 1+n {
			return fmt.Errorf("DQT: table %d needs %d bytes, %d remain", tq, n, len(seg)-1)
		}
		q := &d.quant[tq]
		for k := range 64 {
			if pq == 0 {
				q[k] = int32(seg[1+k])
			} else {
				q[k] = int32(seg[1+2*k])<<8 | int32(seg[2+2*k])
			}
		}
		d.quantSet[tq] = true
		seg = seg[1+n:]
	}
	return nil
}

func (d *JPEGDecoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return fmt.Errorf("DHT: %d bytes left, want at least 17", len(seg))
		}
		class, id := int(seg[0]>>4), int(seg[0]&15)
		if class > 1 || id > 3 {
			return fmt.Errorf("DHT: class %d, table %d: want class 0 or 1 and table 0..3", class, id)
		}
		var counts [16]byte
		copy(counts[:], seg[1:17])
		total := 0
		for _, c := range counts {
			total += int(c)
		}
		if total > 256 || len(seg) < 17+total {
			return fmt.Errorf("DHT: class %d table %d declares %d codes, %d bytes remain", class, id, total, len(seg)-17)
		}
		if err := d.huff[class][id].build(counts, seg[17:17+total]); err != nil {
			return fmt.Errorf("DHT: class %d table %d: %w", class, id, err)
		}
		d.huffSet[class][id] = true
		seg = seg[17+total:]
	}
	return nil
}

// scan reads an SOS header and decodes its entropy-coded data, which
// starts at data[pos]; it returns the position of the marker after it.
func (d *JPEGDecoder) scan(seg, data []byte, pos int) (int, error) {
	if len(seg) < 1 {
		return 0, errors.New("empty SOS segment")
	}
	ns := int(seg[0])
	if ns < 1 || ns > d.ncomp || len(seg) != 4+2*ns {
		return 0, fmt.Errorf("SOS with %d components in %d bytes, frame has %d components", ns, len(seg), d.ncomp)
	}
	var sc [3]*jpegComponent
	blocksPerMCU := 0
	for i := range ns {
		id := seg[1+2*i]
		var c *jpegComponent
		for j := range d.ncomp {
			if d.comp[j].id == id {
				c = &d.comp[j]
			}
		}
		if c == nil {
			return 0, fmt.Errorf("SOS names component %d, not in the frame", id)
		}
		for j := range i {
			if sc[j] == c {
				return 0, fmt.Errorf("SOS names component %d twice", id)
			}
		}
		td, ta := int(seg[2+2*i]>>4), int(seg[2+2*i]&15)
		if td > 3 || ta > 3 {
			return 0, fmt.Errorf("SOS: component %d uses Huffman tables %d/%d, want 0..3", id, td, ta)
		}
		var err error
		if c.dc, err = d.table(0, td); err != nil {
			return 0, err
		}
		if c.ac, err = d.table(1, ta); err != nil {
			return 0, err
		}
		if !d.quantSet[c.tq] {
			return 0, fmt.Errorf("component %d uses quantization table %d, which no DQT defined", id, c.tq)
		}
		c.quantRef = &d.quant[c.tq]
		c.pred = 0
		c.coded = true
		sc[i] = c
		blocksPerMCU += c.h * c.v
	}
	if ns > 1 && blocksPerMCU > 10 {
		return 0, fmt.Errorf("SOS: %d blocks per MCU, T.81 allows 10", blocksPerMCU)
	}
	ss, se, ahal := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]
	if ss != 0 || se != 63 || ahal != 0 {
		return 0, fmt.Errorf("SOS: spectral selection %d..%d, approximation 0x%02X: want 0..63, 0 (sequential)", ss, se, ahal)
	}

	d.data, d.pos, d.acc, d.nbits, d.fake = data, pos, 0, 0, 0
	mcusX, mcusY := d.mcusX, d.mcusY
	if ns == 1 { // non-interleaved: the MCU is one block of the component
		mcusX, mcusY = sc[0].blocksX, sc[0].blocksY
	}
	rst := 0
	for my := range mcusY {
		for mx := range mcusX {
			if d.restart > 0 && (my*mcusX+mx) > 0 && (my*mcusX+mx)%d.restart == 0 {
				if err := d.restartMarker(rst); err != nil {
					return 0, fmt.Errorf("MCU %d: %w", my*mcusX+mx, err)
				}
				rst = (rst + 1) & 7
				for i := range ns {
					sc[i].pred = 0
				}
			}
			for i := range ns {
				c := sc[i]
				h, v := c.h, c.v
				if ns == 1 {
					h, v = 1, 1
				}
				for by := range v {
					for bx := range h {
						off := ((my*v+by)*c.stride + mx*h + bx) * 8
						if err := d.block(c, c.plane[off:], c.stride); err != nil {
							return 0, fmt.Errorf("component %d, MCU %d: %w", c.id, my*mcusX+mx, err)
						}
					}
				}
			}
			// An encoder pads the last byte with 1 bits, so a whole scan
			// never needs a fed zero; like image/jpeg, a scan that does is
			// cut short. (Zeros often decode as a cheap end-of-block, so
			// only this catches a frame that lost its tail.)
			if d.fake*8 > int(d.nbits) {
				return 0, fmt.Errorf("scan data ends at MCU %d of %d", my*mcusX+mx, mcusX*mcusY)
			}
		}
	}
	// Skip to the next marker: whatever of the scan's data the bit reader
	// did not read, plus any padding.
	p := d.pos
	for p+1 < len(data) && (data[p] != 0xFF || data[p+1] == 0 || data[p+1] == 0xFF || (data[p+1] >= 0xD0 && data[p+1] <= 0xD7)) {
		p++
	}
	if p+1 >= len(data) {
		p = len(data)
	}
	return p, nil
}

// table returns the Huffman table a scan names: the one a DHT defined, or
// the standard one for ids 0 and 1 when the frame has no DHT.
func (d *JPEGDecoder) table(class, id int) (*huffTable, error) {
	if d.huffSet[class][id] {
		return &d.huff[class][id], nil
	}
	if id < 2 {
		return &stdHuffTables[class][id], nil
	}
	kind := [2]string{"DC", "AC"}[class]
	return nil, fmt.Errorf("scan uses %s Huffman table %d, which no DHT defined", kind, id)
}

// restartMarker drops the bits left before a restart marker and expects
// RSTn next.
func (d *JPEGDecoder) restartMarker(n int) error {
	d.acc, d.nbits, d.fake = 0, 0, 0
	p := d.pos
	if p+1 >= len(d.data) || d.data[p] != 0xFF {
		return fmt.Errorf("restart marker RST%d expected at byte %d", n, p)
	}
	for p < len(d.data) && d.data[p] == 0xFF {
		p++
	}
	if p >= len(d.data) || d.data[p] != 0xD0+byte(n) {
		return fmt.Errorf("restart marker RST%d expected at byte %d", n, d.pos)
	}
	d.pos = p + 1
	return nil
}

// fill tops the bit accumulator up to more than 56 bits. At a marker or the
// end of data it feeds zero bytes and counts them in fake, so a corrupt
// stream ends in an error instead of a read past the slice.
func (d *JPEGDecoder) fill() {
	for d.nbits <= 56 {
		var b byte
		if d.pos < len(d.data) {
			b = d.data[d.pos]
			if b != 0xFF {
				d.pos++
			} else if d.pos+1 < len(d.data) && d.data[d.pos+1] == 0 {
				d.pos += 2 // stuffed 0xFF00
			} else {
				b = 0
				d.fake++
			}
		} else {
			d.fake++
		}
		d.acc |= uint64(b) << (56 - d.nbits)
		d.nbits += 8
	}
}

var (
	errBadCode   = errors.New("bad Huffman code")
	errDCSize    = errors.New("DC difference of more than 11 bits")
	errACPastEnd = errors.New("AC coefficients run past 63")
)

// decodeHuff reads one Huffman-coded symbol.
func (d *JPEGDecoder) decodeHuff(h *huffTable) (byte, error) {
	if d.nbits < 16 {
		d.fill()
	}
	if e := h.lut[d.acc>>(64-huffLUTBits)]; e != 0 {
		n := uint(e >> 8)
		d.acc <<= n
		d.nbits -= n
		return byte(e), nil
	}
	for n := uint(huffLUTBits + 1); n <= 16; n++ {
		code := int32(d.acc >> (64 - n))
		if code <= h.maxcode[n] {
			d.acc <<= n
			d.nbits -= n
			return h.vals[uint8(h.valptr[n]+code)], nil
		}
	}
	return 0, errBadCode
}

// receive reads s (≤ 16) bits as a signed value (T.81 F.2.2.1 EXTEND).
func (d *JPEGDecoder) receive(s uint) int32 {
	if s == 0 {
		return 0
	}
	if d.nbits < s {
		d.fill()
	}
	v := int32(d.acc >> (64 - s))
	d.acc <<= s
	d.nbits -= s
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// block decodes one 8×8 block into dst (row stride bytes apart).
func (d *JPEGDecoder) block(c *jpegComponent, dst []byte, stride int) error {
	q := c.quantRef
	s, err := d.decodeHuff(c.dc)
	if err != nil {
		return err
	}
	if s > 11 {
		return errDCSize
	}
	c.pred += d.receive(uint(s))
	d.blk = [64]int32{}
	d.blk[0] = c.pred * q[0]
	acs := false
	for k := 1; k < 64; {
		rs, err := d.decodeHuff(c.ac)
		if err != nil {
			return err
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				break // EOB
			}
			k += 16 // ZRL
			continue
		}
		k += r
		if k > 63 {
			return errACPastEnd
		}
		d.blk[unzig[k]] = d.receive(s) * q[k]
		acs = true
		k++
	}
	if d.lumaOnly && c != &d.comp[0] && !d.adobeRGB {
		return nil
	}
	if !acs {
		idctDC(d.blk[0], dst, stride)
		return nil
	}
	idct(&d.blk, dst, stride)
	return nil
}

// huffLUTBits is how many leading bits one table look-up decodes; longer
// codes (rare) take the canonical-code walk.
const huffLUTBits = 9

// huffTable decodes one DHT table.
type huffTable struct {
	// lut[next 9 bits] = code length<<8 | symbol, or 0 when the code is
	// longer than 9 bits.
	lut     [1 << huffLUTBits]uint16
	maxcode [17]int32 // largest code of each length, −1 if none
	valptr  [17]int32 // index in vals of the length's first code, minus that code
	vals    [256]byte
}

// build makes the canonical Huffman code of T.81 Annex C from the counts
// per length and the symbols.
func (h *huffTable) build(counts [16]byte, vals []byte) error {
	*h = huffTable{}
	copy(h.vals[:], vals)
	code, k := int32(0), int32(0)
	for n := 1; n <= 16; n++ {
		cnt := int32(counts[n-1])
		h.maxcode[n] = -1
		if cnt > 0 {
			if code+cnt > 1<<n {
				return fmt.Errorf("%d codes of length %d do not fit", cnt, n)
			}
			h.valptr[n] = k - code
			for i := range cnt {
				if n <= huffLUTBits {
					c := code + i
					shift := huffLUTBits - n
					for j := range int32(1) << shift {
						h.lut[c<<shift|j] = uint16(n)<<8 | uint16(vals[k+i])
					}
				}
			}
			k += cnt
			code += cnt
			h.maxcode[n] = code - 1
		}
		code <<= 1
	}
	return nil
}
