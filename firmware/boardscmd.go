package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tboard\tCPU\tMHz\tRAM\tavailable\tfeatures\tint8 conv3x3\tfp32 conv3x3\tbuilds")
	for _, b := range all {
		mark := ""
		if derr == nil && d.Board != nil && d.Board.ID == b.ID {
			mark = " *"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.0f GMAC/s\t%.0f GMAC/s\t%s\n",
			b.ID, mark, b.Name, b.CPU, b.MaxClockMHz, mib(b.RAMBytes), mib(b.RAMBytes-b.OSReserveBytes),
			features(b.Features), b.Int8.Conv3x3, b.FP32.Conv3x3, targets(b.Targets))
	}
	if err := tw.Flush(); err != nil {
		return exitBadInput, err
	}
	switch {
	case derr != nil:
		fmt.Fprintf(stdout, "\nthis machine: detection failed: %v\n", derr)
	case d.Board != nil:
		fmt.Fprintf(stdout, "\n* this machine: %s\n", d)
	default:
		fmt.Fprintf(stdout, "\nthis machine: not a known board (%s)\n", d)
	}
	fmt.Fprintln(stdout, "throughputs are all-core estimates seeded from published ncnn VGG16 figures (see boards/profiles.go)")
	return exitOK, nil
}

func features(f boards.Features) string {
	var fs []string
	for _, x := range []struct {
		on   bool
		name string
	}{{f.NEON, "neon"}, {f.DotProd, "dotprod"}, {f.I8MM, "i8mm"}, {f.AVX2, "avx2"}} {
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
