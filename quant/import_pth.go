package quant

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// torch.save output comes in two formats, both read here:
//
//   - zip (PyTorch ≥ 1.6): <archive>/data.pkl is the pickled object, in
//     which every storage is a persistent id ('storage', torch.FloatStorage,
//     key, location, numel) whose bytes are the record <archive>/data/<key>;
//     <archive>/byteorder says "little" or "big" (absent: little).
//   - legacy (torch.save(..., _use_new_zipfile_serialization=False), and
//     every file saved before 1.6 — torchvision's VGG weights among them):
//     pickles of the magic number, the protocol version (1001) and sys_info,
//     then the object (persistent ids ('storage', type, root_key, location,
//     numel, view_metadata)), then the sorted list of storage keys, then for
//     each key an 8-byte element count and the raw elements.
//
// The pickles are decoded by gopickle's unpickler (github.com/nlpodyssey/
// gopickle/pickle) with our own class and persistent-id hooks rather than
// by gopickle's pytorch.Load, which (v0.2.0) does not know
// torch._utils._rebuild_tensor — the function torchvision's 2017 VGG
// checkpoints (vgg16-397923af.pth) are pickled with — nor legacy storage
// views, allocates storages from unchecked sizes, panics on tar files,
// converts half-precision subnormals, ±Inf and NaN wrongly, and reads
// every storage whether it is used or not. Here every size is checked
// against the bytes in the file before anything is allocated, only the
// storages of the returned tensors are read, each straight into its
// float32 slice, and the result is cross-checked against pytorch.Load on
// its own fixtures in the tests.

// pthMaxPickle bounds data.pkl (and the legacy object pickle). A VGG
// state_dict pickles to ~5 KB, a 1000-tensor checkpoint with optimizer
// state to well under 1 MB; gopickle turns each byte into up to ~100 bytes
// of objects, so the bound is also a memory bound.
const pthMaxPickle = 8 << 20

// pthMaxDims bounds a tensor's rank (PyTorch's own limit is 64).
const pthMaxDims = 64

// pthStorageTypes maps torch's storage classes to element decoders.
var pthStorageTypes = map[string]*weightsDtype{
	"FloatStorage": dtF32, "HalfStorage": dtF16, "BFloat16Storage": dtBF16,
	"DoubleStorage": dtF64, "CharStorage": dtI8, "ByteStorage": dtU8,
	"BoolStorage": dtBool, "ShortStorage": dtI16, "IntStorage": dtI32,
	"LongStorage": dtI64,
}

// ReadPTH reads torch.save output — a state_dict (an OrderedDict or dict of
// tensors), a checkpoint dict holding one under "state_dict",
// "model_state_dict" or "model", or a single tensor (returned under the
// name "") — converting every tensor to float32. Non-contiguous tensors
// (any non-negative strides) are gathered into C order.
func ReadPTH(path string) (map[string]*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return readPTH(f, fi.Size(), path)
}

