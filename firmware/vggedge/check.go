package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/models"
)

func runCheck(args []string, stdout io.Writer) (int, error) {
	fs := newFlags("check", stdout)
	var mf modelFlags
	mf.register(fs)
	board := fs.String("board", "", "board id (see vggedge boards); default: the board this runs on")
	precision := fs.String("precision", "int8", "int8 or fp32")
	latency := durationVar(fs, "latency", 0, "latency budget per inference, e.g. 250ms")
	fps := fs.Float64("fps", 0, "frame-rate budget (the same as --latency 1/fps)")
	mem := fs.String("mem", "", "memory budget for vggedge, e.g. 300MiB (default: the board's RAM minus its OS reserve)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	profile := fs.String("profile", "", "a profile measured by vggedge bench --save-profile, instead of the board's seeded throughput")
	cameraSize := fs.String("camera", "", "count a camera's frame buffers in memory: WxH, e.g. 640x480 (what vggedge run holds for it)")
	compare := fs.String("compare", "", "a second model (file, embedded name or architecture) to check side by side; exit 0 only when both fit")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}

	var budget boards.Budget
	var err error
	if budget.Precision, err = infer.ParsePrecision(*precision); err != nil {
		return exitBadInput, fmt.Errorf("--precision: %w", err)
	}
	switch {
	case *latency != 0 && *fps != 0:
		return exitBadInput, errors.New("give --latency or --fps, not both")
	case *latency < 0:
		return exitBadInput, fmt.Errorf("--latency %v: must be positive", *latency)
	case *fps < 0 || math.IsNaN(*fps) || math.IsInf(*fps, 0):
		return exitBadInput, fmt.Errorf("--fps %v: must be a positive number", *fps)
	case *fps > 0:
		budget.Latency = time.Duration(float64(time.Second) / *fps)
	default:
		budget.Latency = *latency
	}
	if *mem != "" {
		if budget.MemBytes, err = parseMemBudget(*mem); err != nil {
			return exitBadInput, fmt.Errorf("--mem: %w", err)
		}
	}
	if *cameraSize != "" {
		w, h, err := parseFrameSize(*cameraSize)
		if err != nil {
			return exitBadInput, fmt.Errorf("--camera: %w", err)
		}
		budget.CameraBytes = cameraBufferBytes(w, h)
	}
	var prof *boards.Profile
	if *profile != "" {
		if prof, err = boards.LoadProfile(*profile); err != nil {
			return exitBadInput, err
		}
		if *board == "" {
			*board = prof.Board
		}
		if prof.Precision != string(budget.Precision) {
			return exitBadInput, fmt.Errorf("--profile %s was measured at %s, the check is at %s", *profile, prof.Precision, budget.Precision)
		}
	}
	b, err := pickBoard(*board)
	if err != nil {
		return exitBadInput, err
	}
	if prof != nil {
		if b, err = b.WithProfile(prof); err != nil {
			return exitBadInput, fmt.Errorf("--profile %s: %w", *profile, err)
		}
	}
	m, err := mf.build()
	if err != nil {
		return exitBadInput, err
	}
	r, err := boards.Check(m, b, budget)
	if err != nil {
		return exitBadInput, err
	}
	if *compare != "" {
		m2, err := compareModel(*compare)
		if err != nil {
			return exitBadInput, fmt.Errorf("--compare: %w", err)
		}
		r2, err := boards.Check(m2, b, budget)
		if err != nil {
			return exitBadInput, fmt.Errorf("--compare %s: %w", *compare, err)
		}
		if *asJSON {
			err = writeCompareJSON(stdout, r, r2)
		} else {
			err = writeCompareText(stdout, r, r2)
		}
		if err != nil {
			return exitBadInput, err
		}
		if !r.Fits || !r2.Fits {
			return exitNotFit, nil
		}
		return exitOK, nil
	}
	if *asJSON {
		err = writeCheckJSON(stdout, r)
	} else {
		err = writeCheckText(stdout, r)
	}
	if err != nil {
		return exitBadInput, err
	}
	if !r.Fits {
		return exitNotFit, nil
	}
	return exitOK, nil
}

