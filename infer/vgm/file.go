package vgm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"

	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/internal/atomicfile"
)

const (
	// FileMagic is the "format" value of a model file.
	FileMagic = "vggedge-model"
	// FileVersion is the format version this build writes and the newest it
	// reads.
	FileVersion = 1
	// MaxFileSize bounds what Load reads; VGG16 in float32 is 0.55 GB.
	MaxFileSize int64 = 4 << 30

	// The format's other limits (see doc.go).
	maxFileLayers = 4096
	maxFileLabels = 1 << 20
	maxNameLen    = 1024
)

// File is what a model file holds: a float model, an int8 model, or both (an
// int8 model with its float source). After decoding, both share Name, Input
// and Meta.
type File struct {
	Float *infer.Model
	Int8  *infer.QModel
}

// Name is the model's name, from whichever model is present.
func (f *File) Name() string {
	switch {
	case f == nil:
		return ""
	case f.Int8 != nil:
		return f.Int8.Name
	case f.Float != nil:
		return f.Float.Name
	}
	return ""
}

// Meta is the model's input spec, labels and provenance, from whichever
// model is present (the int8 model's when there are both).
func (f *File) Meta() infer.Meta {
	switch {
	case f == nil:
		return infer.Meta{}
	case f.Int8 != nil:
		return f.Int8.Meta
	case f.Float != nil:
		return f.Float.Meta
	}
	return infer.Meta{}
}

// ---------------------------------------------------------------- loading

// Load reads and decodes a model file. Files larger than MaxFileSize
// are refused before they are read.
func Load(path string) (*File, error) {
	fail := func(err error) (*File, error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the message
		}
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	fh, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fail(err)
	}
	if st.IsDir() {
		return fail(errors.New("is a directory"))
	}
	if st.Size() > MaxFileSize || st.Size() > math.MaxInt-bytes.MinRead { // the latter on 32-bit boards
		return fail(fmt.Errorf("%d bytes: larger than the %d bytes a model file may have", st.Size(), MaxFileSize))
	}
	// Size the buffer from Stat but read through a limit: the file may
	// grow, or Stat may not know its size (a pipe).
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + bytes.MinRead) // ReadFrom wants MinRead spare to see EOF without growing
	if _, err := buf.ReadFrom(io.LimitReader(fh, MaxFileSize+1)); err != nil {
		return fail(err)
	}
	if int64(buf.Len()) > MaxFileSize {
		return fail(fmt.Errorf("larger than the %d bytes a model file may have", MaxFileSize))
	}
	return Decode(buf.Bytes(), path)
}

// Decode decodes and validates a model file held in data; name is the
// file's name for error messages. Every error is one line naming the file,
// the layer and the field.
//
// The int8 tensors (weight, pad_value) of the result alias data instead of
// being copied, so the File keeps data alive and data must not be modified
// afterwards. Everything else is copied.
//
// data may be hostile: every length is checked against the bytes left
// before anything is allocated, so a file cannot make Decode allocate
// much more than its own size.
func Decode(data []byte, name string) (f *File, err error) {
	defer func() {
		// A last resort: the decoder checks before it indexes, and a
		// panic here is a bug to fix, but a bad file must not crash the
		// device.
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("load %s: malformed model file (decoder bug: %v)", name, p)
		}
	}()
	f, err = decodeFile(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return f, nil
}

// ---------------------------------------------------------------- saving

// Save writes f to path atomically (internal/atomicfile): it encodes into a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory, so path holds either the old file or the whole new
// one, and an error leaves the old file untouched and no temporary file
// behind. A new file gets mode 0644; a
// replaced file keeps its mode.
func Save(path string, f *File) error {
	err := atomicfile.Write(path, atomicfile.ModeOf(path, 0o644), func(w io.Writer) error { return encodeFile(w, f) })
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// Encode validates f and writes it in the model file format. When f has
// both models, they must have the same input, and the float model's name,
// spec and labels must be unset or the int8 model's; the file records the
// int8 model's name and meta.
func Encode(w io.Writer, f *File) error {
	if err := encodeFile(w, f); err != nil {
		return fmt.Errorf("encode model file: %w", err)
	}
	return nil
}
