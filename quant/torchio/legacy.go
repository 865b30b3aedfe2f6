package torchio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// pthMagic is torch.save's legacy magic number, 0x1950a86a20f9469cfc6c.
const pthMagic = "1950a86a20f9469cfc6c"

// readPTHLegacy reads the legacy (non-zip) format in one sequential pass.
func readPTHLegacy(r io.ReaderAt, size int64, file string) (map[string]*Tensor, error) {
	cr := &countingReader{r: io.NewSectionReader(r, 0, size)}
	br := bufio.NewReaderSize(cr, int(min(size, 1<<20))) // small files, small buffer
	pos := func() int64 { return cr.n - int64(br.Buffered()) }

	magic, err := plainUnpickle(br, 64)
	if err != nil {
		return nil, fmt.Errorf("not torch.save output (neither a zip archive nor a legacy pickle): %w", err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != pthMagic {
		return nil, errors.New("not torch.save output: a pickle without torch's magic number (a plain pickle, or a numpy file?)")
	}
	version, err := plainUnpickle(br, 64)
	if err != nil {
		return nil, fmt.Errorf("protocol version: %w", err)
	}
	if v, ok := version.(int); !ok || v != 1001 {
		return nil, fmt.Errorf("protocol version %v, want 1001", version)
	}
	sysInfo, err := plainUnpickle(br, 1<<16)
	if err != nil {
		return nil, fmt.Errorf("sys_info: %w", err)
	}
	bigEndian := false
	if keys, vals, ok := pyDictItems(sysInfo); ok {
		for i, k := range keys {
			if k == "little_endian" {
				le, isBool := vals[i].(bool)
				if !isBool {
					return nil, fmt.Errorf("sys_info little_endian is %s", pyTypeName(vals[i]))
				}
				bigEndian = !le
			}
		}
	}
	p := &pthUnpickler{storages: map[string]*pthStorage{}, legacy: true}
	obj, err := p.unpickle(br, pthMaxPickle)
	if err != nil {
		return nil, fmt.Errorf("object pickle: %w", err)
	}
	rawKeys, err := plainUnpickle(br, pthMaxPickle)
	if err != nil {
		return nil, fmt.Errorf("storage key list: %w", err)
	}
	list, ok := rawKeys.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage key list is %s", pyTypeName(rawKeys))
	}
	var buf []byte
	return pthTensors(obj, func(needed []*pthStorage) error {
		// The storages follow in the order of the key list, each an
		// 8-byte element count and the elements: read the needed ones,
		// skip the others.
		for _, raw := range *list {
			key, ok := raw.(string)
			if !ok {
				return fmt.Errorf("storage key list holds %s", pyTypeName(raw))
			}
			st, ok := p.storages[key]
			if !ok {
				return fmt.Errorf("storage %q is listed but no tensor uses it", key)
			}
			if st.loaded {
				return fmt.Errorf("storage %q is listed twice", key)
			}
			var nb [8]byte
			if _, err := io.ReadFull(br, nb[:]); err != nil {
				return fmt.Errorf("storage %q: element count: %w", key, unexpected(err))
			}
			if bigEndian {
				swapElements(nb[:], 8)
			}
			n := int64(nb[0]) | int64(nb[1])<<8 | int64(nb[2])<<16 | int64(nb[3])<<24 |
				int64(nb[4])<<32 | int64(nb[5])<<40 | int64(nb[6])<<48 | int64(nb[7])<<56
			if n != st.numel {
				return fmt.Errorf("storage %q: %d elements in the file, %d in the pickle", key, n, st.numel)
			}
			left := size - pos()
			if n > left/int64(st.dt.size) {
				return fmt.Errorf("storage %q (%s[%d]): only %d bytes left in the file", key, st.class, n, left)
			}
			nbytes := n * int64(st.dt.size)
			if !st.needed {
				if _, err := io.CopyN(io.Discard, br, nbytes); err != nil {
					return fmt.Errorf("storage %q: %w", key, unexpected(err))
				}
				st.loaded = true
				continue
			}
			if n > maxTensorElems {
				return fmt.Errorf("storage %q: more than %d elements", key, maxTensorElems)
			}
			st.data = make([]float32, n)
			if err := readDecode(br, st.data, st.dt, bigEndian, &buf); err != nil {
				return fmt.Errorf("storage %q (%s[%d]): %w", key, st.class, n, unexpected(err))
			}
			st.loaded = true
		}
		for _, st := range needed {
			if !st.loaded {
				return fmt.Errorf("storage %q (%s[%d]) is used but missing from the storage list", st.key, st.class, st.numel)
			}
		}
		return nil
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
