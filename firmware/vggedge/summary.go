package main

import (
	"fmt"
	"io"

	"github.com/vggedge/vggedge/infer"
)

func runSummary(args []string, stdout io.Writer) (int, error) {
	fs := newFlags("summary", stdout)
	var mf modelFlags
	mf.register(fs)
	precision := fs.String("precision", "int8", "precision of the byte figures: int8 or fp32")
	asJSON := fs.Bool("json", false, "print one JSON object: totals and every layer")
	if err := parseFlags(fs, args); err != nil {
		return exitBadInput, err
	}
	p, err := infer.ParsePrecision(*precision)
	if err != nil {
		return exitBadInput, fmt.Errorf("--precision: %w", err)
	}
	m, err := mf.build()
	if err != nil {
		return exitBadInput, err
	}
	c, err := m.Cost(p)
	if err != nil {
		return exitBadInput, err
	}
	if *asJSON {
		if err := writeSummaryJSON(stdout, m, c); err != nil {
			return exitBadInput, err
		}
		return exitOK, nil
	}
	if err := m.PrintTorch(stdout); err != nil {
		return exitBadInput, err
	}
	fmt.Fprintln(stdout)
	if err := m.PrintTable(stdout, c); err != nil {
		return exitBadInput, err
	}
	return exitOK, nil
}
