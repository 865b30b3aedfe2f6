package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "bench", "--model", "digits", "--runs", "3", "--threads", "2", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"median_ms", "p90_ms", "first_ms", "load_ms", "threads", "peak_rss_bytes", "layers"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	var res benchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Threads != 2 || res.MedianMs <= 0 || res.P90Ms < res.MedianMs || res.PeakRSSBytes <= 0 || res.MACs != 4_704_640 {
		t.Errorf("result %+v", res)
	}
	// digits has 5 convolutions, 2 max-pools and 2 Linear layers, each a step.
	if len(res.Layers) != 9 || res.Layers[0].Name != "features.0" || res.Layers[0].GMACs <= 0 {
		t.Errorf("layers %+v", res.Layers)
	}
}

func TestBenchProfileFeedsCheck(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "p.json")
	code, _, errOut := runCLI(t, "bench", "--arch", "vgg11", "--input", "3x32x32", "--runs", "2", "--board", "rpi4-4g", "--save-profile", prof)
	if code != exitOK {
		t.Fatalf("bench exit %d: %s", code, errOut)
	}
	_, j := checkJSONOf(t, "--arch", "vgg11", "--input", "3x32x32", "--profile", prof)
	if j.Board != "rpi4-4g" || j.LatencyErrorBand != 0.10 || !strings.Contains(j.EstimateNote, "measured by vggedge bench") {
		t.Errorf("check --profile: board %s band %g note %q", j.Board, j.LatencyErrorBand, j.EstimateNote)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"format": "vggedge-profile", "board": "rpi4-4g", "precision": "int8", "gmacs": {"conv3x3": -1}}`), 0o644)
	for _, args := range [][]string{
		{"check", "--profile", bad},
		{"check", "--profile", prof, "--board", "rpi5-8g"},
		{"check", "--profile", prof, "--precision", "fp32"},
		{"check", "--profile", filepath.Join(t.TempDir(), "none.json")},
		{"bench", "--model", "digits", "--runs", "0"},
	} {
		if code, _, errOut := runCLI(t, args...); code != exitBadInput || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
