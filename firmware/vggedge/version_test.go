package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// `vggedge version`, `--version`, `-version` and `-v` print one line
// with the version to stdout and exit 0.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}, {"-v"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != exitOK {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
		line := strings.TrimSpace(out.String())
		if !strings.HasPrefix(line, "vggedge ") || strings.Contains(line, "\n") || len(line) <= len("vggedge ") {
			t.Errorf("%v: printed %q", args, out.String())
		}
	}
}

// A missing flag is named alone; several are listed.
func TestRequireFlags(t *testing.T) {
	for _, tc := range []struct {
		pairs []string
		want  string
	}{
		{[]string{"--calib", "x", "--out", "y"}, ""},
		{[]string{"--calib", "x", "--out", ""}, "--out is required"},
		{[]string{"--calib", "", "--out", ""}, "--calib and --out are required"},
		{[]string{"--model", "", "--calib", "", "--out", ""}, "--model, --calib and --out are required"},
	} {
		err := requireFlags(tc.pairs...)
		if got := fmt.Sprint(err); (err == nil) != (tc.want == "") || (err != nil && got != tc.want) {
			t.Errorf("%v: %v, want %q", tc.pairs, err, tc.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"quantize", "--arch", "vgg11", "--calib", "x"}, &out, &errOut); code != exitBadInput || !strings.Contains(errOut.String(), "--out is required") || strings.Contains(errOut.String(), "--calib and") {
		t.Errorf("quantize without --out: exit %d, %q", code, errOut.String())
	}
}

// `vggedge boards` fits a 100-column terminal.
func TestBoardsFits100Columns(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"boards"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for i, line := range strings.Split(out.String(), "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("line %d is %d columns: %q", i+1, n, line)
		}
	}
}

// info --json and summary --json give the text's numbers as JSON.
func TestInfoSummaryJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"info", "--model", "digits", "--json"}, &out, &errOut); code != exitOK {
		t.Fatalf("info --json: exit %d: %s", code, errOut.String())
	}
	var info struct {
		Model      string
		Input      [3]int
		Labels     []string
		Provenance struct{ Calibration string }
		Cost       map[string]struct{ Params, MACs int64 }
		Int8Layers []struct{ Name string } `json:"int8_layers"`
	}
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out.String())
	}
	// The digits model: 67,786 params, 4,704,640 MACs (README).
	if info.Model != "digits" || info.Input != [3]int{1, 28, 28} || len(info.Labels) != 10 ||
		info.Cost["int8"].Params != 67786 || info.Cost["int8"].MACs != 4704640 ||
		info.Provenance.Calibration == "" || len(info.Int8Layers) == 0 {
		t.Errorf("info --json: %+v", info)
	}
	out.Reset()
	if code := run([]string{"summary", "--arch", "vgg16", "--json"}, &out, &errOut); code != exitOK {
		t.Fatalf("summary --json: exit %d: %s", code, errOut.String())
	}
	var sum struct {
		Arch   string
		Params int64
		MACs   int64
		Layers []struct {
			Name string
			MACs int64
		}
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("summary --json: %v", err)
	}
	// torchvision's VGG16: 138,357,544 params, 15,470,264,320 MACs.
	if sum.Arch != "vgg16" || sum.Params != 138357544 || sum.MACs != 15470264320 || sum.Layers[0].Name != "features.0" || sum.Layers[0].MACs != 86704128 {
		t.Errorf("summary --json: %+v", sum)
	}
}
