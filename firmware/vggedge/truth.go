package main

import "strings"

// truthIndex maps class names (an ImageFolder tree's sub-folders, a
// source's Classes) to the model's output indices by name: an exact match
// first, else one ignoring case; -1 for a name that is none of the
// model's labels. It is the one place where eval, run --source file://DIR
// and classify turn a folder into ground truth.
func truthIndex(classes, labels []string) []int {
	idx := make([]int, len(classes))
	for i, c := range classes {
		idx[i] = -1
		for j, l := range labels {
			if l == c {
				idx[i] = j
				break
			}
			if idx[i] < 0 && strings.EqualFold(l, c) {
				idx[i] = j
			}
		}
	}
	return idx
}
