package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/vggedge/vggedge/boards"
	"github.com/vggedge/vggedge/cross"
)

func main() {
	out := flag.String("out", "dist", "output directory")
	version := flag.String("version", "", "version stamped into main.version (default: git describe --always --dirty, else \"dev\")")
	pkg := flag.String("pkg", "./firmware/vggedge", "main package to build")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "release: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *version, *pkg); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, version, pkg string) error {
	if version == "" {
		version = cross.DefaultVersion(ctx, ".")
	}
	arts := cross.Matrix(boards.All())
	fmt.Printf("vggedge %s: %d artifacts → %s\n", version, len(arts), out)
	if _, err := cross.Release(ctx, cross.Options{Pkg: pkg, Out: out, Version: version}, arts, os.Stdout); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s\n", filepath.Join(out, cross.SumsFile), filepath.Join(out, cross.TargetsFile))
	return nil
}
