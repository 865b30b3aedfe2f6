package quant

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// A writer of torch.save output, for tests: it lets them make .pth files
// (a VGG16 state_dict included) without PyTorch. It reproduces torch.save
// byte for byte — TestPTHWriterMatchesTorch compares it with files written
// by real PyTorch (gopickle's fixtures) — so what the readers are tested on
// is what users have. (Its state_dict pickles were also compared, when it
// was written, with CPython 3.11's pickler run on an emulation of torch's
// reduce and persistent_id — past 256 memo entries, with _metadata, and
// legacy: identical bytes.)
//
// What torch.save(obj, f) writes (torch/serialization.py _save, and
// caffe2/serialize/inline_container.cc PyTorchFileWriter over miniz):
//
// Zip format. Records, all stored (method 0), in this order:
//
//	<archive>/data.pkl        the pickle of obj
//	<archive>/byteorder       "little" (PyTorch ≥ 1.13; absent before)
//	<archive>/data/<key>      each storage's raw little-endian bytes, keys in
//	                          string-sorted order ("0", "1", "10", "2", …)
//	<archive>/version         "3\n"
//
// <archive> is "archive" in current PyTorch, the file's stem in 1.6-era
// releases (gopickle's fixtures). miniz writes each local header with
// version 0, flags 0x0808 (data descriptor follows, UTF-8 names), time and
// date 0, CRC and sizes 0, and an extra field "FB" + uint16 n + n×'Z' that
// pads the data to a 64-byte boundary (the 4-byte "FB" header is written
// even when n is 0); after the data a descriptor PK\x07\x08, CRC-32,
// sizes. The central directory repeats the entries (version 0, no extra
// field, attributes 0), and the archive ends with a zip64 end record
// (version made by 0x031e, needed 45), its locator, and the classic end
// record — miniz is opened with MZ_ZIP_FLAG_WRITE_ZIP64, so even small
// files have them.
//
// The pickle is protocol 2, as CPython's pickler writes it: PROTO 2; a
// global as GLOBAL "module\nname\n"; a str as BINUNICODE; ints as BININT1,
// BININT2 or BININT; False as NEWFALSE; a tuple of ≤ 3 items as its items
// then TUPLE1/2/3, a longer one as MARK … TUPLE, () as EMPTY_TUPLE; an
// object reduced to (callable, args) as callable, args, REDUCE; dict items
// in batches of 1000 as MARK k v … SETITEMS (one item: k v SETITEM).
// Every global, str, non-empty tuple, dict and reduced object is memoized
// (BINPUT n, or LONG_BINPUT from 256 on) and a repeat of the same object
// is a BINGET: the globals, and the literals 'storage' and 'cpu' that
// torch passes for every storage. A state_dict is
//
//	OrderedDict (GLOBAL collections OrderedDict; EMPTY_TUPLE; REDUCE)
//	  SETITEMS of name → tensor, a tensor being
//	  torch._utils._rebuild_tensor_v2(
//	      BINPERSID of ('storage', torch.FloatStorage, key, 'cpu', numel),
//	      storage_offset, size, stride, False, OrderedDict())
//	  then, if it carries _metadata, the state {'_metadata': OrderedDict(
//	  module → {'version': 1})} and BUILD.
//
// Legacy format (_use_new_zipfile_serialization=False, and all files from
// before PyTorch 1.6): five pickles back to back — the magic number
// 0x1950a86a20f9469cfc6c (LONG1), the protocol version 1001,
// sys_info {'protocol_version': 1001, 'little_endian': True,
// 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}, the object (persistent
// ids with a sixth field, the view metadata, None here), the sorted list of
// storage keys — then each storage as an 8-byte little-endian element
// count and its bytes. PyTorch < 0.4 (torchvision's 2017 VGG weights)
// pickles tensors with torch._utils._rebuild_tensor(storage,
// storage_offset, size, stride) instead of _rebuild_tensor_v2.

