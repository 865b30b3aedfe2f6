package torchsave

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

// Tensor is one named float32 tensor to write, in C order. It has the
// fields of torchio.Tensor, so a *torchio.Tensor converts to a *Tensor;
// this package does not import torchio, whose own tests import it.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// WriteStateDict writes ts as torch.save(state_dict, path) does with current
// PyTorch: zip format, archive "archive", byteorder record, an OrderedDict
// of contiguous float32 tensors in the order given, one storage each.
func WriteStateDict(path string, ts []*Tensor) error {
	spec, err := FromTensors(ts)
	if err != nil {
		return err
	}
	spec.Archive, spec.Byteorder = "archive", true
	return WriteFile(path, spec)
}

// Spec describes a file for Write.
type Spec struct {
	Storages []Storage
	Tensors  []Entry
	Bare     bool // pickle Tensors[0] alone, as torch.save(tensor)
	Metadata bool // give the state_dict a _metadata attribute

	Legacy  bool   // legacy format instead of zip
	Rebuild string // "_rebuild_tensor_v2" (default) or "_rebuild_tensor" (legacy)

	Archive   string // zip folder
	Byteorder bool   // write <archive>/byteorder
}

type Storage struct {
	Class string // "FloatStorage", "HalfStorage", …
	Key   string // persistent-id key; default: "0", "1", … in first-use order
	Numel int
	Data  []byte    // little-endian elements, or
	F32   []float32 // float32 values, converted while writing (no second copy of a large model)
}

func (s *Storage) size() int64 {
	if s.F32 != nil {
		return 4 * int64(len(s.F32))
	}
	return int64(len(s.Data))
}

