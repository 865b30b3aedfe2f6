package labels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// maxFileBytes bounds a labels file: ImageNet's 1000 labels with all
// their synonyms are 46 KB.
const maxFileBytes = 4 << 20

// ReadFile reads a labels file (--labels), one of:
//   - text, one label per line (blank lines skipped); when every line is a
//     WordNet id and names ("n01440764 tench, Tinca tinca", Kaggle's
//     LOC_synset_mapping.txt or Caffe's synset_words.txt), the label is the
//     names;
//   - a JSON array of strings;
//   - a JSON object from index to [WordNet id, name] or to a name, with
//     every index from 0 (imagenet_class_index.json:
//     {"0": ["n01440764", "tench"], …}).
func ReadFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	if len(src) > maxFileBytes {
		return nil, fmt.Errorf("labels %s: larger than %d MiB; a labels file is one name a line", path, maxFileBytes>>20)
	}
	ls, err := Parse(src)
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	return ls, nil
}

// Parse is ReadFile on the file's bytes.
func Parse(src []byte) ([]string, error) {
	t := bytes.TrimSpace(src)
	if len(t) > 0 && (t[0] == '[' || t[0] == '{') {
		return parseJSON(t)
	}
	var ls []string
	wnids := true
	for _, line := range strings.Split(string(src), "\n") {
		if l := strings.TrimSpace(line); l != "" {
			ls = append(ls, l)
			id, rest, ok := strings.Cut(l, " ")
			wnids = wnids && ok && IsWNID(id) && strings.TrimSpace(rest) != ""
		}
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("no labels (want one a line)")
	}
	if wnids {
		for i, l := range ls {
			_, rest, _ := strings.Cut(l, " ")
			ls[i] = strings.TrimSpace(rest)
		}
	}
	return ls, nil
}

func parseJSON(src []byte) ([]string, error) {
	if src[0] == '[' {
		var ls []string
		if err := json.Unmarshal(src, &ls); err != nil {
			return nil, fmt.Errorf("want a JSON array of label strings: %w", err)
		}
		for i, l := range ls {
			if strings.TrimSpace(l) == "" {
				return nil, fmt.Errorf("label %d is empty", i)
			}
		}
		if len(ls) == 0 {
			return nil, fmt.Errorf("an empty JSON array")
		}
		return ls, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(src, &obj); err != nil {
		return nil, fmt.Errorf(`want a JSON object {"0": ["n01440764", "tench"], …}: %w`, err)
	}
	if len(obj) == 0 {
		return nil, fmt.Errorf("an empty JSON object")
	}
	ls := make([]string, len(obj)) // one per key: bounded by the bytes read
	for k, v := range obj {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(obj) || strconv.Itoa(i) != k {
			return nil, fmt.Errorf("key %q: want the indices 0..%d", k, len(obj)-1)
		}
		var pair []string
		var name string
		switch {
		case json.Unmarshal(v, &pair) == nil && len(pair) == 2:
			name = pair[1]
		case json.Unmarshal(v, &name) == nil:
		default:
			return nil, fmt.Errorf(`key %q: want [WordNet id, name] or a name, got %s`, k, abbrev(v))
		}
		if strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("key %q: an empty name", k)
		}
		ls[i] = name
	}
	return ls, nil
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