// writeTestPTH writes ts as torch.save(state_dict, path) does with current
// PyTorch: zip format, archive "archive", byteorder record, an OrderedDict
// of contiguous float32 tensors in the order given, one storage each.
func writeTestPTH(path string, ts []*Tensor) error {
	spec, err := pthSpecFromTensors(ts)
	if err != nil {
		return err
	}
	spec.archive, spec.byteorder = "archive", true
	return writePTHSpecFile(path, spec)
}

// pthSpec describes a file for writePTHSpec.
type pthSpec struct {
	storages []pthSpecStorage
	tensors  []pthSpecTensor
	bare     bool // pickle tensors[0] alone, as torch.save(tensor)
	metadata bool // give the state_dict a _metadata attribute

	legacy  bool   // legacy format instead of zip
	rebuild string // "_rebuild_tensor_v2" (default) or "_rebuild_tensor" (legacy)

	archive   string // zip folder
	byteorder bool   // write <archive>/byteorder
}

type pthSpecStorage struct {
	class string // "FloatStorage", "HalfStorage", …
	key   string // persistent-id key; default: "0", "1", … in first-use order
	numel int
	data  []byte    // little-endian elements, or
	f32   []float32 // float32 values, converted while writing (no second copy of a large model)
}

func (s *pthSpecStorage) size() int64 {
	if s.f32 != nil {
		return 4 * int64(len(s.f32))
	}
	return int64(len(s.data))
}

