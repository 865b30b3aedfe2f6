package torchio

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Weight-file formats Load recognises.
const (
	formatUnknown = iota
	formatSafetensors
	formatPTH
)

// sniffWeights decides a file's format from its first bytes (and size):
// extensions lie (".bin" is used for both), contents do not.
func sniffWeights(head []byte, size int64) int {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return formatPTH // torch.save's zip format
	case len(head) >= 9 && binary.LittleEndian.Uint64(head) <= uint64(size-8) &&
		bytes.HasPrefix(bytes.TrimLeft(head[8:], " \t\r\n"), []byte("{")):
		// The JSON header may be led by whitespace (writers pad it to
		// align the data).
		return formatSafetensors
	case len(head) > 0 && (head[0] == 0x80 || head[0] == 0x8a || head[0] == 'L'):
		// A pickle: torch.save's legacy format starts with the magic
		// number as a pickled long (PROTO n; LONG1; or text LONG at
		// protocol 0/1).
		return formatPTH
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return formatPTH // the pre-2017 tar format; ReadPTH explains
	}
	return formatUnknown
}

// Load reads a float weight file — safetensors, or torch.save output (zip
// or legacy) — recognising the format from its content rather than its
// extension, and returns its tensors by name. It also returns the SHA-256
// of the file (hex), the model file's provenance record.
func Load(path string) (map[string]*Tensor, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s: not a regular file", path)
	}
	size := fi.Size()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	format := sniffWeights(head[:n], size)
	if format == formatUnknown {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".safetensors":
			format = formatSafetensors
		case ".pth", ".pt", ".bin", ".ckpt", ".tar":
			format = formatPTH
		default:
			return nil, "", fmt.Errorf("%s: neither a safetensors file nor torch.save output (a zip or pickle)", path)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	h := sha256.New()
	var ts map[string]*Tensor
	switch format {
	case formatSafetensors:
		// One sequential pass both hashes and decodes.
		ts, err = readSafetensors(io.TeeReader(f, h), size, path)
		if err == nil {
			// Hash anything the decoder did not need to read (nothing,
			// for a valid file, which ends where its last tensor does).
			if _, err = io.Copy(h, f); err != nil {
				err = fmt.Errorf("%s: %w", path, err)
			}
		}
	default:
		// The zip reader seeks, so hash in a pass of its own (the file
		// is in the page cache afterwards).
		if _, err = io.Copy(h, f); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		ts, err = readPTH(f, size, path)
	}
	if err != nil {
		return nil, "", err
	}
	return ts, hex.EncodeToString(h.Sum(nil)), nil
}
