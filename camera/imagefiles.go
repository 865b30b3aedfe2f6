package camera

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vggedge/vggedge/infer"
)

// ImageFiles is the list of image files one command-line argument names,
// in the order they are classified.
type ImageFiles struct {
	Paths []string
	// Labels holds, per file, its index in Classes: the sub-folder of the
	// listed directory it lies in (ImageFolder layout); -1 for a file
	// outside class folders.
	Labels  []int
	Classes []string // the directory's sub-folders, sorted; nil for a flat folder, a glob or a file
}

// Class names file i's class folder, "" when it has none.
func (l *ImageFiles) Class(i int) string {
	if l.Labels[i] < 0 {
		return ""
	}
	return l.Classes[l.Labels[i]]
}

// ListImages expands what the file source (file://…), classify and the
// calibration flags take, with or without a file:// prefix:
//
//   - a directory: every .jpg, .jpeg and .png file in it, recursively,
//     sorted by path (entries starting with "." skipped). When it has
//     sub-folders (torchvision's ImageFolder layout: DIR/CLASS/IMAGE.jpg)
//     each file below one is labelled with it.
//   - a file: itself, whatever its name (decoding tells whether it is an
//     image).
//   - a glob (shots/*.jpg), expanded here so that a quoted one works: the
//     regular files it matches, sorted (hidden ones only when the pattern
//     names them, as in a shell).
func ListImages(arg string) (*ImageFiles, error) {
	p := strings.TrimPrefix(arg, "file://")
	if p == "" {
		return nil, errors.New("empty path")
	}
	l := &ImageFiles{}
	st, err := os.Stat(p)
	switch {
	case err == nil && st.IsDir():
		return l, l.listDir(p)
	case err == nil:
		l.add(p, -1)
		return l, nil
	case !hasGlobMeta(p):
		return nil, err // names the path already
	}
	matches, err := filepath.Glob(p)
	if err != nil {
		return nil, fmt.Errorf("pattern %s: %w", p, err)
	}
	for _, m := range matches {
		if hiddenMatch(p, m) {
			continue
		}
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
			l.add(m, -1)
		}
	}
	if len(l.Paths) == 0 {
		return nil, fmt.Errorf("%s: no such file, and no files match it as a pattern", p)
	}
	return l, nil
}

// hiddenMatch reports a match with a component starting with "." where
// its pattern's does not: a shell's * skips hidden files, filepath.Glob's
// does not, and a quoted glob must list what the unquoted one does.
func hiddenMatch(pattern, match string) bool {
	pp := strings.Split(filepath.Clean(pattern), string(filepath.Separator))
	mp := strings.Split(filepath.Clean(match), string(filepath.Separator))
	if len(pp) != len(mp) {
		return false
	}
	for i := range mp {
		if strings.HasPrefix(mp[i], ".") && !strings.HasPrefix(pp[i], ".") {
			return true
		}
	}
	return false
}

func hasGlobMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

func (l *ImageFiles) add(path string, label int) {
	l.Paths = append(l.Paths, path)
	l.Labels = append(l.Labels, label)
}

func (l *ImageFiles) listDir(dir string) error {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			l.Classes = append(l.Classes, e.Name())
		}
	}
	root := dir
	if !strings.HasSuffix(root, string(filepath.Separator)) {
		root += string(filepath.Separator) // so that a symlink to a folder is walked, as ReadDir reads it
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isImageName(d.Name()) {
			return nil
		}
		label := -1
		if rel, err := filepath.Rel(dir, path); err == nil {
			if top, _, nested := strings.Cut(rel, string(filepath.Separator)); nested {
				label = slices.Index(l.Classes, top)
			}
		}
		l.add(path, label)
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case len(l.Paths) > 0:
		return nil
	case len(l.Classes) == 0:
		return fmt.Errorf("%s: no .jpg, .jpeg or .png files and no class sub-folders", dir)
	default:
		return fmt.Errorf("%s: class folders %s hold no .jpg, .jpeg or .png files", dir, strings.Join(l.Classes, ", "))
	}
}

// isImageName reports the file names the folder layouts take.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// ReadImageFile decodes a JPEG or PNG file into f as RGB24 (reusing
// f.Data) and sets f.File to path: what the file source delivers, for
// one-shot classification through the same Preprocessor.
func ReadImageFile(path string, f *Frame) error {
	if err := decodeFileRGB(path, f); err != nil {
		return err
	}
	f.File, f.Label = path, -1
	return nil
}

// isImageFolder reports a directory with class sub-folders.
func isImageFolder(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}
	return false
}

// fileListDataset is an unlabelled set of image files (a flat folder, a
// glob): calibration needs no labels.
type fileListDataset struct {
	files []string
	in    infer.Shape
	spec  infer.InputSpec
}

func openFileList(data string, in infer.Shape, spec infer.InputSpec) (Dataset, error) {
	l, err := ListImages(data)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w (want idx:PATH, a folder of images, an ImageFolder directory or a glob)", data, err)
	}
	if _, err := NewPreprocessor(in, spec); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", data, err)
	}
	return &fileListDataset{files: l.Paths, in: in, spec: spec}, nil
}

func (d *fileListDataset) Len() int          { return len(d.files) }
func (d *fileListDataset) Classes() []string { return nil }

// Sample decodes file i as the file source does and preprocesses it; the
// label is -1 (unknown).
func (d *fileListDataset) Sample(i int, dst []byte) (int, error) {
	if i < 0 || i >= len(d.files) {
		return -1, fmt.Errorf("sample %d of %d", i, len(d.files))
	}
	var f Frame
	if err := decodeFileRGB(d.files[i], &f); err != nil {
		return -1, err
	}
	p, err := NewPreprocessor(d.in, d.spec) // per call: Sample runs on several goroutines
	if err != nil {
		return -1, err
	}
	if err := p.Into(dst, &f); err != nil {
		return -1, fmt.Errorf("%s: %w", d.files[i], err)
	}
	return -1, nil
}

// IsLabelled reports whether ds knows each image's class (idx sets,
// ImageFolder trees); a flat folder or a glob does not.
func IsLabelled(ds Dataset) bool {
	_, unlabelled := ds.(*fileListDataset)
	return !unlabelled
}
