package boards

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vggedge/vggedge/infer"
)

// RuntimeReserveBytes is memory vggedge needs besides weights and
// activations: the binary's text and data (~10 MiB static), the Go
// runtime's heap overhead and goroutine stacks, and per-worker tile
// scratch. It is a planning figure, deliberately generous.
const RuntimeReserveBytes = 32 << 20

// Budget is what a model must fit on a board.
type Budget struct {
	Precision infer.Precision
	// Latency is the longest acceptable inference time; 0 means none.
	// A frame-rate target is a latency of 1/fps.
	Latency time.Duration
	// MemBytes caps the memory vggedge may use; 0 means all the board has
	// available (RAM minus the OS reserve).
	MemBytes int64
	// CameraBytes is what the frame source holds besides the model: the
	// camera's kernel buffers, the loop's frame buffers and the conversion
	// buffer (the caller knows the source; boards does not).
	CameraBytes int64
}

// Report is the verdict of a budget check, with everything it was based on.
type Report struct {
	Model     *infer.Model
	Board     *Board
	Budget    Budget
	Cost      *infer.Cost
	Estimate  Estimate
	Available int64 // bytes vggedge may use
	// PeakMemory = Cost.WeightBytes + Cost.PeakActivationBytes +
	// RuntimeReserveBytes + Budget.CameraBytes.
	PeakMemory  int64
	Fits        bool
	Reasons     []string // why it does not fit, or what it fits with
	Suggestions []string // what would fit, when it does not
}

// MemFits and LatencyFits split the verdict.
func (r *Report) MemFits() bool { return r.PeakMemory <= r.Available }

