package torchio

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// readPTHZip reads the zip format.
func readPTHZip(r io.ReaderAt, size int64, file string) (map[string]*Tensor, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("reading the zip archive: %w", err)
	}
	records := make(map[string]*zip.File, len(zr.File))
	var prefixes []string
	for _, f := range zr.File {
		records[f.Name] = f
		if dir, ok := strings.CutSuffix(f.Name, "/data.pkl"); ok && dir != "" && !strings.Contains(dir, "/") {
			prefixes = append(prefixes, dir+"/")
		}
	}
	if len(prefixes) != 1 {
		if len(prefixes) == 0 {
			return nil, errors.New("a zip archive without <archive>/data.pkl: not torch.save output")
		}
		sort.Strings(prefixes)
		return nil, fmt.Errorf("a zip archive with %d data.pkl records (%s): not torch.save output", len(prefixes), strings.Join(prefixes, ", "))
	}
	prefix := prefixes[0]
	if _, ok := records[prefix+"constants.pkl"]; ok {
		return nil, errors.New("a TorchScript archive (torch.jit.save): save model.state_dict() with torch.save instead")
	}
	bigEndian := false
	if bo, ok := records[prefix+"byteorder"]; ok {
		b, err := readSmallRecord(bo, 16)
		if err != nil {
			return nil, err
		}
		switch string(b) {
		case "little":
		case "big":
			bigEndian = true
		default:
			return nil, fmt.Errorf("%sbyteorder is %q, want \"little\" or \"big\"", prefix, b)
		}
	}
	pkl, err := readSmallRecord(records[prefix+"data.pkl"], pthMaxPickle)
	if err != nil {
		return nil, err
	}
	p := &pthUnpickler{storages: map[string]*pthStorage{}}
	obj, err := p.unpickle(bufio.NewReader(bytes.NewReader(pkl)), len(pkl))
	if err != nil {
		return nil, fmt.Errorf("%sdata.pkl: %w", prefix, err)
	}
	var buf []byte
	return pthTensors(obj, func(needed []*pthStorage) error {
		for _, st := range needed {
			name := prefix + "data/" + st.key
			rec, ok := records[name]
			if !ok {
				return fmt.Errorf("storage %q (%s[%d]): no record %s", st.key, st.class, st.numel, name)
			}
			if err := loadZipStorage(rec, st, size, bigEndian, &buf); err != nil {
				return fmt.Errorf("storage %s (%s[%d]): %w", name, st.class, st.numel, err)
			}
		}
		return nil
	})
}

// zipMaxRatio bounds a deflated record's expansion (deflate cannot exceed
// ~1032:1), so a forged uncompressed size cannot make us allocate what the
// file cannot hold. torch.save stores records uncompressed.
const zipMaxRatio = 1100

func checkRecordSize(f *zip.File, fileSize int64) error {
	switch f.Method {
	case zip.Store:
		if f.UncompressedSize64 > uint64(fileSize) {
			return fmt.Errorf("record %s claims %d bytes, more than the whole file", f.Name, f.UncompressedSize64)
		}
	case zip.Deflate:
		if f.CompressedSize64 > uint64(fileSize) || f.UncompressedSize64/zipMaxRatio > f.CompressedSize64 {
			return fmt.Errorf("record %s claims %d bytes from %d compressed", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	default:
		return fmt.Errorf("record %s: compression method %d not supported", f.Name, f.Method)
	}
	return nil
}

func readSmallRecord(f *zip.File, max int) ([]byte, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("record %s is %d bytes, more than the %d expected", f.Name, f.UncompressedSize64, max)
	}
	if f.Method != zip.Store && f.Method != zip.Deflate {
		return nil, fmt.Errorf("record %s: compression method %d not supported", f.Name, f.Method)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	return b, nil
}

// loadZipStorage reads a storage record into st.data and checks the
// record's CRC (reading to EOF is what makes archive/zip verify it).
func loadZipStorage(rec *zip.File, st *pthStorage, fileSize int64, bigEndian bool, buf *[]byte) error {
	if err := checkRecordSize(rec, fileSize); err != nil {
		return err
	}
	// numel ≤ 2^63/8 is not guaranteed by the pickle: divide, not multiply.
	if rec.UncompressedSize64%uint64(st.dt.size) != 0 || rec.UncompressedSize64/uint64(st.dt.size) != uint64(st.numel) {
		return fmt.Errorf("record holds %d bytes, want %d elements of %d bytes", rec.UncompressedSize64, st.numel, st.dt.size)
	}
	if st.numel > maxTensorElems {
		return fmt.Errorf("more than %d elements", maxTensorElems)
	}
	rc, err := rec.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	st.data = make([]float32, st.numel)
	if err := readDecode(rc, st.data, st.dt, bigEndian, buf); err != nil {
		return err
	}
	var one [1]byte
	if n, err := rc.Read(one[:]); n != 0 || err != io.EOF {
		if err == nil || n != 0 {
			err = errors.New("record longer than its storage")
		}
		return err
	}
	st.loaded = true
	return nil
}
