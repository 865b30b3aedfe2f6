package vgm

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The format comment in doc.go lists every key of every record table, in
// the tables' order (which is the order Encode writes): the tables drive
// the decoder and the encoder, and this test holds the documentation to
// them.
func TestDocListsEveryKey(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	section := func(from, to string) string {
		t.Helper()
		_, rest, ok := strings.Cut(doc, from)
		if !ok {
			t.Fatalf("doc.go has no %q", from)
		}
		sec, _, ok := strings.Cut(rest, to)
		if !ok {
			t.Fatalf("doc.go has no %q after %q", to, from)
		}
		return sec
	}
	// inOrder checks that keys appear in text, as whole words (quoted
	// when quoted is set), each after the one before.
	inOrder := func(what, text string, keys []string, quoted bool) {
		t.Helper()
		pos := 0
		for _, k := range keys {
			pat := `\b` + regexp.QuoteMeta(k) + `\b`
			if quoted {
				pat = `"` + regexp.QuoteMeta(k) + `"`
			}
			loc := regexp.MustCompile(pat).FindStringIndex(text[pos:])
			if loc == nil {
				t.Errorf("%s: key %q is not documented (after the keys before it) in doc.go", what, k)
				continue
			}
			pos += loc[1]
		}
	}
	keys := func(n int, key func(int) string) []string {
		var ks []string
		for i := range n {
			ks = append(ks, key(i))
		}
		return ks
	}
	floatKeys := keys(len(floatLayerFields), func(i int) string { return floatLayerFields[i].key })
	int8Keys := keys(len(int8LayerFields), func(i int) string { return int8LayerFields[i].key })
	const shared = 10 // name, kind and the eight shape fields
	both := section("//\tboth:", "//\tfloat:")
	inOrder("both", both, floatKeys[:shared], false)
	inOrder("both", both, int8Keys[:shared], false)
	inOrder("float layer", section("//\tfloat:", "//\tint8:"), floatKeys[shared:], false)
	inOrder("int8 layer", section("//\tint8:", "//\n"), int8Keys[shared:], false)
	inOrder("spec", section(`"spec": {`, "},"), keys(len(specFields), func(i int) string { return specFields[i].key }), true)
	inOrder("provenance", section(`"provenance": {`, "},"), keys(len(provenanceFields), func(i int) string { return provenanceFields[i].key }), true)
	inOrder("float model", section(`"float": {`, "}"), keys(len(floatModelFields), func(i int) string { return floatModelFields[i].key }), true)
	inOrder("int8 model", section(`"int8":  {`, "}"), keys(len(int8ModelFields), func(i int) string { return int8ModelFields[i].key }), true)
	for i := range shared {
		if floatKeys[i] != int8Keys[i] {
			t.Errorf("shared field %d: float %q, int8 %q", i, floatKeys[i], int8Keys[i])
		}
	}
}