func (r *Report) LatencyFits() bool {
	return r.Budget.Latency == 0 || r.Estimate.TotalMs <= ms(r.Budget.Latency)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Available is the memory a board leaves to vggedge under a budget.
func (b *Board) Available(budget Budget) int64 {
	avail := b.RAMBytes - b.OSReserveBytes
	if budget.MemBytes > 0 && budget.MemBytes < avail {
		avail = budget.MemBytes
	}
	return avail
}

// Check costs m at the budget's precision and compares it with the board:
// peak memory against the memory available, estimated latency against the
// latency budget. When it does not fit, Suggestions say what would.
func Check(m *infer.Model, b *Board, budget Budget) (*Report, error) {
	r, err := check(m, b, budget)
	if err != nil {
		return nil, err
	}
	if !r.Fits {
		r.Suggestions = suggest(r)
	}
	return r, nil
}

func check(m *infer.Model, b *Board, budget Budget) (*Report, error) {
	if budget.Precision == "" {
		budget.Precision = infer.Int8
	}
	if budget.Latency < 0 || budget.MemBytes < 0 || budget.CameraBytes < 0 {
		return nil, errors.New("latency, memory and camera budgets must not be negative")
	}
	c, err := m.Cost(budget.Precision)
	if err != nil {
		return nil, err
	}
	r := &Report{Model: m, Board: b, Budget: budget, Cost: c}
	r.Estimate = EstimateLatency(c, b)
	r.Available = b.Available(budget)
	r.PeakMemory = c.WeightBytes + c.PeakActivationBytes + RuntimeReserveBytes + budget.CameraBytes
	r.Fits = r.MemFits() && r.LatencyFits()

	memWhere := fmt.Sprintf("%s available on %s (%s RAM − %s OS reserve)", mib(r.Available), b.ID, mib(b.RAMBytes), mib(b.OSReserveBytes))
	if budget.MemBytes > 0 && budget.MemBytes < b.RAMBytes-b.OSReserveBytes {
		memWhere = fmt.Sprintf("%s budget (--mem)", mib(r.Available))
	}
	if r.MemFits() {
		r.Reasons = append(r.Reasons, fmt.Sprintf("memory: needs %s of %s", mib(r.PeakMemory), memWhere))
	} else {
		camera := ""
		if budget.CameraBytes > 0 {
			camera = " + camera buffers " + mib(budget.CameraBytes)
		}
		r.Reasons = append(r.Reasons, fmt.Sprintf("memory: needs %s, %s: %s over (weights %s + activations %s + runtime %s%s)",
			mib(r.PeakMemory), memWhere, mib(r.PeakMemory-r.Available), mib(c.WeightBytes), mib(c.PeakActivationBytes), mib(RuntimeReserveBytes), camera))
	}
	band := fmt.Sprintf("±%.0f%%", 100*r.Estimate.ErrorBand)
	switch {
	case budget.Latency == 0:
		r.Reasons = append(r.Reasons, fmt.Sprintf("latency: estimated %.0f ms (%s), no latency budget given", r.Estimate.TotalMs, band))
	case r.LatencyFits():
		r.Reasons = append(r.Reasons, fmt.Sprintf("latency: estimated %.0f ms (%s) ≤ %s budget", r.Estimate.TotalMs, band, budgetText(budget.Latency)))
	default:
		r.Reasons = append(r.Reasons, fmt.Sprintf("latency: estimated %.0f ms (%s) > %s budget", r.Estimate.TotalMs, band, budgetText(budget.Latency)))
	}
	return r, nil
}

func budgetText(d time.Duration) string {
	fps := 1 / d.Seconds()
	if math.Abs(fps-math.Round(fps)) < 1e-9 || fps < 100 {
		return fmt.Sprintf("%.0f ms (%.3g fps)", ms(d), fps)
	}
	return fmt.Sprintf("%.0f ms", ms(d))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// suggest looks for the nearest model that fits: a smaller square input,
// a 1x1 reduction before the classifier, int8 instead of fp32, or the
// smallest board of those known that takes the model as it is.
func suggest(r *Report) []string {
	var out []string
	m, budget := r.Model, r.Budget
	fits := func(mm *infer.Model, bud Budget) bool {
		rr, err := check(mm, r.Board, bud)
		return err == nil && rr.Fits
	}
	// Largest input (multiples of 8, down to 32) that fits; only if the
	// model accepts other sizes.
	in := m.Input
	side := min(in.H, in.W)
	for s := side - side%8; s >= 32; s -= 8 {
		if s == side {
			continue
		}
		mm, err := infer.WithInput(m, infer.Shape{C: in.C, H: s * in.H / side, W: s * in.W / side})
		if err == nil && fits(mm, budget) {
			out = append(out, fmt.Sprintf("input %v fits (the largest multiple of 8 that does)", mm.Input))
			break
		}
	}
	// Largest 1x1 reduction before the classifier that fits: memory and
	// time fall with the width, so search for the boundary. (A model with
	// trained weights cannot be reduced by architecture alone:
	// WithReduction refuses it.)
	if c := lastFeatureChannels(r); c > 1 {
		widthFits := func(w int) bool {
			mm, err := infer.WithReduction(m, w)
			return err == nil && fits(mm, budget)
		}
		if widthFits(1) {
			lo, hi := 1, c-1 // lo fits; the answer is in [lo, hi]
			for lo < hi {
				if mid := (lo + hi + 1) / 2; widthFits(mid) {
					lo = mid
				} else {
					hi = mid - 1
				}
			}
			out = append(out, fmt.Sprintf("a 1x1 reduction %d→%d before the classifier fits (the widest that does; vggedge reduce fits it from calibration data)", c, lo))
		}
	}
	if budget.Precision == infer.FP32 {
		b8 := budget
		b8.Precision = infer.Int8
		if fits(m, b8) {
			out = append(out, "int8 precision fits (--precision int8)")
		}
	}
	for _, b := range All() {
		if b.ID == r.Board.ID {
			continue
		}
		if rr, err := check(m, b, budget); err == nil && rr.Fits {
			out = append(out, fmt.Sprintf("board %s fits it as it is", b.ID))
			break
		}
	}
	if len(out) == 0 {
		out = append(out, "nothing tried fits: no smaller input, no 1x1 reduction before the classifier, no other board")
	}
	return out
}

func lastFeatureChannels(r *Report) int {
	c := 0
	for i, l := range r.Model.Layers {
		if l.Kind == infer.Conv2d {
			c = r.Cost.Layers[i].Out.C
		}
		if l.Kind == infer.Linear {
			break
		}
	}
	return c
}
