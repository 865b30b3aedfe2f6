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