// readPTH decodes the size bytes of r; file names it in errors.
func readPTH(r io.ReaderAt, size int64, file string) (ts map[string]*Tensor, err error) {
	// gopickle is not hardened against every malformed pickle (a LONG1 of
	// length 0, or SETITEMS over an odd number of items, index out of
	// range); the scanner removes the allocation hazards, this turns what
	// is left into an error.
	defer func() {
		if p := recover(); p != nil {
			ts, err = nil, fmt.Errorf("%s: malformed pickle (%v)", file, p)
		}
	}()
	head := make([]byte, 512)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK")):
		ts, err = readPTHZip(r, size, file)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return nil, fmt.Errorf("%s: a tar archive: torch.save's pre-2017 format is not supported; load it in PyTorch and save it again", file)
	default:
		ts, err = readPTHLegacy(r, size, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ts, nil
}

// pthStorage is one storage named by a persistent id; data is filled in
// only for storages that returned tensors use.
type pthStorage struct {
	key    string
	class  string // "FloatStorage", for messages
	dt     *weightsDtype
	numel  int64
	needed bool
	loaded bool
	data   []float32
}

// pthView is a legacy-format storage view: numel elements of root starting
// at offset.
type pthView struct {
	root          *pthStorage
	offset, numel int64
}

// pthTensor is a tensor as _rebuild_tensor describes it, before its
// storage is read.
type pthTensor struct {
	st     *pthStorage
	base   int64 // first element of the (view of the) storage
	offset int64 // storage_offset, relative to base
	size   []int64
	stride []int64
	numel  int64
}

// pthStorageClass stands for torch.FloatStorage and its siblings.
type pthStorageClass struct {
	name string
	dt   *weightsDtype
}

// pthOpaqueClass stands for any other global; constructing it yields a
// pthOpaque, so that checkpoints carrying extra objects (an
// argparse.Namespace, numpy scalars) still load, and a pickled whole model
// can be reported by its class name.
type pthOpaqueClass struct{ module, name string }

type pthOpaque struct{ class *pthOpaqueClass }

func (c *pthOpaqueClass) Call(args ...interface{}) (interface{}, error)  { return &pthOpaque{c}, nil }
func (c *pthOpaqueClass) PyNew(args ...interface{}) (interface{}, error) { return &pthOpaque{c}, nil }
func (o *pthOpaque) PySetState(state interface{}) error                  { return nil }

// pthRebuild is torch._utils._rebuild_tensor (v2 false: the 2017 format,
// (storage, storage_offset, size, stride)) and _rebuild_tensor_v2 (storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
type pthRebuild struct{ v2 bool }

func (rb pthRebuild) Call(args ...interface{}) (interface{}, error) {
	if rb.v2 && (len(args) < 6 || len(args) > 7) || !rb.v2 && len(args) != 4 {
		return nil, fmt.Errorf("_rebuild_tensor: %d arguments", len(args))
	}
	t := &pthTensor{}
	var limit int64
	switch s := args[0].(type) {
	case *pthStorage:
		t.st, limit = s, s.numel
	case *pthView:
		t.st, t.base, limit = s.root, s.offset, s.numel
	default:
		return nil, fmt.Errorf("_rebuild_tensor: storage argument is %s", pyTypeName(args[0]))
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor: storage_offset %v", args[1])
	}
	t.offset = int64(off)
	var err error
	if t.size, err = intTuple(args[2], "size"); err != nil {
		return nil, err
	}
	if t.stride, err = intTuple(args[3], "stride"); err != nil {
		return nil, err
	}
	if len(t.size) != len(t.stride) || len(t.size) > pthMaxDims {
		return nil, fmt.Errorf("_rebuild_tensor: size %v and stride %v", t.size, t.stride)
	}
	if t.numel, err = tensorElems(t.size); err != nil {
		return nil, err
	}
	// Every element must lie inside the storage: the largest index is
	// offset + Σ (size_i−1)·stride_i. Each term is checked against limit
	// before it is added, so nothing overflows.
	last := t.offset
	if t.numel > 0 {
		if last >= limit { // a scalar has no dimensions to catch it below
			return nil, fmt.Errorf("_rebuild_tensor: storage_offset %d past the storage's %d elements", t.offset, limit)
		}
		for i, sz := range t.size {
			st := t.stride[i]
			if st < 0 {
				return nil, fmt.Errorf("_rebuild_tensor: negative stride %v", t.stride)
			}
			if sz > 1 && st > 0 && sz-1 > limit/st {
				return nil, fmt.Errorf("_rebuild_tensor: size %v, stride %v reach past the storage's %d elements", t.size, t.stride, limit)
			}
			last += (sz - 1) * st
			if last >= limit {
				return nil, fmt.Errorf("_rebuild_tensor: size %v, stride %v, offset %d reach past the storage's %d elements", t.size, t.stride, t.offset, limit)
			}
		}
	} else if t.offset > limit {
		return nil, fmt.Errorf("_rebuild_tensor: storage_offset %d past the storage's %d elements", t.offset, limit)
	}
	return t, nil
}

// pthRebuildParameter is torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks) and _rebuild_parameter_with_state(…,
// state): an nn.Parameter is its data here.
type pthRebuildParameter struct{}

func (pthRebuildParameter) Call(args ...interface{}) (interface{}, error) {
	if len(args) < 1 {
		return nil, errors.New("_rebuild_parameter: no arguments")
	}
	if _, ok := args[0].(*pthTensor); !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is %s", pyTypeName(args[0]))
	}
	return args[0], nil
}

