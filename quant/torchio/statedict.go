package torchio

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

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