// pickBoard resolves --board, or detects the board this runs on.
func pickBoard(id string) (*boards.Board, error) {
	if id != "" {
		return boards.ByID(id)
	}
	d, err := boards.Detect()
	if err != nil {
		return nil, fmt.Errorf("no --board given and detection failed: %w", err)
	}
	if d.Board == nil {
		_, err := boards.ByID("")
		return nil, fmt.Errorf("no --board given and this machine is not a known board (%s): %w", d.Reason, err)
	}
	return d.Board, nil
}

type checkLayerJSON struct {
	Name            string  `json:"name"`
	Kind            string  `json:"kind"`
	OutShape        []int   `json:"out_shape"`
	Params          int64   `json:"params"`
	Weights         int64   `json:"weights"`
	MACs            int64   `json:"macs"`
	ActivationBytes int64   `json:"activation_bytes"`
	WeightBytes     int64   `json:"weight_bytes"`
	EstimatedMs     float64 `json:"estimated_ms"`
	Bound           string  `json:"bound"`
	// Role marks layers vggedge reduce inserted (reduce, low-rank, restore).
	Role string `json:"role,omitempty"`
}

type checkJSON struct {
	Arch                     string           `json:"arch"`
	Board                    string           `json:"board"`
	Input                    []int            `json:"input"`
	Precision                string           `json:"precision"`
	Params                   int64            `json:"params"`
	Weights                  int64            `json:"weights"`
	MACs                     int64            `json:"macs"`
	FLOPs                    int64            `json:"flops"`
	WeightBytes              int64            `json:"weight_bytes"`
	PeakActivationBytes      int64            `json:"peak_activation_bytes"`
	PeakActivationFusedBytes int64            `json:"peak_activation_fused_bytes"`
	RuntimeReserveBytes      int64            `json:"runtime_reserve_bytes"`
	CameraBufferBytes        int64            `json:"camera_buffer_bytes"`
	PeakMemoryBytes          int64            `json:"peak_memory_bytes"`
	AvailableBytes           int64            `json:"available_bytes"`
	EstimatedLatencyMs       float64          `json:"estimated_latency_ms"`
	LatencyErrorBand         float64          `json:"latency_error_band"`
	LatencyBudgetMs          *float64         `json:"latency_budget_ms"`
	EstimateNote             string           `json:"estimate_note"`
	Fits                     bool             `json:"fits"`
	MemoryFits               bool             `json:"memory_fits"`
	LatencyFits              bool             `json:"latency_fits"`
	Reasons                  []string         `json:"reasons"`
	Suggestions              []string         `json:"suggestions"`
	Layers                   []checkLayerJSON `json:"layers"`
}

// round3 keeps JSON identical across architectures: arm64 may fuse a
// multiply-add where amd64 does not, which moves the last bits.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func writeCheckJSON(w io.Writer, r *boards.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(checkReportJSON(r))
}

func checkReportJSON(r *boards.Report) checkJSON {
	c := r.Cost
	j := checkJSON{
		Arch: r.Model.Name, Board: r.Board.ID, Input: c.Input.Dims(), Precision: string(c.Precision),
		Params: c.Params, Weights: c.Weights, MACs: c.MACs, FLOPs: 2 * c.MACs,
		WeightBytes: c.WeightBytes, PeakActivationBytes: c.PeakActivationBytes,
		PeakActivationFusedBytes: c.PeakActivationFusedBytes, RuntimeReserveBytes: boards.RuntimeReserveBytes,
		CameraBufferBytes: r.Budget.CameraBytes, PeakMemoryBytes: r.PeakMemory, AvailableBytes: r.Available,
		EstimatedLatencyMs: round3(r.Estimate.TotalMs), LatencyErrorBand: r.Estimate.ErrorBand,
		EstimateNote: estimateNote(r), Fits: r.Fits, MemoryFits: r.MemFits(), LatencyFits: r.LatencyFits(),
		Reasons: r.Reasons, Suggestions: r.Suggestions,
	}
	if j.Suggestions == nil {
		j.Suggestions = []string{}
	}
	if r.Budget.Latency > 0 {
		v := round3(float64(r.Budget.Latency) / float64(time.Millisecond))
		j.LatencyBudgetMs = &v
	}
	for i, lc := range c.Layers {
		e := r.Estimate.Layers[i]
		j.Layers = append(j.Layers, checkLayerJSON{
			Name: lc.Name, Kind: string(lc.Kind), OutShape: lc.Out.Dims(), Params: lc.Params, Weights: lc.Weights,
			MACs: lc.MACs, ActivationBytes: lc.Out.Elems() * c.Precision.ElemBytes(), WeightBytes: lc.WeightBytes(c.Precision),
			EstimatedMs: round3(e.Ms), Bound: e.Bound, Role: string(r.Model.Layers[i].Role),
		})
	}
	return j
}

