package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/models"
)

// openModel opens a model by embedded name ("digits", "digits-f32") or path.
func openModel(name string) (*infer.File, error) {
	if f, ok, err := models.Open(name); ok {
		return f, err
	}
	if _, err := os.Stat(name); err != nil {
		return nil, fmt.Errorf("model %s: not an embedded model (%s) and %w", name, strings.Join(models.Names(), ", "), err)
	}
	return infer.LoadFile(name)
}

// costModel is the architecture of a model file for costing: the float
// model's when the file has one, else the int8 model's.
func costModel(f *infer.File) (*infer.Model, error) {
	if f.Float != nil {
		return f.Float.Architecture(), nil
	}
	return f.Int8.Architecture()
}
