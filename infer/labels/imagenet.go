package labels

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

// Class is one ImageNet-1k class.
type Class struct {
	Index    int
	WNID     string // WordNet id: "n02123045"
	Name     string // torchvision's name, the model's label: "tabby"
	Synonyms string // WordNet's synonyms, comma-separated: "tabby, tabby cat"
}

// ImageNetClasses is the number of ImageNet-1k classes.
const ImageNetClasses = 1000

//go:embed imagenet.tsv
var imagenetTSV string

// imagenet is imagenet.tsv parsed once; a malformed embedded file is a
// build mistake, caught by the package's tests and at start-up.
var imagenet, imagenetByWNID = mustParseImageNet(imagenetTSV)

func mustParseImageNet(src string) ([]Class, map[string]int) {
	cs, err := parseImageNet(src)
	if err != nil {
		panic("labels: embedded imagenet.tsv: " + err.Error())
	}
	by := make(map[string]int, len(cs))
	for _, c := range cs {
		by[c.WNID] = c.Index
	}
	return cs, by
}

// parseImageNet reads "index\twnid\tname\tsynonyms" lines ('#' lines are
// comments) and checks that the indices run 0..999 and the WordNet ids
// are well-formed and sorted (torchvision's order).
func parseImageNet(src string) ([]Class, error) {
	var cs []Class
	for n, line := range strings.Split(strings.TrimSuffix(src, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: %d fields, want 4 (index, wnid, name, synonyms)", n+1, len(f))
		}
		i, err := strconv.Atoi(f[0])
		if err != nil || i != len(cs) {
			return nil, fmt.Errorf("line %d: index %q, want %d", n+1, f[0], len(cs))
		}
		if !IsWNID(f[1]) || (i > 0 && f[1] <= cs[i-1].WNID) {
			return nil, fmt.Errorf("line %d: WordNet id %q: want n and 8 digits, after %s", n+1, f[1], cs[max(i-1, 0)].WNID)
		}
		if f[2] == "" || f[3] == "" {
			return nil, fmt.Errorf("line %d: empty name or synonyms", n+1)
		}
		cs = append(cs, Class{Index: i, WNID: f[1], Name: f[2], Synonyms: f[3]})
	}
	if len(cs) != ImageNetClasses {
		return nil, fmt.Errorf("%d classes, want %d", len(cs), ImageNetClasses)
	}
	return cs, nil
}

// ImageNet is the 1000 classes in torchvision's index order (a copy).
func ImageNet() []Class { return append([]Class(nil), imagenet...) }

// ImageNetNames is torchvision's names of the 1000 classes, the labels a
// model imported from torchvision's ImageNet weights gets.
func ImageNetNames() []string {
	ns := make([]string, len(imagenet))
	for i, c := range imagenet {
		ns[i] = c.Name
	}
	return ns
}

// ImageNetIndex is the index of the class with WordNet id wnid.
func ImageNetIndex(wnid string) (int, bool) {
	i, ok := imagenetByWNID[wnid]
	return i, ok
}

// IsWNID reports whether s has the form of a WordNet noun id: n and 8
// digits.
func IsWNID(s string) bool {
	if len(s) != 9 || s[0] != 'n' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// IsImageNet reports whether labels are ImageNet-1k's in torchvision's
// order: 1000 of them, each naming its class — torchvision's name, the
// whole synonym list, one synonym, or the WordNet id (with case and '_'
// ignored, so Keras' "golden_retriever" counts too).
func IsImageNet(labels []string) bool {
	if len(labels) != ImageNetClasses {
		return false
	}
	for i, l := range labels {
		if !namesClass(normalize(l), &imagenet[i]) {
			return false
		}
	}
	return true
}

func namesClass(n string, c *Class) bool {
	if n == normalize(c.Name) || n == normalize(c.Synonyms) || n == c.WNID {
		return true
	}
	for _, s := range strings.Split(c.Synonyms, ",") {
		if n == normalize(s) {
			return true
		}
	}
	return false
}
