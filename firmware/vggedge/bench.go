package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/infer"
	"github.com/vggedge/vggedge/infer/kernels"
)

type benchLayer struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	Op       string  `json:"op"`
	MACs     int64   `json:"macs"`
	MedianMs float64 `json:"median_ms"`
	GMACs    float64 `json:"gmacs_per_s"`
}

type benchResult struct {
	Model        string            `json:"model"`
	Source       string            `json:"source"` // "file" or "random int8 weights"
	Board        string            `json:"board"`
	Kernels      string            `json:"kernels"`
	Threads      int               `json:"threads"`
	Runs         int               `json:"runs"`
	LoadMs       float64           `json:"load_ms"`
	FirstMs      float64           `json:"first_ms"`
	MedianMs     float64           `json:"median_ms"`
	P90Ms        float64           `json:"p90_ms"`
	MinMs        float64           `json:"min_ms"`
	GMACs        float64           `json:"gmacs_per_s"`
	MACs         int64             `json:"macs"`
	PeakRSSBytes int64             `json:"peak_rss_bytes"`
	Conditions   boards.Conditions `json:"conditions"`
	Layers       []benchLayer      `json:"layers"`
}

func runBench(args []string, stdout io.Writer) (int, error) {
	fs := newFlags("bench", stdout)
	var mf modelFlags
	mf.register(fs)
	threads := fs.Int("threads", runtime.NumCPU(), "worker threads of the Session")
	runs := fs.Int("runs", 10, "timed runs after the warm-up")
	warmup := fs.Int("warmup", 2, "untimed runs after the first")
	board := fs.String("board", "", "board id the profile is for (default: the board this runs on)")
	saveProfile := fs.String("save-profile", "", "write the measured throughput per layer kind to this file (for check --profile)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	if *threads < 1 || *threads > 256 || *runs < 1 || *warmup < 0 {
		return exitBadInput, errors.New("--threads must be in 1..256, --runs ≥ 1, --warmup ≥ 0")
	}
	var b *boards.Board
	var err error
	if *saveProfile != "" || *board != "" {
		if b, err = pickBoard(*board); err != nil {
			return exitBadInput, err
		}
	}
	res := benchResult{Threads: *threads, Runs: *runs, Kernels: kernels.Describe()}
	if b != nil {
		res.Board = b.ID
	}
	res.Conditions = boards.ReadConditions()

	t0 := time.Now()
	q, err := benchModel(&mf, &res)
	if err != nil {
		return exitBadInput, err
	}
	res.LoadMs = ms64(time.Since(t0))
	s, err := infer.NewSessionThreads(q, *threads)
	if err != nil {
		return exitBadInput, err
	}
	defer s.Close()
	arch, err := q.Architecture()
	if err != nil {
		return exitBadInput, err
	}
	cost, err := arch.Cost(infer.Int8)
	if err != nil {
		return exitBadInput, err
	}
	res.Model, res.MACs = q.Name, cost.MACs
	pix := make([]byte, q.Input.Elems())
	for i := range pix {
		pix[i] = byte(i * 131) // a fixed, non-constant picture
	}
	run := func(times []time.Duration) (time.Duration, error) {
		if err := s.SetPixels(pix); err != nil {
			return 0, err
		}
		t := time.Now()
		var err error
		if times != nil {
			_, err = s.RunTimed(times)
		} else {
			_, err = s.Run()
		}
		return time.Since(t), err
	}
	first, err := run(nil)
	if err != nil {
		return exitBadInput, err
	}
	res.FirstMs = ms64(first)
	for range *warmup {
		if _, err := run(nil); err != nil {
			return exitBadInput, err
		}
	}
	totals := make([]float64, *runs)
	steps := make([][]float64, s.Steps())
	times := make([]time.Duration, s.Steps())
	for r := range *runs {
		d, err := run(times)
		if err != nil {
			return exitBadInput, err
		}
		totals[r] = ms64(d)
		for i, t := range times {
			steps[i] = append(steps[i], ms64(t))
		}
	}
	res.Conditions.TempAfterC = boards.CPUTemp()
	res.MedianMs, res.P90Ms, res.MinMs = percentile(totals, 50), percentile(totals, 90), slices.Min(totals)
	res.GMACs = float64(res.MACs) / res.MedianMs / 1e6
	byName := map[string]infer.LayerCost{}
	for _, lc := range cost.Layers {
		byName[lc.Name] = lc
	}
	for i := range steps {
		l := q.Layers[s.StepLayer(i)]
		lc := byName[l.Name]
		bl := benchLayer{Name: l.Name, Kind: string(l.Kind), Op: lc.Op, MACs: lc.MACs, MedianMs: percentile(steps[i], 50)}
		if bl.MedianMs > 0 {
			bl.GMACs = float64(bl.MACs) / bl.MedianMs / 1e6
		}
		res.Layers = append(res.Layers, bl)
	}
	res.PeakRSSBytes = peakRSS()
	if *saveProfile != "" {
		p := profileOf(&res, b)
		if err := boards.SaveProfile(*saveProfile, p); err != nil {
			return exitBadInput, err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(res)
	}
	return exitOK, writeBenchText(stdout, &res, *saveProfile)
}

// benchModel is the int8 model to time: a model file, or an architecture
// with random int8 weights (as ncnn's benchncnn runs zero weights).
func benchModel(mf *modelFlags, res *benchResult) (*infer.QModel, error) {
	if mf.model != "" {
		f, err := openModel(mf.model)
		if err != nil {
			return nil, err
		}
		if f.Int8 == nil {
			return nil, fmt.Errorf("model %s has no int8 model to benchmark", mf.model)
		}
		res.Source = "file"
		return f.Int8, nil
	}
	m, err := mf.build()
	if err != nil {
		return nil, err
	}
	res.Source = "random int8 weights"
	return infer.RandomQModel(m, 1)
}

// profileOf turns per-layer medians into throughput per layer kind: the
// MACs of all layers of a kind over their summed time. Kinds the model
// lacks keep the board's seeded rate scaled by how the measured 3x3 rate
// compares with the seeded one.
func profileOf(res *benchResult, b *boards.Board) *boards.Profile {
	macs, ms := map[string]int64{}, map[string]float64{}
	for _, l := range res.Layers {
		if l.MACs > 0 {
			macs[l.Op] += l.MACs
			ms[l.Op] += l.MedianMs
		}
	}
	seed := b.Int8
	rate := func(op string, seeded float64) float64 {
		if ms[op] > 0 {
			return float64(macs[op]) / ms[op] / 1e6
		}
		if ms["conv3x3"] > 0 && seed.Conv3x3 > 0 {
			return seeded * (float64(macs["conv3x3"]) / ms["conv3x3"] / 1e6) / seed.Conv3x3
		}
		return seeded
	}
	p := &boards.Profile{Board: b.ID, Precision: "int8", Threads: res.Threads, Model: res.Model, MedianMs: res.MedianMs,
		Conditions: res.Conditions, Version: version}
	p.Throughput = boards.Throughput{Conv3x3: rate("conv3x3", seed.Conv3x3), Conv1x1: rate("conv1x1", seed.Conv1x1),
		Conv: rate("conv", seed.Conv), Linear: rate("linear", seed.Linear)}
	// Bandwidth is not fitted: pools are too small a share of the time to
	// measure it from, and a measured Linear rate already includes its
	// weight traffic.
	return p
}

func writeBenchText(w io.Writer, r *benchResult, profile string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s), int8, %d thread(s), kernels: %s\n", r.Model, r.Source, r.Threads, r.Kernels)
	fmt.Fprintf(&b, "load %.1f ms, first run %.1f ms, then %d runs: median %.1f ms, p90 %.1f ms, min %.1f ms (%.2f GMAC/s)\n",
		r.LoadMs, r.FirstMs, r.Runs, r.MedianMs, r.P90Ms, r.MinMs, r.GMACs)
	fmt.Fprintf(&b, "peak RSS %s\n", infer.Bytes(r.PeakRSSBytes))
	c := r.Conditions
	var conds []string
	if c.TempBeforeC > 0 {
		conds = append(conds, fmt.Sprintf("CPU %.1f°C → %.1f°C", c.TempBeforeC, c.TempAfterC))
	}
	if c.Throttled != "" {
		conds = append(conds, "throttled "+c.Throttled)
	}
	if c.Governor != "" {
		conds = append(conds, "governor "+c.Governor)
	}
	if c.CurFreqMHz > 0 {
		conds = append(conds, fmt.Sprintf("%d MHz", c.CurFreqMHz))
	}
	if len(conds) == 0 {
		conds = append(conds, "temperature, throttling and governor not exposed here")
	}
	fmt.Fprintf(&b, "conditions: %s\n\n", strings.Join(conds, ", "))
	tab := table{leftCols: 2}
	tab.add("layer", "kind", "MACs", "median ms", "GMAC/s")
	for _, l := range r.Layers {
		g := "-"
		if l.MACs > 0 {
			g = fmt.Sprintf("%.2f", l.GMACs)
		}
		tab.add(l.Name, l.Kind, dash(l.MACs), fmt.Sprintf("%.3f", l.MedianMs), g)
	}
	if err := tab.write(&b); err != nil {
		return err
	}
	if profile != "" {
		fmt.Fprintf(&b, "\nwrote profile %s for %s (use: vggedge check --profile %s)\n", profile, r.Board, profile)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile of xs (nearest rank).
func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// peakRSS is the process's peak resident set (VmHWM), 0 where /proc lacks it.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