// pthRebuildFromType is torch._tensor._rebuild_from_type_v2(func, type,
// args, state), used for tensor subclasses: the tensor is func(*args).
type pthRebuildFromType struct{}

func (pthRebuildFromType) Call(args ...interface{}) (interface{}, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("_rebuild_from_type_v2: %d arguments", len(args))
	}
	fn, ok := args[0].(types.Callable)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type_v2: %s is not callable", pyTypeName(args[0]))
	}
	tup, ok := args[2].(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_from_type_v2: args is %s", pyTypeName(args[2]))
	}
	return fn.Call(*tup...)
}

func intTuple(v interface{}, what string) ([]int64, error) {
	tup, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: %s is %s, want a tuple", what, pyTypeName(v))
	}
	out := make([]int64, tup.Len())
	for i := range out {
		x, ok := tup.Get(i).(int)
		if !ok {
			return nil, fmt.Errorf("_rebuild_tensor: %s %v: not all ints", what, *tup)
		}
		out[i] = int64(x)
	}
	return out, nil
}

// pthUnpickler decodes one object pickle, resolving torch's classes and
// storage persistent ids.
type pthUnpickler struct {
	storages map[string]*pthStorage
	legacy   bool
}

func (p *pthUnpickler) findClass(module, name string) (interface{}, error) {
	switch module {
	case "torch":
		if dt, ok := pthStorageTypes[name]; ok {
			return &pthStorageClass{name, dt}, nil
		}
	case "torch._utils":
		switch name {
		case "_rebuild_tensor":
			return pthRebuild{v2: false}, nil
		case "_rebuild_tensor_v2":
			return pthRebuild{v2: true}, nil
		case "_rebuild_parameter", "_rebuild_parameter_with_state":
			return pthRebuildParameter{}, nil
		}
	case "torch._tensor":
		if name == "_rebuild_from_type_v2" {
			return pthRebuildFromType{}, nil
		}
	}
	return &pthOpaqueClass{module, name}, nil
}

func (p *pthUnpickler) persistentLoad(pid interface{}) (interface{}, error) {
	tup, ok := pid.(*types.Tuple)
	if !ok || tup.Len() == 0 || tup.Get(0) != "storage" {
		return nil, fmt.Errorf("persistent id %v: want ('storage', …)", pid)
	}
	want := 5 // zip: ('storage', type, key, location, numel)
	if p.legacy {
		want = 6 // legacy: … plus view_metadata
	}
	if tup.Len() != want {
		return nil, fmt.Errorf("persistent id %v: %d fields, want %d", pid, tup.Len(), want)
	}
	var class *pthStorageClass
	switch c := tup.Get(1).(type) {
	case *pthStorageClass:
		class = c
	case *pthOpaqueClass:
		return nil, fmt.Errorf("storage type %s.%s is not supported (float, half, bfloat16, double and integer storages are)", c.module, c.name)
	default:
		return nil, fmt.Errorf("persistent id %v: no storage type", pid)
	}
	key, ok1 := tup.Get(2).(string)
	numel, ok2 := tup.Get(4).(int)
	if !ok1 || !ok2 || numel < 0 {
		return nil, fmt.Errorf("persistent id %v: want a string key and a non-negative size", pid)
	}
	st, seen := p.storages[key]
	if !seen {
		st = &pthStorage{key: key, class: class.name, dt: class.dt, numel: int64(numel)}
		p.storages[key] = st
	} else if st.dt != class.dt || st.numel != int64(numel) {
		return nil, fmt.Errorf("storage %q is declared as %s[%d] and as %s[%d]", key, st.class, st.numel, class.name, numel)
	}
	if !p.legacy || tup.Get(5) == nil {
		return st, nil
	}
	// Legacy view: (view_key, offset, view_size) into the root storage.
	vm, ok := tup.Get(5).(*types.Tuple)
	if !ok || vm.Len() != 3 {
		return nil, fmt.Errorf("storage %q: view metadata %v", key, tup.Get(5))
	}
	off, ok1 := vm.Get(1).(int)
	n, ok2 := vm.Get(2).(int)
	if !ok1 || !ok2 || off < 0 || n < 0 || int64(off) > st.numel || int64(n) > st.numel-int64(off) {
		return nil, fmt.Errorf("storage %q: view %v outside its %d elements", key, *vm, st.numel)
	}
	return &pthView{root: st, offset: int64(off), numel: int64(n)}, nil
}