func (s *pthSpecStorage) writeTo(w io.Writer) error {
	if s.f32 == nil {
		_, err := w.Write(s.data)
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for i, v := range s.f32 {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) || i == len(s.f32)-1 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

type pthSpecTensor struct {
	name    string
	storage int // index into storages
	offset  int
	size    []int
	stride  []int
}

func pthSpecFromTensors(ts []*Tensor) (*pthSpec, error) {
	spec := &pthSpec{}
	for i, t := range ts {
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("tensor %q: shape %v needs %d values, has %d", t.Name, t.Shape, n, len(t.Data))
		}
		spec.storages = append(spec.storages, pthSpecStorage{class: "FloatStorage", numel: n, f32: t.Data})
		spec.tensors = append(spec.tensors, pthSpecTensor{name: t.Name, storage: i, size: t.Shape, stride: contiguousStrides(t.Shape)})
	}
	return spec, nil
}

func contiguousStrides(shape []int) []int {
	st := make([]int, len(shape))
	n := 1
	for d := len(shape) - 1; d >= 0; d-- {
		st[d] = n
		n *= shape[d]
	}
	return st
}

func writePTHSpecFile(path string, spec *pthSpec) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writePTHSpec(f, spec); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

func writePTHSpec(w io.Writer, spec *pthSpec) error {
	// Keys are handed out in the order storages are first pickled, as
	// torch's id_map does.
	keys := make([]string, len(spec.storages))
	next := 0
	for _, t := range spec.tensors {
		if t.storage < 0 || t.storage >= len(spec.storages) {
			return fmt.Errorf("tensor %q: storage %d out of range", t.name, t.storage)
		}
		if keys[t.storage] == "" {
			keys[t.storage] = spec.storages[t.storage].key
			if keys[t.storage] == "" {
				keys[t.storage] = strconv.Itoa(next)
			}
			next++
		}
	}
	pkl := pthPickleObject(spec, keys)
	var used []int // storages in string-sorted key order
	for i, k := range keys {
		if k != "" {
			used = append(used, i)
		}
	}
	sort.Slice(used, func(a, b int) bool { return keys[used[a]] < keys[used[b]] })
	if spec.legacy {
		return writeLegacyPTH(w, spec, pkl, keys, used)
	}
	if spec.archive == "" {
		spec.archive = "archive"
	}
	z := &minizWriter{w: bufio.NewWriterSize(w, 1<<20)}
	z.bytes(spec.archive+"/data.pkl", pkl)
	if spec.byteorder {
		z.bytes(spec.archive+"/byteorder", []byte("little"))
	}
	for _, i := range used {
		st := &spec.storages[i]
		z.record(spec.archive+"/data/"+keys[i], st.size(), st.writeTo)
	}
	z.bytes(spec.archive+"/version", []byte("3\n"))
	return z.finish()
}

func writeLegacyPTH(w io.Writer, spec *pthSpec, pkl []byte, keys []string, used []int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	// Magic number, protocol version, sys_info: fixed pickles.
	p := newPickler()
	p.raw(0x8a, 10) // LONG1, 10 bytes: 0x1950a86a20f9469cfc6c little-endian
	p.raw(0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19)
	bw.Write(p.stop())
	p = newPickler()
	p.int(1001)
	bw.Write(p.stop())
	p = newPickler()
	p.emptyDict()
	p.mark()
	p.str("protocol_version", "")
	p.int(1001)
	p.str("little_endian", "")
	p.raw(0x88) // NEWTRUE
	p.str("type_sizes", "")
	p.emptyDict()
	p.mark()
	for _, kv := range []struct {
		k string
		v int
	}{{"short", 2}, {"int", 4}, {"long", 4}} {
		p.str(kv.k, "")
		p.int(kv.v)
	}
	p.raw('u')
	p.raw('u')
	bw.Write(p.stop())
	bw.Write(pkl)
	p = newPickler()
	p.raw(']')
	p.put()
	if len(used) > 1 {
		p.mark()
	}
	for _, i := range used {
		p.str(keys[i], "")
	}
	if len(used) > 1 {
		p.raw('e') // APPENDS
	} else if len(used) == 1 {
		p.raw('a') // APPEND
	}
	bw.Write(p.stop())
	for _, i := range used {
		var nb [8]byte
		binary.LittleEndian.PutUint64(nb[:], uint64(spec.storages[i].numel))
		bw.Write(nb[:])
		if err := spec.storages[i].writeTo(bw); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// pthPickleObject pickles the state_dict (or the bare tensor).
func pthPickleObject(spec *pthSpec, keys []string) []byte {
	p := newPickler()
	rebuild := spec.rebuild
	if rebuild == "" {
		rebuild = "_rebuild_tensor_v2"
	}
	tensor := func(t pthSpecTensor) {
		st := spec.storages[t.storage]
		p.global("torch._utils", rebuild)
		p.mark()
		// The storage, by persistent id.
		p.mark()
		p.str("storage", "storage")
		p.global("torch", st.class)
		p.str(keys[t.storage], "key:"+keys[t.storage])
		p.str("cpu", "cpu")
		p.int(st.numel)
		if spec.legacy {
			p.raw('N') // view_metadata
		}
		p.raw('t')
		p.put()
		p.raw('Q') // BINPERSID
		p.int(t.offset)
		p.tuple(t.size)
		p.tuple(t.stride)
		if rebuild == "_rebuild_tensor_v2" {
			p.raw(0x89) // requires_grad=False
			p.global("collections", "OrderedDict")
			p.raw(')', 'R') // backward_hooks=OrderedDict()
			p.put()
		}
		p.raw('t')
		p.put()
		p.raw('R')
		p.put()
	}
	if spec.bare {
		tensor(spec.tensors[0])
		return p.stop()
	}
	p.global("collections", "OrderedDict")
	p.raw(')', 'R')
	p.put()
	p.setItems(len(spec.tensors), func(i int) {
		p.str(spec.tensors[i].name, "")
		tensor(spec.tensors[i])
	})
	if spec.metadata {
		// state = {'_metadata': OrderedDict(module → {'version': 1})}, for
		// the root module and every module path of the tensor names.
		mods := []string{""}
		seen := map[string]bool{"": true}
		for _, t := range spec.tensors {
			parts := strings.Split(t.name, ".")
			for j := 1; j < len(parts); j++ {
				m := strings.Join(parts[:j], ".")
				if !seen[m] {
					seen[m] = true
					mods = append(mods, m)
				}
			}
		}
		p.emptyDict()
		p.str("_metadata", "")
		p.global("collections", "OrderedDict")
		p.raw(')', 'R')
		p.put()
		p.setItems(len(mods), func(i int) {
			p.str(mods[i], "")
			p.emptyDict()
			p.str("version", "version")
			p.int(1)
			p.raw('s')
		})
		p.raw('s')
		p.raw('b') // BUILD
	}
	return p.stop()
}

// pickler writes protocol-2 opcodes with CPython's memo behaviour for the
// objects above.
type pickler struct {
	b    []byte
	memo map[string]int // identity of a shared object → memo index
	n    int            // next memo index
}

func newPickler() *pickler {
	return &pickler{b: []byte{0x80, 2}, memo: map[string]int{}}
}

func (p *pickler) raw(b ...byte) { p.b = append(p.b, b...) }
func (p *pickler) mark()         { p.raw('(') }
func (p *pickler) stop() []byte  { return append(p.b, '.') }

// put memoizes the object just written.
func (p *pickler) put() {
	if p.n < 256 {
		p.raw('q', byte(p.n))
	} else {
		p.raw('r')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(p.n))
	}
	p.n++
}

// shared writes a BINGET for an object already memoized under id, or
// returns false.
func (p *pickler) shared(id string) bool {
	i, ok := p.memo[id]
	if !ok {
		return false
	}
	if i < 256 {
		p.raw('h', byte(i))
	} else {
		p.raw('j')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(i))
	}
	return true
}

func (p *pickler) remember(id string) {
	if id != "" {
		p.memo[id] = p.n
	}
	p.put()
}

func (p *pickler) global(module, name string) {
	id := "global:" + module + "." + name
	if p.shared(id) {
		return
	}
	p.raw('c')
	p.b = append(p.b, module+"\n"+name+"\n"...)
	p.remember(id)
}

// str writes s; id names the Python object when the same object recurs
// (torch's literals), "" for a fresh string.
func (p *pickler) str(s, id string) {
	if id != "" && p.shared("str:"+id) {
		return
	}
	p.raw('X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	if id != "" {
		id = "str:" + id
	}
	p.remember(id)
}

func (p *pickler) int(v int) {
	switch {
	case v >= 0 && v <= 0xff:
		p.raw('K', byte(v))
	case v >= 0 && v <= 0xffff:
		p.raw('M', byte(v), byte(v>>8))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.raw('J')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
	default:
		panic("pickler: LONG1 not needed by these tests")
	}
}

func (p *pickler) tuple(vs []int) {
	switch {
	case len(vs) == 0:
		p.raw(')')
		return
	case len(vs) <= 3:
		for _, v := range vs {
			p.int(v)
		}
		p.raw(0x84 + byte(len(vs))) // TUPLE1..3
	default:
		p.mark()
		for _, v := range vs {
			p.int(v)
		}
		p.raw('t')
	}
	p.put()
}

func (p *pickler) emptyDict() {
	p.raw('}')
	p.put()
}

// setItems writes n dict items in CPython's batches of 1000.
func (p *pickler) setItems(n int, item func(i int)) {
	for start := 0; start < n; start += 1000 {
		end := min(start+1000, n)
		if end-start == 1 {
			item(start)
			p.raw('s')
			continue
		}
		p.mark()
		for i := start; i < end; i++ {
			item(i)
		}
		p.raw('u')
	}
}

// minizWriter writes a zip archive as PyTorch's miniz does (see above).
type minizWriter struct {
	w   *bufio.Writer
	off int64
	cd  []byte
	n   int
	err error
}

func (z *minizWriter) write(b []byte) {
	if z.err == nil {
		_, z.err = z.w.Write(b)
	}
	z.off += int64(len(b))
}

func (z *minizWriter) bytes(name string, data []byte) {
	z.record(name, int64(len(data)), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// record writes one stored entry of size bytes, produced by write.
func (z *minizWriter) record(name string, size int64, write func(io.Writer) error) {
	if z.off+size >= math.MaxUint32 {
		z.err = errors.New("test writer: archives of 4 GiB and more need zip64 fields, not written")
		return
	}
	start := z.off
	// Pad the data to 64 bytes: local header 30 + name + the 4-byte FB header.
	pad := int((64 - (start+30+int64(len(name))+4)%64) % 64)
	h := binary.LittleEndian.AppendUint32(nil, 0x04034b50)
	h = binary.LittleEndian.AppendUint16(h, 0)      // version needed
	h = binary.LittleEndian.AppendUint16(h, 0x0808) // flags
	h = append(h, make([]byte, 2+2+2+4+4+4)...)     // method, time, date, crc, sizes
	h = binary.LittleEndian.AppendUint16(h, uint16(len(name)))
	h = binary.LittleEndian.AppendUint16(h, uint16(4+pad))
	h = append(h, name...)
	h = append(h, 'F', 'B')
	h = binary.LittleEndian.AppendUint16(h, uint16(pad))
	h = append(h, bytes.Repeat([]byte{'Z'}, pad)...)
	z.write(h)
	crcw := crc32.NewIEEE()
	if z.err == nil {
		z.err = write(io.MultiWriter(z.w, crcw))
	}
	z.off += size
	crc := crcw.Sum32()
	d := binary.LittleEndian.AppendUint32(nil, 0x08074b50)
	d = binary.LittleEndian.AppendUint32(d, crc)
	d = binary.LittleEndian.AppendUint32(d, uint32(size))
	d = binary.LittleEndian.AppendUint32(d, uint32(size))
	z.write(d)

	c := binary.LittleEndian.AppendUint32(z.cd, 0x02014b50)
	c = binary.LittleEndian.AppendUint16(c, 0) // version made by
	c = binary.LittleEndian.AppendUint16(c, 0) // version needed
	c = binary.LittleEndian.AppendUint16(c, 0x0808)
	c = append(c, make([]byte, 2+2+2)...) // method, time, date
	c = binary.LittleEndian.AppendUint32(c, crc)
	c = binary.LittleEndian.AppendUint32(c, uint32(size))
	c = binary.LittleEndian.AppendUint32(c, uint32(size))
	c = binary.LittleEndian.AppendUint16(c, uint16(len(name)))
	c = append(c, make([]byte, 2+2+2+2+4)...) // extra, comment, disk, attrs
	c = binary.LittleEndian.AppendUint32(c, uint32(start))
	z.cd = append(c, name...)
	z.n++
}

func (z *minizWriter) finish() error {
	cdOff, cdLen := z.off, int64(len(z.cd))
	z.write(z.cd)
	eocd64 := z.off
	e := binary.LittleEndian.AppendUint32(nil, 0x06064b50)
	e = binary.LittleEndian.AppendUint64(e, 44)
	e = binary.LittleEndian.AppendUint16(e, 0x031e) // made by: Unix, 3.0
	e = binary.LittleEndian.AppendUint16(e, 45)     // needed: zip64
	e = binary.LittleEndian.AppendUint32(e, 0)
	e = binary.LittleEndian.AppendUint32(e, 0)
	e = binary.LittleEndian.AppendUint64(e, uint64(z.n))
	e = binary.LittleEndian.AppendUint64(e, uint64(z.n))
	e = binary.LittleEndian.AppendUint64(e, uint64(cdLen))
	e = binary.LittleEndian.AppendUint64(e, uint64(cdOff))
	e = binary.LittleEndian.AppendUint32(e, 0x07064b50) // zip64 locator
	e = binary.LittleEndian.AppendUint32(e, 0)
	e = binary.LittleEndian.AppendUint64(e, uint64(eocd64))
	e = binary.LittleEndian.AppendUint32(e, 1)
	e = binary.LittleEndian.AppendUint32(e, 0x06054b50) // end of central directory
	e = binary.LittleEndian.AppendUint16(e, 0)
	e = binary.LittleEndian.AppendUint16(e, 0)
	e = binary.LittleEndian.AppendUint16(e, uint16(z.n))
	e = binary.LittleEndian.AppendUint16(e, uint16(z.n))
	e = binary.LittleEndian.AppendUint32(e, uint32(cdLen))
	e = binary.LittleEndian.AppendUint32(e, uint32(cdOff))
	e = binary.LittleEndian.AppendUint16(e, 0)
	z.write(e)
	if z.err != nil {
		return z.err
	}
	return z.w.Flush()
}
