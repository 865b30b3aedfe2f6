package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/vggedge/vggedge/boards"
)

func runBoards(args []string, stdout io.Writer) (int, error) {
	fs := newFlags("boards", stdout)
	asJSON := fs.Bool("json", false, "print the profiles as JSON")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	all := boards.All()
	d, derr := boards.Detect()
	if *asJSON {
		out := struct {
			Boards   []*boards.Board `json:"boards"`
			Detected string          `json:"detected"`
		}{Boards: all}
		if derr == nil && d.Board != nil {
			out.Detected = d.Board.ID
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(out)
	}
	// Under 100 columns: the boards' full names are in --json and in
	// check's header; builds are GOARCH (GOARM) of linux targets.
	tab := table{leftCols: 2}
	tab.add("id", "CPU", "MHz", "RAM MiB", "free MiB", "features", "int8", "fp32", "builds")
	for _, b := range all {
		id := b.ID
		if derr == nil && d.Board != nil && d.Board.ID == b.ID {
			id += " *"
		}
		tab.add(id, b.CPU, fmt.Sprint(b.MaxClockMHz), fmt.Sprint(b.RAMBytes>>20), fmt.Sprint((b.RAMBytes-b.OSReserveBytes)>>20),
			features(b.Features), fmt.Sprintf("%.0f", b.Int8.Conv3x3), fmt.Sprintf("%.0f", b.FP32.Conv3x3), shortTargets(b.Targets))
	}
	if err := tab.write(stdout); err != nil {
		return exitBadInput, err
	}
	switch {
	case derr != nil:
		fmt.Fprintf(stdout, "\nthis machine: detection failed: %v\n", derr)
	case d.Board != nil:
		fmt.Fprintf(stdout, "\nthis machine (*):\n%s\n", indent(d.String()))
	default:
		fmt.Fprintf(stdout, "\nthis machine is not a known board:\n%s\n", indent(d.String()))
	}
	fmt.Fprintln(stdout, "free: RAM less the OS reserve. int8, fp32: all-core 3x3 conv GMAC/s, estimates seeded from")
	fmt.Fprintln(stdout, "published ncnn VGG16 figures (boards/SOURCES.md). vggedge boards --json has every field.")
	return exitOK, nil
}

func features(f boards.Features) string {
	var fs []string
	for _, x := range []struct {
		on   bool
		name string
	}{{f.NEON, "neon"}, {f.DotProd, "dotprod"}, {f.I8MM, "i8mm"}, {f.AVX2, "avx2"}, {f.AVX512VNNI, "avx512vnni"}} {
		if x.on {
			fs = append(fs, x.name)
		}
	}
	if len(fs) == 0 {
		return "-"
	}
	return strings.Join(fs, ",")
}

// shortTargets is targets without "linux/" (every board is Linux).
func shortTargets(ts []boards.Target) string {
	return strings.ReplaceAll(targets(ts), "linux/", "")
}

func targets(ts []boards.Target) string {
	var s []string
	for _, t := range ts {
		v := t.GOOS + "/" + t.GOARCH
		if t.GOARM != "" {
			v += "v" + t.GOARM
		}
		s = append(s, v)
	}
	return strings.Join(s, " ")
}

// indent indents s by two spaces, wrapping lines at 100 columns under
// their "key:" label.
func indent(s string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		line = "  " + line
		// Continuation lines start where the value after "key:" does.
		hang := strings.Repeat(" ", len(line)-len(strings.TrimLeft(line, " ")))
		if k := strings.Index(line, ": "); k > 0 && k < 20 {
			value := line[k+1:]
			hang = strings.Repeat(" ", k+1+len(value)-len(strings.TrimLeft(value, " ")))
		}
		for len(line) > 100 {
			cut := strings.LastIndex(line[:100], " ")
			if cut <= len(hang) {
				break
			}
			b.WriteString(line[:cut])
			b.WriteByte('\n')
			line = hang + line[cut+1:]
		}
		b.WriteString(line)
	}
	return b.String()
}