// unpickle scans and decodes one pickle from br with the torch hooks.
func (p *pthUnpickler) unpickle(br *bufio.Reader, limit int) (interface{}, error) {
	data, err := scanPickle(br, limit)
	if err != nil {
		return nil, err
	}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = p.findClass
	u.PersistentLoad = p.persistentLoad
	return u.Load()
}

// plainUnpickle decodes a pickle that holds only plain values (the legacy
// header pickles).
func plainUnpickle(br *bufio.Reader, limit int) (interface{}, error) {
	data, err := scanPickle(br, limit)
	if err != nil {
		return nil, err
	}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = func(module, name string) (interface{}, error) {
		return nil, fmt.Errorf("unexpected class %s.%s", module, name)
	}
	return u.Load()
}

// pthNamed is one entry of the state_dict, in file order.
type pthNamed struct {
	name string
	t    *pthTensor
}

// pthStateDict finds the tensors in the unpickled object. nested allows
// one step into a checkpoint's "state_dict" entry — one only, as a forged
// pickle can make a dict its own entry.
func pthStateDict(obj interface{}, nested bool) ([]pthNamed, error) {
	if t, ok := obj.(*pthTensor); ok {
		return []pthNamed{{"", t}}, nil
	}
	keys, vals, ok := pyDictItems(obj)
	if !ok {
		if o, isOpaque := obj.(*pthOpaque); isOpaque {
			return nil, fmt.Errorf("holds a %s.%s object (a whole pickled model?), not a state_dict: save model.state_dict() instead", o.class.module, o.class.name)
		}
		return nil, fmt.Errorf("holds %s, not a state_dict (a dict of tensors)", pyTypeName(obj))
	}
	hasTensor := false
	for _, v := range vals {
		if _, ok := v.(*pthTensor); ok {
			hasTensor = true
			break
		}
	}
	if nested {
		// A training checkpoint: {"epoch": …, "state_dict": {…}, …},
		// which may hold tensors of its own beside it (best_acc1,
		// rng_state): no state_dict has a key named like these.
		for _, want := range []string{"state_dict", "model_state_dict", "model"} {
			for i, k := range keys {
				if k == want {
					if _, _, isDict := pyDictItems(vals[i]); isDict {
						sd, err := pthStateDict(vals[i], false)
						if err != nil {
							return nil, fmt.Errorf("entry %q: %w", want, err)
						}
						return sd, nil
					}
				}
			}
		}
	}
	if !hasTensor {
		if len(keys) == 0 {
			return nil, errors.New("holds an empty dict: no tensors")
		}
		return nil, fmt.Errorf("holds a dict without tensors (keys %s) and no \"state_dict\" entry", quoteList(keys, 10))
	}
	out := make([]pthNamed, 0, len(keys))
	index := map[string]int{}
	for i, k := range keys {
		t, ok := vals[i].(*pthTensor)
		if !ok {
			return nil, fmt.Errorf("entry %q is %s, not a tensor", k, pyTypeName(vals[i]))
		}
		if j, dup := index[k]; dup {
			out[j].t = t // a Python dict keeps the last value
			continue
		}
		index[k] = len(out)
		out = append(out, pthNamed{k, t})
	}
	return out, nil
}

// pyDictItems returns the string keys and the values of a dict or
// OrderedDict, in order; ok is false for anything else or for a non-string
// key.
func pyDictItems(obj interface{}) (keys []string, vals []interface{}, ok bool) {
	switch d := obj.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			k, isStr := entry.Key.(string)
			if !isStr {
				return nil, nil, false
			}
			keys, vals = append(keys, k), append(vals, entry.Value)
		}
		return keys, vals, true
	case *types.Dict:
		for _, entry := range *d {
			k, isStr := entry.Key.(string)
			if !isStr {
				return nil, nil, false
			}
			keys, vals = append(keys, k), append(vals, entry.Value)
		}
		return keys, vals, true
	}
	return nil, nil, false
}

