package labels

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestImageNetFacts checks the embedded table against facts of the public
// sources (Caffe's synset_words.txt, Kaggle's LOC_synset_mapping.txt,
// torchvision's _IMAGENET_CATEGORIES).
func TestImageNetFacts(t *testing.T) {
	cs := ImageNet()
	if len(cs) != 1000 {
		t.Fatalf("%d classes, want 1000", len(cs))
	}
	for i := 1; i < len(cs); i++ {
		if cs[i].WNID <= cs[i-1].WNID {
			t.Fatalf("WordNet ids not sorted and unique at %d: %s after %s", i, cs[i].WNID, cs[i-1].WNID)
		}
	}
	names := ImageNetNames()
	seen := map[string]int{}
	for i, n := range names {
		if j, dup := seen[n]; dup {
			t.Errorf("name %q at %d and %d", n, j, i)
		}
		seen[n] = i
	}
	for _, tc := range []struct {
		i                    int
		wnid, name, synonyms string
	}{
		{0, "n01440764", "tench", "tench, Tinca tinca"},
		{1, "n01443537", "goldfish", "goldfish, Carassius auratus"},
		{134, "n02012849", "crane bird", "crane"},
		{207, "n02099601", "golden retriever", "golden retriever"},
		{281, "n02123045", "tabby", "tabby, tabby cat"},
		{282, "n02123159", "tiger cat", "tiger cat"},
		{517, "n03126707", "crane", "crane"},
		{638, "n03710637", "maillot", "maillot"},
		{639, "n03710721", "maillot tank suit", "maillot, tank suit"},
		{999, "n15075141", "toilet tissue", "toilet tissue, toilet paper, bathroom tissue"},
	} {
		c := cs[tc.i]
		if c.Index != tc.i || c.WNID != tc.wnid || c.Name != tc.name || c.Synonyms != tc.synonyms {
			t.Errorf("class %d = %+v, want %s %q %q", tc.i, c, tc.wnid, tc.name, tc.synonyms)
		}
		if i, ok := ImageNetIndex(tc.wnid); !ok || i != tc.i {
			t.Errorf("ImageNetIndex(%s) = %d, %v; want %d", tc.wnid, i, ok, tc.i)
		}
	}
	if _, ok := ImageNetIndex("n00000000"); ok {
		t.Error("ImageNetIndex found a WordNet id ImageNet-1k lacks")
	}
	if !IsImageNet(names) {
		t.Error("IsImageNet(ImageNetNames()) = false")
	}
}

// TestImageNetMatchesTorchvision compares the names with the torchvision
// installed here (Debian's python3-torchvision); it skips without one.
func TestImageNetMatchesTorchvision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	py := ""
	for _, c := range []string{os.Getenv("VGGEDGE_PYTHON"), "python3", "/usr/bin/python3"} {
		if p, err := exec.LookPath(c); c != "" && err == nil && exec.CommandContext(ctx, p, "-c", "import torchvision").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("no python3 that imports torchvision (set VGGEDGE_PYTHON to one)")
	}
	out, err := exec.CommandContext(ctx, py, "-c",
		"import json; from torchvision.models._meta import _IMAGENET_CATEGORIES as c; print(json.dumps(c))").Output()
	if err != nil {
		t.Fatalf("torchvision's _IMAGENET_CATEGORIES: %v", err)
	}
	var want []string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if got := ImageNetNames(); !slices.Equal(got, want) {
		t.Fatalf("names differ from torchvision's (%d vs %d)", len(got), len(want))
	}
}