func estimateNote(r *boards.Report) string {
	if r.Estimate.Calibrated {
		return fmt.Sprintf("calibrated: %s; expect ±%.0f%%", r.Board.Source, 100*r.Estimate.ErrorBand)
	}
	return boards.UncalibratedNote
}

func writeCheckText(w io.Writer, r *boards.Report) error {
	c, b := r.Cost, r.Board
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s on %s (%s: %s, %d MHz), %s, input %v\n\n", r.Model.Name, b.ID, b.Name, b.CPU, b.MaxClockMHz, c.Precision, c.Input)
	tab := table{leftCols: 2}
	tab.add("layer", "kind", "output", "params", "MACs", "weight B", "activation B", "est ms")
	for i, lc := range c.Layers {
		e := r.Estimate.Layers[i]
		tab.add(lc.Name+roleMark(r.Model.Layers[i].Role), string(lc.Kind), lc.Out.String(), dash(lc.Params), dash(lc.MACs),
			dash(lc.WeightBytes(c.Precision)), infer.Group(lc.Out.Elems()*c.Precision.ElemBytes()), fmt.Sprintf("%.2f", e.Ms))
	}
	if err := tab.write(&sb); err != nil {
		return err
	}
	fmt.Fprintf(&sb, "\nparams   %s (kH·kW·Cin·Cout weights without bias: %s)\n", infer.Group(c.Params), infer.Group(c.Weights))
	fmt.Fprintf(&sb, "MACs     %s = %.3f GMACs (multiply-accumulates of conv and Linear layers; FLOPs ≈ 2·MACs = %.3f G)\n",
		infer.Group(c.MACs), float64(c.MACs)/1e9, 2*float64(c.MACs)/1e9)
	fmt.Fprintf(&sb, "memory   %s = weights %s + activations %s (two ping-pong buffers; %s with conv+pool fused) + runtime %s\n",
		mib(r.PeakMemory), mib(c.WeightBytes), mib(c.PeakActivationBytes), mib(c.PeakActivationFusedBytes), mib(boards.RuntimeReserveBytes))
	fmt.Fprintf(&sb, "         available %s (%s RAM − %s OS reserve", mib(r.Available), mib(b.RAMBytes), mib(b.OSReserveBytes))
	if r.Budget.MemBytes > 0 {
		fmt.Fprintf(&sb, ", --mem %s", mib(r.Budget.MemBytes))
	}
	sb.WriteString(")\n")
	fmt.Fprintf(&sb, "latency  estimated %.0f ms ±%.0f%% (%s)\n", r.Estimate.TotalMs, 100*r.Estimate.ErrorBand, estimateNote(r))
	verdict := "FITS"
	if !r.Fits {
		verdict = "DOES NOT FIT"
	}
	fmt.Fprintf(&sb, "\nverdict  %s %s\n", verdict, b.ID)
	for _, s := range r.Reasons {
		fmt.Fprintf(&sb, "  - %s\n", s)
	}
	if len(r.Suggestions) > 0 {
		sb.WriteString("would fit:\n")
		for _, s := range r.Suggestions {
			fmt.Fprintf(&sb, "  - %s\n", s)
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func dash(n int64) string {
	if n == 0 {
		return "-"
	}
	return infer.Group(n)
}

// kib is mib for sizes that may be small.
func kib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return mib(n)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// roleMark tags a layer vggedge reduce inserted.
func roleMark(role infer.Role) string {
	if role == "" {
		return ""
	}
	return " [" + string(role) + "]"
}

// compareModel is --compare's model: a model file or embedded model, else
// a built-in architecture or architecture file.
func compareModel(name string) (*infer.Model, error) {
	mf := modelFlags{model: name}
	if _, ok, _ := models.Open(name); !ok {
		if _, err := os.Stat(name); err != nil || strings.HasSuffix(strings.ToLower(name), ".json") {
			mf = modelFlags{arch: name}
		}
	}
	return mf.build()
}

// writeCompareText puts two checks side by side: the totals, the ratio of
// the second to the first, and each verdict with its reasons.
func writeCompareText(w io.Writer, a, b *boards.Report) error {
	var sb strings.Builder
	ca, cb := a.Cost, b.Cost
	fmt.Fprintf(&sb, "%s vs %s on %s (%s), %s\n\n", a.Model.Name, b.Model.Name, a.Board.ID, a.Board.Name, ca.Precision)
	ratio := func(x, y int64) string {
		if x == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", float64(y)/float64(x))
	}
	tab := table{leftCols: 1}
	tab.add("", a.Model.Name, b.Model.Name, "ratio")
	row := func(what string, x, y int64, format func(int64) string) {
		tab.add(what, format(x), format(y), ratio(x, y))
	}
	row("params", ca.Params, cb.Params, infer.Group)
	row("weights (no bias)", ca.Weights, cb.Weights, infer.Group)
	row("MACs", ca.MACs, cb.MACs, infer.Group)
	row("weight memory", ca.WeightBytes, cb.WeightBytes, kib)
	row("activations", ca.PeakActivationBytes, cb.PeakActivationBytes, kib)
	row("peak memory", a.PeakMemory, b.PeakMemory, mib)
	tab.add("available", mib(a.Available), mib(b.Available), "")
	tab.add("estimated latency", fmt.Sprintf("%.2f ms", a.Estimate.TotalMs), fmt.Sprintf("%.2f ms", b.Estimate.TotalMs),
		fmt.Sprintf("%.3f", b.Estimate.TotalMs/max(a.Estimate.TotalMs, 1e-9)))
	tab.add("layers inserted by reduce", fmt.Sprint(countRoles(a.Model)), fmt.Sprint(countRoles(b.Model)), "")
	verdict := func(r *boards.Report) string {
		if r.Fits {
			return "FITS"
		}
		return "DOES NOT FIT"
	}
	tab.add("verdict", verdict(a), verdict(b), "")
	if err := tab.write(&sb); err != nil {
		return err
	}
	for _, r := range []*boards.Report{a, b} {
		fmt.Fprintf(&sb, "\n%s: %s %s\n", r.Model.Name, verdict(r), r.Board.ID)
		for _, s := range r.Reasons {
			fmt.Fprintf(&sb, "  - %s\n", s)
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func countRoles(m *infer.Model) int {
	n := 0
	for _, l := range m.Layers {
		if l.Role != "" {
			n++
		}
	}
	return n
}

func writeCompareJSON(w io.Writer, a, b *boards.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Models []checkJSON `json:"models"`
		Fits   bool        `json:"fits"`
	}{[]checkJSON{checkReportJSON(a), checkReportJSON(b)}, a.Fits && b.Fits})
}

// cameraBufferBytes is what vggedge run holds for a W×H camera besides the
// model, counted at YUYV's 2 bytes per pixel (the larger of the raw
// formats a camera sends; MJPEG frames are smaller, their decoded planes
// no larger): the V4L2 source's 3 kernel buffers, the loop's 3 frame
// buffers (capture, pending, inference) and one RGB conversion buffer.
func cameraBufferBytes(w, h int) int64 {
	frame := int64(w) * int64(h)
	return (3+3)*2*frame + 3*frame
}