func (s *Storage) writeTo(w io.Writer) error {
	if s.F32 == nil {
		_, err := w.Write(s.Data)
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for i, v := range s.F32 {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) || i == len(s.F32)-1 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

type Entry struct {
	Name    string
	Storage int // index into Storages
	Offset  int
	Size    []int
	Stride  []int
}

// FromTensors describes a state_dict of ts in the order given: contiguous
// float32 tensors, one storage each.
func FromTensors(ts []*Tensor) (*Spec, error) {
	spec := &Spec{}
	for i, t := range ts {
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("tensor %q: shape %v needs %d values, has %d", t.Name, t.Shape, n, len(t.Data))
		}
		spec.Storages = append(spec.Storages, Storage{Class: "FloatStorage", Numel: n, F32: t.Data})
		spec.Tensors = append(spec.Tensors, Entry{Name: t.Name, Storage: i, Size: t.Shape, Stride: contiguousStrides(t.Shape)})
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

// WriteFile writes spec to a new file at path.
func WriteFile(path string, spec *Spec) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, spec); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// Write writes the file spec describes: zip format, or legacy with
// spec.Legacy.
func Write(w io.Writer, spec *Spec) error {
	// Keys are handed out in the order storages are first pickled, as
	// torch's id_map does.
	keys := make([]string, len(spec.Storages))
	next := 0
	for _, t := range spec.Tensors {
		if t.Storage < 0 || t.Storage >= len(spec.Storages) {
			return fmt.Errorf("tensor %q: storage %d out of range", t.Name, t.Storage)
		}
		if keys[t.Storage] == "" {
			keys[t.Storage] = spec.Storages[t.Storage].Key
			if keys[t.Storage] == "" {
				keys[t.Storage] = strconv.Itoa(next)
			}
			next++
		}
	}
	pkl := pickleObject(spec, keys)
	var used []int // storages in string-sorted key order
	for i, k := range keys {
		if k != "" {
			used = append(used, i)
		}
	}
	sort.Slice(used, func(a, b int) bool { return keys[used[a]] < keys[used[b]] })
	if spec.Legacy {
		return WriteLegacy(w, spec, pkl, keys, used)
	}
	if spec.Archive == "" {
		spec.Archive = "archive"
	}
	z := NewZip(w)
	z.Bytes(spec.Archive+"/data.pkl", pkl)
	if spec.Byteorder {
		z.Bytes(spec.Archive+"/byteorder", []byte("little"))
	}
	for _, i := range used {
		st := &spec.Storages[i]
		z.Record(spec.Archive+"/data/"+keys[i], st.size(), st.writeTo)
	}
	z.Bytes(spec.Archive+"/version", []byte("3\n"))
	return z.Finish()
}

// WriteLegacy writes a legacy-format file around the object pickle pkl:
// the header pickles, the key list (keys[i] for each i of used, in that
// order) and those storages of spec.
func WriteLegacy(w io.Writer, spec *Spec, pkl []byte, keys []string, used []int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	// Magic number, protocol version, sys_info: fixed pickles.
	p := NewPickler()
	p.Raw(0x8a, 10) // LONG1, 10 bytes: 0x1950a86a20f9469cfc6c little-endian
	p.Raw(0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19)
	bw.Write(p.Stop())
	p = NewPickler()
	p.Int(1001)
	bw.Write(p.Stop())
	p = NewPickler()
	p.EmptyDict()
	p.Mark()
	p.Str("protocol_version", "")
	p.Int(1001)
	p.Str("little_endian", "")
	p.Raw(0x88) // NEWTRUE
	p.Str("type_sizes", "")
	p.EmptyDict()
	p.Mark()
	for _, kv := range []struct {
		k string
		v int
	}{{"short", 2}, {"int", 4}, {"long", 4}} {
		p.Str(kv.k, "")
		p.Int(kv.v)
	}
	p.Raw('u')
	p.Raw('u')
	bw.Write(p.Stop())
	bw.Write(pkl)
	p = NewPickler()
	p.Raw(']')
	p.Put()
	if len(used) > 1 {
		p.Mark()
	}
	for _, i := range used {
		p.Str(keys[i], "")
	}
	if len(used) > 1 {
		p.Raw('e') // APPENDS
	} else if len(used) == 1 {
		p.Raw('a') // APPEND
	}
	bw.Write(p.Stop())
	for _, i := range used {
		var nb [8]byte
		binary.LittleEndian.PutUint64(nb[:], uint64(spec.Storages[i].Numel))
		bw.Write(nb[:])
		if err := spec.Storages[i].writeTo(bw); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// pickleObject pickles the state_dict (or the bare tensor).
func pickleObject(spec *Spec, keys []string) []byte {
	p := NewPickler()
	rebuild := spec.Rebuild
	if rebuild == "" {
		rebuild = "_rebuild_tensor_v2"
	}
	tensor := func(t Entry) {
		st := spec.Storages[t.Storage]
		p.Global("torch._utils", rebuild)
		p.Mark()
		// The storage, by persistent id.
		p.Mark()
		p.Str("storage", "storage")
		p.Global("torch", st.Class)
		p.Str(keys[t.Storage], "key:"+keys[t.Storage])
		p.Str("cpu", "cpu")
		p.Int(st.Numel)
		if spec.Legacy {
			p.Raw('N') // view_metadata
		}
		p.Raw('t')
		p.Put()
		p.Raw('Q') // BINPERSID
		p.Int(t.Offset)
		p.Tuple(t.Size)
		p.Tuple(t.Stride)
		if rebuild == "_rebuild_tensor_v2" {
			p.Raw(0x89) // requires_grad=False
			p.Global("collections", "OrderedDict")
			p.Raw(')', 'R') // backward_hooks=OrderedDict()
			p.Put()
		}
		p.Raw('t')
		p.Put()
		p.Raw('R')
		p.Put()
	}
	if spec.Bare {
		tensor(spec.Tensors[0])
		return p.Stop()
	}
	p.Global("collections", "OrderedDict")
	p.Raw(')', 'R')
	p.Put()
	p.SetItems(len(spec.Tensors), func(i int) {
		p.Str(spec.Tensors[i].Name, "")
		tensor(spec.Tensors[i])
	})
	if spec.Metadata {
		// state = {'_metadata': OrderedDict(module → {'version': 1})}, for
		// the root module and every module path of the tensor names.
		mods := []string{""}
		seen := map[string]bool{"": true}
		for _, t := range spec.Tensors {
			parts := strings.Split(t.Name, ".")
			for j := 1; j < len(parts); j++ {
				m := strings.Join(parts[:j], ".")
				if !seen[m] {
					seen[m] = true
					mods = append(mods, m)
				}
			}
		}
		p.EmptyDict()
		p.Str("_metadata", "")
		p.Global("collections", "OrderedDict")
		p.Raw(')', 'R')
		p.Put()
		p.SetItems(len(mods), func(i int) {
			p.Str(mods[i], "")
			p.EmptyDict()
			p.Str("version", "version")
			p.Int(1)
			p.Raw('s')
		})
		p.Raw('s')
		p.Raw('b') // BUILD
	}
	return p.Stop()
}

// Pickler writes protocol-2 opcodes with CPython's memo behaviour for the
// objects above; the tests use it to forge pickles too.
type Pickler struct {
	b    []byte
	memo map[string]int // identity of a shared object → memo index
	n    int            // next memo index
}

// NewPickler starts a protocol-2 pickle (PROTO 2).
func NewPickler() *Pickler {
	return &Pickler{b: []byte{0x80, 2}, memo: map[string]int{}}
}

// Raw appends opcodes or argument bytes as they are.
func (p *Pickler) Raw(b ...byte) { p.b = append(p.b, b...) }

// Mark writes MARK.
func (p *Pickler) Mark() { p.Raw('(') }

// Stop writes STOP and returns the pickle.
func (p *Pickler) Stop() []byte { return append(p.b, '.') }

// Put memoizes the object just written.
func (p *Pickler) Put() {
	if p.n < 256 {
		p.Raw('q', byte(p.n))
	} else {
		p.Raw('r')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(p.n))
	}
	p.n++
}

// shared writes a BINGET for an object already memoized under id, or
// returns false.
func (p *Pickler) shared(id string) bool {
	i, ok := p.memo[id]
	if !ok {
		return false
	}
	if i < 256 {
		p.Raw('h', byte(i))
	} else {
		p.Raw('j')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(i))
	}
	return true
}

func (p *Pickler) remember(id string) {
	if id != "" {
		p.memo[id] = p.n
	}
	p.Put()
}

// Global writes GLOBAL module name, memoized (a repeat is a BINGET).
func (p *Pickler) Global(module, name string) {
	id := "global:" + module + "." + name
	if p.shared(id) {
		return
	}
	p.Raw('c')
	p.b = append(p.b, module+"\n"+name+"\n"...)
	p.remember(id)
}

// Str writes s; id names the Python object when the same object recurs
// (torch's literals), "" for a fresh string.
func (p *Pickler) Str(s, id string) {
	if id != "" && p.shared("str:"+id) {
		return
	}
	p.Raw('X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	if id != "" {
		id = "str:" + id
	}
	p.remember(id)
}

// Int writes v as BININT1, BININT2 or BININT.
func (p *Pickler) Int(v int) {
	switch {
	case v >= 0 && v <= 0xff:
		p.Raw('K', byte(v))
	case v >= 0 && v <= 0xffff:
		p.Raw('M', byte(v), byte(v>>8))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.Raw('J')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
	default:
		panic("Pickler: LONG1 not needed by these tests")
	}
}

// Tuple writes a memoized tuple of ints.
func (p *Pickler) Tuple(vs []int) {
	switch {
	case len(vs) == 0:
		p.Raw(')')
		return
	case len(vs) <= 3:
		for _, v := range vs {
			p.Int(v)
		}
		p.Raw(0x84 + byte(len(vs))) // TUPLE1..3
	default:
		p.Mark()
		for _, v := range vs {
			p.Int(v)
		}
		p.Raw('t')
	}
	p.Put()
}

// EmptyDict writes EMPTY_DICT, memoized.
func (p *Pickler) EmptyDict() {
	p.Raw('}')
	p.Put()
}

// SetItems writes n dict items in CPython's batches of 1000.
func (p *Pickler) SetItems(n int, item func(i int)) {
	for start := 0; start < n; start += 1000 {
		end := min(start+1000, n)
		if end-start == 1 {
			item(start)
			p.Raw('s')
			continue
		}
		p.Mark()
		for i := start; i < end; i++ {
			item(i)
		}
		p.Raw('u')
	}
}

// Zip writes a zip archive as PyTorch's miniz does (see the package doc).
// Make one with NewZip.
type Zip struct {
	w   *bufio.Writer
	off int64
	cd  []byte
	n   int
	err error
}

// NewZip returns a Zip writing to w; Finish flushes it.
func NewZip(w io.Writer) *Zip { return &Zip{w: bufio.NewWriterSize(w, 1<<20)} }

func (z *Zip) write(b []byte) {
	if z.err == nil {
		_, z.err = z.w.Write(b)
	}
	z.off += int64(len(b))
}

// Bytes writes a stored record holding data.
func (z *Zip) Bytes(name string, data []byte) {
	z.Record(name, int64(len(data)), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Record writes one stored entry of size bytes, produced by write.
func (z *Zip) Record(name string, size int64, write func(io.Writer) error) {
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

// Finish writes the central directory and the (zip64) end records.
func (z *Zip) Finish() error {
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
