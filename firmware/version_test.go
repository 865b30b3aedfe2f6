package main

import (
	"bytes"
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