func TestParseImageNetRejects(t *testing.T) {
	good := strings.SplitAfter(imagenetTSV, "\n")
	for _, tc := range []struct{ name, src, want string }{
		{"short", strings.Join(good[:500], ""), "classes, want 1000"},
		{"fields", strings.Replace(imagenetTSV, "\ttabby\t", "\ttabby ", 1), "fields, want 4"},
		{"unsorted", strings.Replace(imagenetTSV, "n01443537", "n01440000", 1), "WordNet id"},
		{"index", strings.Replace(imagenetTSV, "\n281\t", "\n282\t", 1), "index"},
	} {
		if _, err := parseImageNet(tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestFind(t *testing.T) {
	in := NewSet(ImageNetNames())
	if !in.ImageNet() {
		t.Fatal("ImageNet names not recognised")
	}
	user := NewSet([]string{"person", "tabby, tabby cat", "dog", "Golden Retriever"})
	if user.ImageNet() {
		t.Fatal("4 labels taken for ImageNet")
	}
	for _, tc := range []struct {
		set  *Set
		name string
		want []int
	}{
		{in, "tabby", []int{281}},
		{in, "Tabby", []int{281}},
		{in, "tabby cat", []int{281}},
		{in, "TABBY CAT", []int{281}},
		{in, " tabby  cat ", []int{281}},
		{in, "tabby, tabby cat", []int{281}},
		{in, "n02123045", []int{281}},
		{in, "golden_retriever", []int{207}},
		{in, "crane", []int{517}},            // the whole label wins over 134's synonym
		{in, "crane bird", []int{134}},       // torchvision's name
		{in, "maillot", []int{638}},          // whole label
		{in, "tank suit", []int{639}},        // a synonym
		{in, "grass snake", []int{55, 57}},   // a synonym of two classes
		{in, "toilet paper", []int{999}},     // a later synonym
		{in, "cat", nil},                     // no class is just "cat"
		{in, "person", nil},                  // nor a person
		{in, "", nil},                        //
		{user, "tabby cat", []int{1}},        // a part of a user's label
		{user, "TABBY", []int{1}},            //
		{user, "golden retriever", []int{3}}, // case
		{user, "n02123045", nil},             // WordNet ids only for ImageNet labels
		{user, "tabby, tabby cat", []int{1}}, // the whole label, comma and all
		{NewSet([]string{"0", "1", "10"}), "1", []int{1}},
	} {
		if got := tc.set.Find(tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("Find(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestResolve(t *testing.T) {
	in := NewSet(ImageNetNames())
	got, err := in.Resolve("--when", []string{"tabby cat", "Tabby", "golden retriever", "grass snake"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tabby", "golden retriever", "green snake", "garter snake"}; !slices.Equal(got, want) {
		t.Errorf("Resolve = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		set   *Set
		names []string
		want  []string
	}{
		{in, []string{"cat"}, []string{"--when cat: not a label of the model; close: tabby (tabby, tabby cat); tiger cat;", "(labels: tench, goldfish,", "(1000 in all))"}},
		{in, []string{"tabbby"}, []string{"close: tabby (tabby, tabby cat)"}},
		{in, []string{"tabby", ""}, []string{"--when: an empty label"}},
		{NewSet([]string{"0", "1"}), []string{"cat"}, []string{"--when cat: not a label of the model (labels: 0, 1)"}},
	} {
		_, err := tc.set.Resolve("--when", tc.names)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Resolve(%q): err %v, want %q", tc.names, err, w)
			}
		}
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	var idx strings.Builder
	idx.WriteString("{")
	var loc strings.Builder
	for i, c := range ImageNet() {
		if i > 0 {
			idx.WriteString(", ")
		}
		b, _ := json.Marshal([]string{c.WNID, strings.ReplaceAll(strings.Split(c.Synonyms, ",")[0], " ", "_")})
		idx.WriteString(`"` + strconv.Itoa(i) + `": ` + string(b))
		loc.WriteString(c.WNID + " " + c.Synonyms + "\n")
	}
	idx.WriteString("}")
	for _, tc := range []struct {
		name, src string
		want      []string // the first labels
		n         int
		imagenet  bool
		err       string
	}{
		{"lines.txt", "person\n\n dog \ntabby, tabby cat\n", []string{"person", "dog", "tabby, tabby cat"}, 3, false, ""},
		{"array.json", `["person", "tabby, tabby cat"]`, []string{"person", "tabby, tabby cat"}, 2, false, ""},
		{"imagenet_class_index.json", idx.String(), []string{"tench", "goldfish"}, 1000, true, ""},
		{"LOC_synset_mapping.txt", loc.String(), []string{"tench, Tinca tinca", "goldfish, Carassius auratus"}, 1000, true, ""},
		{"empty.txt", "\n\n", nil, 0, false, "no labels"},
		{"gap.json", `{"0": ["n01440764", "tench"], "2": ["n01443537", "goldfish"]}`, nil, 0, false, `key "2": want the indices 0..1`},
		{"bad.json", `{"0": 3}`, nil, 0, false, `key "0": want [WordNet id, name] or a name`},
		{"array-bad.json", `["a", 3]`, nil, 0, false, "want a JSON array of label strings"},
		{"blank.json", `["a", " "]`, nil, 0, false, "label 1 is empty"},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.src), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: err %v, want %q and the path", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(got) != tc.n || !slices.Equal(got[:len(tc.want)], tc.want) {
			t.Errorf("%s: %d labels starting %q, want %d starting %q", tc.name, len(got), got[:min(3, len(got))], tc.n, tc.want)
		}
		if IsImageNet(got) != tc.imagenet {
			t.Errorf("%s: IsImageNet = %v", tc.name, !tc.imagenet)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.txt")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file: err %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"tabby", "tabby", 0}, {"tabby", "tabbby", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