func quoteList(ss []string, max int) string {
	q := make([]string, 0, min(len(ss), max)+1)
	for i, s := range ss {
		if i == max {
			q = append(q, "…")
			break
		}
		q = append(q, fmt.Sprintf("%q", s))
	}
	return strings.Join(q, ", ")
}

// pyTypeName names a decoded pickle value the way Python would.
func pyTypeName(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a str"
	case *types.Tuple:
		return "a tuple"
	case *types.List:
		return "a list"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *pthTensor:
		return "a tensor"
	case *pthStorage, *pthView:
		return "a storage"
	case *pthOpaque:
		return fmt.Sprintf("a %s.%s object", x.class.module, x.class.name)
	case *pthOpaqueClass:
		return fmt.Sprintf("the class %s.%s", x.module, x.name)
	}
	return fmt.Sprintf("a %T", v)
}

// pthTensors marks the storages the state_dict uses, has load read them,
// then builds the float32 tensors.
func pthTensors(obj interface{}, load func(needed []*pthStorage) error) (map[string]*Tensor, error) {
	named, err := pthStateDict(obj, true)
	if err != nil {
		return nil, err
	}
	var needed []*pthStorage
	for _, n := range named {
		if !n.t.st.needed {
			n.t.st.needed = true
			needed = append(needed, n.t.st)
		}
	}
	if err := load(needed); err != nil {
		return nil, err
	}
	uses := map[*pthStorage]int{}
	for _, n := range named {
		uses[n.t.st]++
	}
	ts := make(map[string]*Tensor, len(named))
	for _, n := range named {
		ts[n.name] = &Tensor{Name: n.name, Shape: intShape(n.t.size), Data: n.t.gather(uses[n.t.st] == 1)}
	}
	return ts, nil
}

// gather returns the tensor's values in C order. A contiguous tensor that
// is its storage's only user and spans all of it takes the storage's slice
// as is (no copy: the VGG16 case); others are copied, so a small tensor
// never pins a large shared storage.
func (t *pthTensor) gather(sole bool) []float32 {
	src := t.st.data
	start := t.base + t.offset
	if t.contiguous() {
		if sole && start == 0 && t.numel == int64(len(src)) {
			return src
		}
		return append([]float32(nil), src[start:start+t.numel]...)
	}
	out := make([]float32, t.numel)
	if t.numel == 0 {
		return out
	}
	// Odometer over the index vector; pos tracks the storage index.
	idx := make([]int64, len(t.size))
	pos := start
	for i := range out {
		out[i] = src[pos]
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			pos += t.stride[d]
			if idx[d] < t.size[d] {
				break
			}
			pos -= idx[d] * t.stride[d]
			idx[d] = 0
		}
	}
	return out
}

// contiguous reports C order: each stride is the product of the later
// sizes (dimensions of size 1 may have any stride, as in PyTorch).
func (t *pthTensor) contiguous() bool {
	want := int64(1)
	for d := len(t.size) - 1; d >= 0; d-- {
		if t.size[d] != 1 && t.stride[d] != want {
			return false
		}
		want *= t.size[d]
	}
	return true
}

