package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// A layer computed in row ranges (as a Session's threads split it) writes
// exactly what one whole call writes, with whichever kernel is dispatched.
func TestConv2dRowRanges(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for _, tt := range []struct{ c, h, w, o, k, stride, pad int }{
		{3, 17, 13, 5, 3, 1, 1}, {16, 14, 14, 24, 3, 1, 1}, {8, 9, 30, 16, 1, 1, 0}, {5, 12, 11, 7, 3, 2, 1}, {32, 28, 28, 8, 1, 2, 0},
	} {
		p, x := randConv(r, tt.c, tt.h, tt.w, tt.o, tt.k, tt.stride, tt.pad)
		if err := p.Check(false); err != nil {
			t.Fatal(err)
		}
		var s Scratch
		want := make([]int8, p.O*p.OH*p.OW)
		Conv2dInt8(p, x, want, &s)
		for _, parts := range []int{2, 3, p.OH} {
			got := make([]int8, len(want))
			for i := 0; i < parts; i++ {
				q := *p
				q.RowsBegin, q.RowsEnd = i*p.OH/parts, (i+1)*p.OH/parts
				if q.RowsBegin == q.RowsEnd {
					continue
				}
				if err := q.Check(false); err != nil {
					t.Fatal(err)
				}
				Conv2dInt8(&q, x, got, &s)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%+v in %d row ranges (%s kernel): differs from one call", tt, parts, kernelName())
			}
		}
		// A range call writes its rows and nothing else.
		q := *p
		q.RowsBegin, q.RowsEnd = 1, 2
		got := make([]int8, len(want))
		for i := range got {
			got[i] = 99
		}
		Conv2dInt8(&q, x, got, &s)
		for i, v := range got {
			row := i / p.OW % p.OH
			if row != 1 && v != 99 {
				t.Fatalf("%+v rows [1, 2): wrote output %d of row %d", tt, i, row)
			}
			if row == 1 && v != want[i] {
				t.Fatalf("%+v rows [1, 2): output %d = %d, want %d", tt, i, v, want[i])
			}
		}
	}
	p, _ := randConv(r, 3, 8, 8, 4, 3, 1, 1)
	for _, rows := range [][2]int{{-1, 2}, {3, 3}, {2, 9}} {
		p.RowsBegin, p.RowsEnd = rows[0], rows[1]
		if p.Check(false) == nil {
			t.Errorf("rows %v accepted", rows)
		}
	}
}
