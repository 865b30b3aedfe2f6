package torchio

import (
	"fmt"
)

// Tensor is one named tensor of a weight file, converted to float32
// whatever its stored dtype (integer and bool tensors too, so a state_dict's
// num_batches_tracked reads like any other entry). Data is in C (row-major)
// order; a scalar has an empty Shape and one value.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// maxTensorElems bounds the values of one tensor. 2^31-1 keeps every index
// an int on 32-bit ARM (as infer does); VGG's largest tensor has 102,760,448.
const maxTensorElems = 1<<31 - 1

// tensorElems returns the number of values of a tensor of this shape, or an
// error when a dimension is negative or the product exceeds maxTensorElems
// (checked per factor, so hostile shapes cannot overflow).
func tensorElems(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: negative dimension", shape)
		}
		if d > maxTensorElems {
			return 0, fmt.Errorf("shape %v: dimension larger than %d", shape, maxTensorElems)
		}
		n *= d // both factors ≤ 2^31-1: no int64 overflow
		if n > maxTensorElems {
			return 0, fmt.Errorf("shape %v: more than %d values", shape, maxTensorElems)
		}
	}
	return n, nil
}

func intShape(s []int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}