// readPTHZip reads the zip format.
func readPTHZip(r io.ReaderAt, size int64, file string) (map[string]*Tensor, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("reading the zip archive: %w", err)
	}
	records := make(map[string]*zip.File, len(zr.File))
	var prefixes []string
	for _, f := range zr.File {
		records[f.Name] = f
		if dir, ok := strings.CutSuffix(f.Name, "/data.pkl"); ok && dir != "" && !strings.Contains(dir, "/") {
			prefixes = append(prefixes, dir+"/")
		}
	}
	if len(prefixes) != 1 {
		if len(prefixes) == 0 {
			return nil, errors.New("a zip archive without <archive>/data.pkl: not torch.save output")
		}
		sort.Strings(prefixes)
		return nil, fmt.Errorf("a zip archive with %d data.pkl records (%s): not torch.save output", len(prefixes), strings.Join(prefixes, ", "))
	}
	prefix := prefixes[0]
	if _, ok := records[prefix+"constants.pkl"]; ok {
		return nil, errors.New("a TorchScript archive (torch.jit.save): save model.state_dict() with torch.save instead")
	}
	bigEndian := false
	if bo, ok := records[prefix+"byteorder"]; ok {
		b, err := readSmallRecord(bo, 16)
		if err != nil {
			return nil, err
		}
		switch string(b) {
		case "little":
		case "big":
			bigEndian = true
		default:
			return nil, fmt.Errorf("%sbyteorder is %q, want \"little\" or \"big\"", prefix, b)
		}
	}
	pkl, err := readSmallRecord(records[prefix+"data.pkl"], pthMaxPickle)
	if err != nil {
		return nil, err
	}
	p := &pthUnpickler{storages: map[string]*pthStorage{}}
	obj, err := p.unpickle(bufio.NewReader(bytes.NewReader(pkl)), len(pkl))
	if err != nil {
		return nil, fmt.Errorf("%sdata.pkl: %w", prefix, err)
	}
	var buf []byte
	return pthTensors(obj, func(needed []*pthStorage) error {
		for _, st := range needed {
			name := prefix + "data/" + st.key
			rec, ok := records[name]
			if !ok {
				return fmt.Errorf("storage %q (%s[%d]): no record %s", st.key, st.class, st.numel, name)
			}
			if err := loadZipStorage(rec, st, size, bigEndian, &buf); err != nil {
				return fmt.Errorf("storage %s (%s[%d]): %w", name, st.class, st.numel, err)
			}
		}
		return nil
	})
}

// zipMaxRatio bounds a deflated record's expansion (deflate cannot exceed
// ~1032:1), so a forged uncompressed size cannot make us allocate what the
// file cannot hold. torch.save stores records uncompressed.
const zipMaxRatio = 1100

