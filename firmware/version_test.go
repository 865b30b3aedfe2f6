package main

import (
	"bytes"
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
