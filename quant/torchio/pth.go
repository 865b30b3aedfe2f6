package torchio

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// torch.save output comes in two formats, both read here:
//
//   - zip (PyTorch ≥ 1.6): <archive>/data.pkl is the pickled object, in
//     which every storage is a persistent id ('storage', torch.FloatStorage,
//     key, location, numel) whose bytes are the record <archive>/data/<key>;
//     <archive>/byteorder says "little" or "big" (absent: little).
//   - legacy (torch.save(..., _use_new_zipfile_serialization=False), and
//     every file saved before 1.6 — torchvision's VGG weights among them):
//     pickles of the magic number, the protocol version (1001) and sys_info,
//     then the object (persistent ids ('storage', type, root_key, location,
//     numel, view_metadata)), then the sorted list of storage keys, then for
//     each key an 8-byte element count and the raw elements.
//
// The pickles are decoded by gopickle's unpickler (github.com/nlpodyssey/
// gopickle/pickle) with our own class and persistent-id hooks rather than
// by gopickle's pytorch.Load, which (v0.2.0) does not know
// torch._utils._rebuild_tensor — the function torchvision's 2017 VGG
// checkpoints (vgg16-397923af.pth) are pickled with — nor legacy storage
// views, allocates storages from unchecked sizes, panics on tar files,
// converts half-precision subnormals, ±Inf and NaN wrongly, and reads
// every storage whether it is used or not. Here every size is checked
// against the bytes in the file before anything is allocated, only the
// storages of the returned tensors are read, each straight into its
// float32 slice, and the result is cross-checked against pytorch.Load on
// its own fixtures in the tests.

// pthMaxPickle bounds data.pkl (and the legacy object pickle). A VGG
// state_dict pickles to ~5 KB, a 1000-tensor checkpoint with optimizer
// state to well under 1 MB; gopickle turns each byte into up to ~100 bytes
// of objects, so the bound is also a memory bound.
const pthMaxPickle = 8 << 20

// pthMaxDims bounds a tensor's rank (PyTorch's own limit is 64).
const pthMaxDims = 64

// pthStorageTypes maps torch's storage classes to element decoders.
var pthStorageTypes = map[string]*weightsDtype{
	"FloatStorage": dtF32, "HalfStorage": dtF16, "BFloat16Storage": dtBF16,
	"DoubleStorage": dtF64, "CharStorage": dtI8, "ByteStorage": dtU8,
	"BoolStorage": dtBool, "ShortStorage": dtI16, "IntStorage": dtI32,
	"LongStorage": dtI64,
}

// ReadPTH reads torch.save output — a state_dict (an OrderedDict or dict of
// tensors), a checkpoint dict holding one under "state_dict",
// "model_state_dict" or "model", or a single tensor (returned under the
// name "") — converting every tensor to float32. Non-contiguous tensors
// (any non-negative strides) are gathered into C order.
func ReadPTH(path string) (map[string]*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return readPTH(f, fi.Size(), path)
}

// readPTH decodes the size bytes of r; file names it in errors.
func readPTH(r io.ReaderAt, size int64, file string) (ts map[string]*Tensor, err error) {
	// gopickle is not hardened against every malformed pickle (a LONG1 of
	// length 0, or SETITEMS over an odd number of items, index out of
	// range); the scanner removes the allocation hazards, this turns what
	// is left into an error.
	defer func() {
		if p := recover(); p != nil {
			ts, err = nil, fmt.Errorf("%s: malformed pickle (%v)", file, p)
		}
	}()
	head := make([]byte, 512)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK")):
		ts, err = readPTHZip(r, size, file)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return nil, fmt.Errorf("%s: a tar archive: torch.save's pre-2017 format is not supported; load it in PyTorch and save it again", file)
	default:
		ts, err = readPTHLegacy(r, size, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ts, nil
}