func checkRecordSize(f *zip.File, fileSize int64) error {
	switch f.Method {
	case zip.Store:
		if f.UncompressedSize64 > uint64(fileSize) {
			return fmt.Errorf("record %s claims %d bytes, more than the whole file", f.Name, f.UncompressedSize64)
		}
	case zip.Deflate:
		if f.CompressedSize64 > uint64(fileSize) || f.UncompressedSize64/zipMaxRatio > f.CompressedSize64 {
			return fmt.Errorf("record %s claims %d bytes from %d compressed", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	default:
		return fmt.Errorf("record %s: compression method %d not supported", f.Name, f.Method)
	}
	return nil
}

func readSmallRecord(f *zip.File, max int) ([]byte, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("record %s is %d bytes, more than the %d expected", f.Name, f.UncompressedSize64, max)
	}
	if f.Method != zip.Store && f.Method != zip.Deflate {
		return nil, fmt.Errorf("record %s: compression method %d not supported", f.Name, f.Method)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	return b, nil
}

// loadZipStorage reads a storage record into st.data and checks the
// record's CRC (reading to EOF is what makes archive/zip verify it).
func loadZipStorage(rec *zip.File, st *pthStorage, fileSize int64, bigEndian bool, buf *[]byte) error {
	if err := checkRecordSize(rec, fileSize); err != nil {
		return err
	}
	// numel ≤ 2^63/8 is not guaranteed by the pickle: divide, not multiply.
	if rec.UncompressedSize64%uint64(st.dt.size) != 0 || rec.UncompressedSize64/uint64(st.dt.size) != uint64(st.numel) {
		return fmt.Errorf("record holds %d bytes, want %d elements of %d bytes", rec.UncompressedSize64, st.numel, st.dt.size)
	}
	if st.numel > maxTensorElems {
		return fmt.Errorf("more than %d elements", maxTensorElems)
	}
	rc, err := rec.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	st.data = make([]float32, st.numel)
	if err := readDecode(rc, st.data, st.dt, bigEndian, buf); err != nil {
		return err
	}
	var one [1]byte
	if n, err := rc.Read(one[:]); n != 0 || err != io.EOF {
		if err == nil || n != 0 {
			err = errors.New("record longer than its storage")
		}
		return err
	}
	st.loaded = true
	return nil
}

// pthMagic is torch.save's legacy magic number, 0x1950a86a20f9469cfc6c.
const pthMagic = "1950a86a20f9469cfc6c"

// readPTHLegacy reads the legacy (non-zip) format in one sequential pass.
func readPTHLegacy(r io.ReaderAt, size int64, file string) (map[string]*Tensor, error) {
	cr := &countingReader{r: io.NewSectionReader(r, 0, size)}
	br := bufio.NewReaderSize(cr, int(min(size, 1<<20))) // small files, small buffer
	pos := func() int64 { return cr.n - int64(br.Buffered()) }

	magic, err := plainUnpickle(br, 64)
	if err != nil {
		return nil, fmt.Errorf("not torch.save output (neither a zip archive nor a legacy pickle): %w", err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != pthMagic {
		return nil, errors.New("not torch.save output: a pickle without torch's magic number (a plain pickle, or a numpy file?)")
	}
	version, err := plainUnpickle(br, 64)
	if err != nil {
		return nil, fmt.Errorf("protocol version: %w", err)
	}
	if v, ok := version.(int); !ok || v != 1001 {
		return nil, fmt.Errorf("protocol version %v, want 1001", version)
	}
	sysInfo, err := plainUnpickle(br, 1<<16)
	if err != nil {
		return nil, fmt.Errorf("sys_info: %w", err)
	}
	bigEndian := false
	if keys, vals, ok := pyDictItems(sysInfo); ok {
		for i, k := range keys {
			if k == "little_endian" {
				le, isBool := vals[i].(bool)
				if !isBool {
					return nil, fmt.Errorf("sys_info little_endian is %s", pyTypeName(vals[i]))
				}
				bigEndian = !le
			}
		}
	}
	p := &pthUnpickler{storages: map[string]*pthStorage{}, legacy: true}
	obj, err := p.unpickle(br, pthMaxPickle)
	if err != nil {
		return nil, fmt.Errorf("object pickle: %w", err)
	}
	rawKeys, err := plainUnpickle(br, pthMaxPickle)
	if err != nil {
		return nil, fmt.Errorf("storage key list: %w", err)
	}
	list, ok := rawKeys.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage key list is %s", pyTypeName(rawKeys))
	}
	var buf []byte
	return pthTensors(obj, func(needed []*pthStorage) error {
		// The storages follow in the order of the key list, each an
		// 8-byte element count and the elements: read the needed ones,
		// skip the others.
		for _, raw := range *list {
			key, ok := raw.(string)
			if !ok {
				return fmt.Errorf("storage key list holds %s", pyTypeName(raw))
			}
			st, ok := p.storages[key]
			if !ok {
				return fmt.Errorf("storage %q is listed but no tensor uses it", key)
			}
			if st.loaded {
				return fmt.Errorf("storage %q is listed twice", key)
			}
			var nb [8]byte
			if _, err := io.ReadFull(br, nb[:]); err != nil {
				return fmt.Errorf("storage %q: element count: %w", key, unexpected(err))
			}
			if bigEndian {
				swapElements(nb[:], 8)
			}
			n := int64(nb[0]) | int64(nb[1])<<8 | int64(nb[2])<<16 | int64(nb[3])<<24 |
				int64(nb[4])<<32 | int64(nb[5])<<40 | int64(nb[6])<<48 | int64(nb[7])<<56
			if n != st.numel {
				return fmt.Errorf("storage %q: %d elements in the file, %d in the pickle", key, n, st.numel)
			}
			left := size - pos()
			if n > left/int64(st.dt.size) {
				return fmt.Errorf("storage %q (%s[%d]): only %d bytes left in the file", key, st.class, n, left)
			}
			nbytes := n * int64(st.dt.size)
			if !st.needed {
				if _, err := io.CopyN(io.Discard, br, nbytes); err != nil {
					return fmt.Errorf("storage %q: %w", key, unexpected(err))
				}
				st.loaded = true
				continue
			}
			if n > maxTensorElems {
				return fmt.Errorf("storage %q: more than %d elements", key, maxTensorElems)
			}
			st.data = make([]float32, n)
			if err := readDecode(br, st.data, st.dt, bigEndian, &buf); err != nil {
				return fmt.Errorf("storage %q (%s[%d]): %w", key, st.class, n, unexpected(err))
			}
			st.loaded = true
		}
		for _, st := range needed {
			if !st.loaded {
				return fmt.Errorf("storage %q (%s[%d]) is used but missing from the storage list", st.key, st.class, st.numel)
			}
		}
		return nil
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
