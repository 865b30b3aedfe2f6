// Package models holds the models embedded in the vggedge binary, so
// `--model digits` works on any board without a file to copy:
//
//   - digits-f32: a small VGG-style network (3x3 convolutions, max-pools, a
//     1x1 reduction before the classifier) trained on MNIST by `vggedge
//     train` (`make demo-model` retrains it with the same seed);
//   - digits: the same network quantized to int8 by `vggedge quantize`.
//
// The files live in data/ with the architecture file they were trained
// from (data/digits.json).
package models

import (
	"embed"
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/vggedge/vggedge/infer/vgm"
)

//go:embed data
var files embed.FS

// Names lists the embedded models.
func Names() []string {
	entries, _ := fs.ReadDir(files, "data")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".vgm"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Open decodes an embedded model. ok is false when name is not one.
func Open(name string) (f *vgm.File, ok bool, err error) {
	if name == "" || strings.ContainsAny(name, `/\.`) {
		return nil, false, nil
	}
	data, err := files.ReadFile(path.Join("data", name+".vgm"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	// vgm.Decode aliases int8 weights into data: embedded data is
	// read-only and lives as long as the program, as it must.
	f, err = vgm.Decode(data, "embedded "+name)
	return f, true, err
}
