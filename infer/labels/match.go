package labels

import (
	"fmt"
	"slices"
	"strings"
)

// Set is a model's labels, prepared for finding them by the names a user
// gives. Building one and resolving names allocate; it is meant for
// checking flags, never for the per-frame path.
type Set struct {
	labels   []string
	whole    []string   // each label, normalized
	names    [][]string // each label's names, normalized: its parts, ImageNet's synonyms and WordNet id
	imagenet bool
}

// NewSet prepares labels (the model's, in output order) for matching.
func NewSet(labels []string) *Set {
	s := &Set{labels: labels, whole: make([]string, len(labels)), names: make([][]string, len(labels)), imagenet: IsImageNet(labels)}
	for i, l := range labels {
		s.whole[i] = normalize(l)
		ns := []string{s.whole[i]}
		for _, p := range strings.Split(l, ",") {
			ns = appendName(ns, normalize(p))
		}
		if s.imagenet {
			c := &imagenet[i]
			ns = appendName(ns, normalize(c.Name))
			ns = appendName(ns, normalize(c.Synonyms))
			for _, p := range strings.Split(c.Synonyms, ",") {
				ns = appendName(ns, normalize(p))
			}
			ns = appendName(ns, c.WNID)
		}
		s.names[i] = ns
	}
	return s
}

func appendName(ns []string, n string) []string {
	if n == "" || slices.Contains(ns, n) {
		return ns
	}
	return append(ns, n)
}

// ImageNet reports whether the set's labels are ImageNet-1k's (so WordNet
// ids and synonyms find them).
func (s *Set) ImageNet() bool { return s.imagenet }

// Find is the indices of the labels name matches, in label order; nil for
// none. A name equal to a whole label finds only such labels.
func (s *Set) Find(name string) []int {
	n := normalize(name)
	if n == "" {
		return nil
	}
	var exact, some []int
	for i := range s.labels {
		if s.whole[i] == n {
			exact = append(exact, i)
		} else if slices.Contains(s.names[i], n) {
			some = append(some, i)
		}
	}
	if exact != nil {
		return exact
	}
	return some
}

// Resolve turns the names given with flag into the model's labels they
// find, each label once, in the order the names were given. A name that
// finds no label is an error that names the flag and the name, suggests
// close labels and shows the first few.
func (s *Set) Resolve(flag string, names []string) ([]string, error) {
	var out []string
	for _, name := range names {
		if strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("%s: an empty label in the list", flag)
		}
		is := s.Find(name)
		if is == nil {
			msg := fmt.Sprintf("%s %s: not a label of the model", flag, name)
			if close := s.Suggest(name, 8); len(close) > 0 {
				msg += "; close: " + strings.Join(close, "; ")
			}
			return nil, fmt.Errorf("%s (labels: %s)", msg, List(s.labels))
		}
		for _, i := range is {
			if !slices.Contains(out, s.labels[i]) {
				out = append(out, s.labels[i])
			}
		}
	}
	return out, nil
}

// Suggest lists up to most labels close to name: those with a name that
// holds it as a word ("cat": "tiger cat"), else as a part of a word, else
// those with a name at most a few typing mistakes away. An ImageNet label
// is shown with its synonyms when they say more.
func (s *Set) Suggest(name string, most int) []string {
	n := normalize(name)
	if n == "" {
		return nil
	}
	word := " " + n + " "
	limit := max(1, len(n)/4)
	tiers := []func(x string) bool{
		func(x string) bool { return strings.Contains(" "+strings.ReplaceAll(x, ",", " ")+" ", word) },
		func(x string) bool { return strings.Contains(x, n) },
		func(x string) bool { return editDistance(x, n) <= limit },
	}
	var is []int
	for _, near := range tiers {
		for i, ns := range s.names {
			if slices.ContainsFunc(ns, near) {
				is = append(is, i)
			}
		}
		if is != nil {
			break
		}
	}
	var out []string
	for _, i := range is {
		if len(out) == most {
			out = append(out, "…")
			break
		}
		out = append(out, s.describe(i))
	}
	return out
}

func (s *Set) describe(i int) string {
	l := s.labels[i]
	if s.imagenet && imagenet[i].Synonyms != l {
		return fmt.Sprintf("%s (%s)", l, imagenet[i].Synonyms)
	}
	return l
}

// List shows the first few labels for an error message.
func List(labels []string) string {
	if len(labels) > 12 {
		return strings.Join(labels[:12], ", ") + fmt.Sprintf(", … (%d in all)", len(labels))
	}
	return strings.Join(labels, ", ")
}

// normalize is how names compare: lower case, '_' as a space, runs of
// spaces as one, no space at either end.
func normalize(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(strings.ReplaceAll(s, "_", " "))), " ")
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
