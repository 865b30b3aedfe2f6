package main

import labelset "github.com/vggedge/vggedge/infer/labels"

// truthIndex maps class names (an ImageFolder tree's sub-folders, a
// source's Classes) to the model's output indices as --when names labels
// (labels.Set.Find: the whole label or a comma-separated part of it, any
// case; for ImageNet's labels a synonym or the WordNet id); -1 for a name
// that is none of the model's labels, or more than one. It is the one
// place where run --source file://DIR and classify turn a folder into
// ground truth; eval's classIndex applies the same rule and refuses such a
// folder instead.
func truthIndex(classes, model []string) []int {
	set := labelset.NewSet(model)
	idx := make([]int, len(classes))
	for i, c := range classes {
		idx[i] = -1
		if js := set.Find(c); len(js) == 1 {
			idx[i] = js[0]
		}
	}
	return idx
}
