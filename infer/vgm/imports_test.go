package vgm

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// imports lists the imports of dir's non-test Go files, read from the
// source so the test needs no go toolchain (it also runs under qemu).
func imports(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	out := map[string]string{} // import path → a file importing it
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range af.Imports {
			p, _ := strconv.Unquote(s.Path.Value)
			out[p] = filepath.Base(f)
		}
	}
	return out
}

// TestImportRules holds the rules of the package docs: infer (and the
// kernels it imports) does not import msgpack or vgm, and vgm imports only
// the standard library, infer, internal/atomicfile and msgpack.
func TestImportRules(t *testing.T) {
	for _, dir := range []string{"..", filepath.Join("..", "kernels")} {
		for p, f := range imports(t, dir) {
			if strings.Contains(p, "msgpack") || p == "github.com/vggedge/vggedge/infer/vgm" {
				t.Errorf("%s imports %s: infer must not import the model file or msgpack", filepath.Join(dir, f), p)
			}
		}
	}
	allowed := []string{"github.com/vggedge/vggedge/infer", "github.com/vggedge/vggedge/internal/atomicfile",
		"github.com/vmihailenco/msgpack/v5", "github.com/vmihailenco/msgpack/v5/msgpcode"}
	for p, f := range imports(t, ".") {
		std := !strings.Contains(strings.Split(p, "/")[0], ".")
		if !std && !slices.Contains(allowed, p) {
			t.Errorf("%s imports %s: vgm may import only the standard library and %v", f, p, allowed)
		}
	}
}
