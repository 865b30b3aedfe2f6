package vgm

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/vggedge/vggedge/infer"
)

var errNotModelFile = errors.New("not a vggedge model file")

func decodeFile(data []byte) (*File, error) {
	d := newFileDecoder(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", errNotModelFile)
	}
	if c, _ := d.peek(); !isMap(c) {
		return nil, fmt.Errorf("%w: it does not begin with a msgpack map", errNotModelFile)
	}
	n, err := d.mapLen()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotModelFile, err)
	}
	// format and version come first, so that nothing is read under the
	// wrong interpretation.
	if k, err := d.key(); errors.Is(err, errTruncated) {
		return nil, err
	} else if n < 2 || err != nil || k != "format" {
		return nil, fmt.Errorf("%w: it does not begin with the key \"format\"", errNotModelFile)
	}
	magic, err := d.str(64)
	if err != nil {
		return nil, fmt.Errorf("%w: format: %v", errNotModelFile, err)
	}
	if magic != FileMagic {
		return nil, fmt.Errorf("%w: format is %s, want %q", errNotModelFile, display(magic), FileMagic)
	}
	if k, err := d.key(); err != nil {
		return nil, err
	} else if k != "version" {
		return nil, errors.New("version: missing (it must be the second key)")
	}
	version, err := d.int(math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	if version > FileVersion {
		return nil, fmt.Errorf("model file version %d: this build of vggedge reads version %d and older; use a newer vggedge", version, FileVersion)
	}
	if version < 1 {
		return nil, fmt.Errorf("version %d: must be at least 1", version)
	}

	var (
		name           string
		input          infer.Shape
		hasInput       bool
		meta           infer.Meta
		fm             *infer.Model
		qm             *infer.QModel
		seen           keySet
		topLevelFields = []string{"name", "input", "spec", "labels", "provenance", "float", "int8"}
	)
	for range n - 2 {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if err := seen.add(topLevelFields, k); err != nil {
			return nil, err
		}
		switch k {
		case "name":
			name, err = d.str(maxNameLen)
		case "input":
			input, err = d.shape()
			hasInput = true
		case "spec":
			err = decodeRecord(d, specFields, &meta.Spec)
		case "labels":
			meta.Labels, err = d.strs(maxFileLabels)
		case "provenance":
			err = decodeRecord(d, provenanceFields, &meta.Prov)
		case "float":
			fm, err = d.floatModel()
		case "int8":
			qm, err = d.int8Model()
		default:
			err = d.skip()
		}
		if err != nil {
			if errors.Is(err, errLayer) {
				return nil, err // already "float layer 3 …"
			}
			return nil, fmt.Errorf("%s: %w", display(k), err)
		}
	}
	if d.left() != 0 {
		return nil, fmt.Errorf("%d bytes after the end of the model (a damaged or concatenated file?)", d.left())
	}
	if !hasInput {
		return nil, errors.New("input: missing")
	}
	if fm == nil && qm == nil {
		return nil, errors.New("the file holds neither a float nor an int8 model")
	}
	f := &File{Float: fm, Int8: qm}
	if fm != nil {
		fm.Name, fm.Input, fm.Meta = name, input, meta
	}
	if qm != nil {
		qm.Name, qm.Input, qm.Meta = name, input, meta
	}
	if err := validateFile(f); err != nil {
		return nil, err
	}
	return f, nil
}

// keySet detects repeated keys in one map (a key's index in the map's list
// of known keys is its bit; unknown keys are skipped and not tracked).
type keySet uint64

func (s *keySet) add(known []string, k string) error {
	i := slices.Index(known, k)
	if i < 0 {
		return nil
	}
	if *s&(1<<i) != 0 {
		return fmt.Errorf("%s: the key appears twice", k)
	}
	*s |= 1 << i
	return nil
}

// errLayer marks errors that already say which layer they are about.
var errLayer = errors.New("layer error")

type layerErr struct {
	prefix string // "int8 layer 3 features.5"
	err    error
}

func (e *layerErr) Error() string   { return e.prefix + ": " + e.err.Error() }
func (e *layerErr) Unwrap() []error { return []error{e.err, errLayer} }
func layerPrefix(which string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s layer %d", which, i)
	}
	return fmt.Sprintf("%s layer %d %s", which, i, display(name))
}

// floatModel decodes the "float" map.
func (d *fileDecoder) floatModel() (*infer.Model, error) {
	m := &infer.Model{}
	if err := decodeRecord(d, floatModelFields, m); err != nil {
		return nil, err
	}
	if m.Layers == nil {
		return nil, errors.New("layers: missing")
	}
	return m, nil
}

// int8Model decodes the "int8" map.
func (d *fileDecoder) int8Model() (*infer.QModel, error) {
	q := &infer.QModel{}
	if err := decodeRecord(d, int8ModelFields, q); err != nil {
		return nil, err
	}
	if q.Layers == nil {
		return nil, errors.New("layers: missing")
	}
	return q, nil
}

func (d *fileDecoder) shape() (infer.Shape, error) {
	n, err := d.arrayLen(3)
	if err != nil {
		return infer.Shape{}, err
	}
	if n != 3 {
		return infer.Shape{}, fmt.Errorf("%d values, want [C, H, W]", n)
	}
	var v [3]int64
	for i := range v {
		if v[i], err = d.int(math.MinInt32, math.MaxInt32); err != nil {
			return infer.Shape{}, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return infer.Shape{C: int(v[0]), H: int(v[1]), W: int(v[2])}, nil
}
