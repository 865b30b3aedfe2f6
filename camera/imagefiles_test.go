package camera

import (
	"bytes"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/infer"
)

func TestListImages(t *testing.T) {
	tree := t.TempDir()
	for _, p := range []string{"cat/b.png", "cat/deep/a.jpg", "dog/c.JPEG", "top.png", ".hidden/x.png", "dog/.y.png"} {
		writeImage(t, filepath.Join(tree, p), 2, 2, color.NRGBA{1, 2, 3, 255})
	}
	os.WriteFile(filepath.Join(tree, "dog", "notes.txt"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(tree, "empty"), 0o755)
	flat := t.TempDir()
	for _, p := range []string{"2.png", "1.jpg", "3.txt"} {
		writeImage(t, filepath.Join(flat, p), 2, 2, color.NRGBA{1, 2, 3, 255})
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(tree, link); err != nil {
		t.Fatal(err)
	}
	rel := func(root string, ps []string) string {
		var out []string
		for _, p := range ps {
			r, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(r))
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name, arg, root string
		files, classes  string
		labels          []int
	}{
		{"image folder, recursive", tree, tree, "cat/b.png cat/deep/a.jpg dog/c.JPEG top.png", "cat,dog,empty", []int{0, 0, 1, -1}},
		{"file:// prefix", "file://" + tree, tree, "cat/b.png cat/deep/a.jpg dog/c.JPEG top.png", "cat,dog,empty", []int{0, 0, 1, -1}},
		{"a symlink to the folder", link, link, "cat/b.png cat/deep/a.jpg dog/c.JPEG top.png", "cat,dog,empty", []int{0, 0, 1, -1}},
		{"trailing slash", tree + "/", tree, "cat/b.png cat/deep/a.jpg dog/c.JPEG top.png", "cat,dog,empty", []int{0, 0, 1, -1}},
		{"flat folder", flat, flat, "1.jpg 2.png", "", []int{-1, -1}},
		{"glob takes every regular file", filepath.Join(flat, "*"), flat, "1.jpg 2.png 3.txt", "", []int{-1, -1, -1}},
		{"glob of class folders, hidden skipped", filepath.Join(tree, "*", "*.png"), tree, "cat/b.png", "", []int{-1}},
		{"glob naming hidden files", filepath.Join(tree, "*", ".*.png"), tree, "dog/.y.png", "", []int{-1}},
		{"one file", filepath.Join(tree, "top.png"), tree, "top.png", "", []int{-1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ListImages(tc.arg)
			if err != nil {
				t.Fatal(err)
			}
			if got := rel(tc.root, l.Paths); got != tc.files {
				t.Errorf("files %q, want %q", got, tc.files)
			}
			if got := strings.Join(l.Classes, ","); got != tc.classes {
				t.Errorf("classes %q, want %q", got, tc.classes)
			}
			if len(l.Labels) != len(tc.labels) {
				t.Fatalf("labels %v, want %v", l.Labels, tc.labels)
			}
			for i, want := range tc.labels {
				if l.Labels[i] != want {
					t.Errorf("label of %s = %d, want %d", l.Paths[i], l.Labels[i], want)
				}
				if want >= 0 && l.Class(i) != l.Classes[want] || want < 0 && l.Class(i) != "" {
					t.Errorf("class of %s = %q", l.Paths[i], l.Class(i))
				}
			}
		})
	}
	for _, tc := range []struct{ arg, want string }{
		{filepath.Join(flat, "missing.png"), "missing.png: no such file or directory"},
		{filepath.Join(flat, "*.gif"), "no files match it as a pattern"},
		{filepath.Join(flat, "["), "syntax error in pattern"},
		{t.TempDir(), "no .jpg, .jpeg or .png files and no class sub-folders"},
		{"", "empty path"},
	} {
		if _, err := ListImages(tc.arg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ListImages(%q): error %v, want %q", tc.arg, err, tc.want)
		}
	}
}

// Calibration needs no labels: a flat folder, a glob and a file:// URI
// open as unlabelled datasets whose samples are the file source's frames
// through the model's Preprocessor.
func TestOpenDatasetCalibFlatGlobURI(t *testing.T) {
	flat := t.TempDir()
	levels := []uint8{40, 120, 200}
	for i, v := range levels {
		writeImage(t, filepath.Join(flat, string(rune('a'+i))+".png"), 8, 6, color.NRGBA{v, v, v, 255})
	}
	in := infer.Shape{C: 1, H: 4, W: 4}
	spec := infer.InputSpec{ChannelOrder: "GRAY", Mean: []float32{0.5}, Std: []float32{0.5}, Resize: "stretch"}
	pre, err := NewPreprocessor(in, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{flat, "file://" + flat, filepath.Join(flat, "*.png"), "file://" + filepath.Join(flat, "*.png")} {
		ds, err := OpenDataset(data, "train", in, spec)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if ds.Len() != len(levels) || IsLabelled(ds) || ds.Classes() != nil {
			t.Fatalf("%s: %d samples, labelled %v, classes %v; want 3 unlabelled", data, ds.Len(), IsLabelled(ds), ds.Classes())
		}
		src, err := Open("file://"+flat, Options{})
		if err != nil {
			t.Fatal(err)
		}
		frames := readAll(t, src, 10)
		src.Close()
		for i := range ds.Len() {
			got := make([]byte, in.Elems())
			label, err := ds.Sample(i, got)
			if err != nil || label != -1 {
				t.Fatalf("%s sample %d: label %d, %v", data, i, label, err)
			}
			want := make([]byte, in.Elems())
			if err := pre.Into(want, &frames[i]); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || got[0] != levels[i] {
				t.Errorf("%s sample %d: %v, want %v (the file source's frame, preprocessed)", data, i, got, want)
			}
		}
	}
	// A tree stays labelled; idx stays labelled.
	tree := t.TempDir()
	writeImage(t, filepath.Join(tree, "7", "a.png"), 8, 6, color.NRGBA{9, 9, 9, 255})
	if ds, err := OpenDataset("file://"+tree, "train", in, spec); err != nil || !IsLabelled(ds) || strings.Join(ds.Classes(), ",") != "7" {
		t.Errorf("ImageFolder tree through file://: %v, %v", ds, err)
	}
	os.WriteFile(filepath.Join(flat, "bad.png"), []byte("\x89PNG broken"), 0o644)
	ds, err := OpenDataset(flat, "train", in, spec)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted: a.png b.png bad.png c.png.
	if _, err := ds.Sample(2, make([]byte, in.Elems())); err == nil || !strings.Contains(err.Error(), "bad.png") {
		t.Errorf("corrupt sample: error %v, want one naming bad.png", err)
	}
	if _, err := OpenDataset(filepath.Join(flat, "*.gif"), "train", in, spec); err == nil || !strings.Contains(err.Error(), "no files match") {
		t.Errorf("no match: error %v", err)
	}
}

func TestFileSourceFramesCarryTheirFile(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "3", "a.png"), 2, 2, color.NRGBA{1, 2, 3, 255})
	writeImage(t, filepath.Join(dir, "7", "b.jpg"), 2, 2, color.NRGBA{1, 2, 3, 255})
	s, err := Open("file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	frames := readAll(t, s, 10)
	want := []string{filepath.Join(dir, "3", "a.png"), filepath.Join(dir, "7", "b.jpg")}
	if len(frames) != 2 || frames[0].File != want[0] || frames[1].File != want[1] {
		t.Errorf("frames' files %q %q, want %q", frames[0].File, frames[len(frames)-1].File, want)
	}
	var f Frame
	if err := ReadImageFile(want[1], &f); err != nil || f.File != want[1] || f.Label != -1 || f.Width != 2 || f.Format != RGB24 {
		t.Errorf("ReadImageFile: %+v, %v", f, err)
	}
}
