package torchio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

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
