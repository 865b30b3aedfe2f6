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
	tab := table{leftCols: 3}
	tab.add("id", "board", "CPU", "MHz", "RAM", "available", "features", "int8 conv3x3", "fp32 conv3x3", "builds")
	for _, b := range all {
		id := b.ID
		if derr == nil && d.Board != nil && d.Board.ID == b.ID {
			id += " *"
		}
		tab.add(id, b.Name, b.CPU, fmt.Sprint(b.MaxClockMHz), mib(b.RAMBytes), mib(b.RAMBytes-b.OSReserveBytes),
			features(b.Features), fmt.Sprintf("%.0f GMAC/s", b.Int8.Conv3x3), fmt.Sprintf("%.0f GMAC/s", b.FP32.Conv3x3), targets(b.Targets))
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
	fmt.Fprintln(stdout, "throughputs are all-core estimates seeded from published ncnn VGG16 figures (see boards/profiles.go)")
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

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
