package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/models"
	"github.com/vggedge/vggedge/infer/vgm"
)

// openModel opens a model by embedded name ("digits", "digits-f32") or path.
func openModel(name string) (*vgm.File, error) {
	if f, ok, err := models.Open(name); ok {
		return f, err
	}
	if _, err := os.Stat(name); err != nil {
		return nil, fmt.Errorf("model %s: not an embedded model (%s) and %w", name, strings.Join(models.Names(), ", "), err)
	}
	f, err := vgm.Load(name)
	if err != nil {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".pth", ".pt", ".safetensors", ".ckpt", ".bin":
			// Float weights, not a vggedge model file.
			return nil, fmt.Errorf("%s holds weights, not a vggedge model: run vggedge quantize --arch NAME --weights %s --calib DIR --out MODEL.vgm first (%w)", name, name, err)
		}
	}
	return f, err
}

// costModel is the architecture of a model file for costing: the float
// model's when the file has one, else the int8 model's.
func costModel(f *vgm.File) (*infer.Model, error) {
	if f.Float != nil {
		return f.Float.Architecture(), nil
	}
	return f.Int8.Architecture()
}
