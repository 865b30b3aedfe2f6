package cross

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vggedge/vggedge/boards"
)

// File names written next to the binaries by Release.
const (
	SumsFile    = "SHA256SUMS"
	TargetsFile = "targets.json"
)

// Options say what to build and where.
type Options struct {
	// Pkg is the main package, as `go build` takes it: "./firmware/vggedge".
	Pkg string
	// Dir is the directory the go command runs in (the module root);
	// "" is the current directory.
	Dir string
	// Out is the output directory, created if missing. A relative Out is
	// relative to the current directory, not to Dir.
	Out string
	// Version is stamped into main.version with -X.
	Version string
	// GoCmd is the go command; "" is "go" from PATH.
	GoCmd string
}

// Result is one built artifact.
type Result struct {
	Artifact
	Size   int64
	SHA256 [sha256.Size]byte
}

// BuildEnv is the environment overrides for a target's build, appended to
// os.Environ() so that they win. GOAMD64 and GOARM64 are pinned to the
// baseline because a release must run on every board of its architecture
// (the kernels pick SDOT/AVX2 at run time, not at build time); an
// inherited GOARM64=v8.2 would make the arm64 binary die on a Pi 4.
func BuildEnv(t boards.Target) []string {
	env := []string{"CGO_ENABLED=0", "GOOS=" + t.GOOS, "GOARCH=" + t.GOARCH, "GOARM=" + t.GOARM}
	switch t.GOARCH {
	case "amd64":
		env = append(env, "GOAMD64=v1")
	case "arm64":
		env = append(env, "GOARM64=v8.0")
	}
	return env
}

// BuildArgs is the `go build` command line (without the go command) that
// writes the binary to out.
func BuildArgs(pkg, version, out string) []string {
	return []string{"build", "-trimpath", "-ldflags", "-s -w -X main.version=" + version, "-o", out, pkg}
}

// checkVersion rejects versions that -ldflags would split or unquote.
func checkVersion(v string) error {
	if v == "" {
		return errors.New("empty version")
	}
	if i := strings.IndexFunc(v, func(r rune) bool {
		return r <= ' ' || r == '\'' || r == '"' || r == '\\' || r == 0x7f
	}); i >= 0 {
		return fmt.Errorf("version %q: character %q at %d is not allowed (space, quote, backslash or control)", v, v[i], i)
	}
	return nil
}

func (o Options) normalize() (Options, error) {
	if o.Pkg == "" {
		return o, errors.New("no package to build")
	}
	if err := checkVersion(o.Version); err != nil {
		return o, err
	}
	if o.GoCmd == "" {
		o.GoCmd = "go"
	}
	if o.Out == "" {
		o.Out = "."
	}
	// go runs in Dir, so -o must not be relative to our own directory.
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return o, fmt.Errorf("output directory %s: %w", o.Out, err)
	}
	o.Out = out
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return o, fmt.Errorf("output directory: %w", err)
	}
	return o, nil
}

// buildInto runs go build for a into dir/a.File and hashes the result.
func buildInto(ctx context.Context, o Options, a Artifact, dir string) (Result, error) {
	r := Result{Artifact: a}
	path := filepath.Join(dir, a.File)
	cmd := exec.CommandContext(ctx, o.GoCmd, BuildArgs(o.Pkg, o.Version, path)...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), BuildEnv(a.Target)...)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("build %s (%s) of %s: %w\n%s", a.File, Platform(a.Target), o.Pkg, err, strings.TrimSpace(output.String()))
	}
	f, err := os.Open(path)
	if err != nil {
		// go build -o on a non-main package succeeds and writes nothing.
		return r, fmt.Errorf("build %s (%s): go build wrote no binary (is %s package main?): %w", a.File, Platform(a.Target), o.Pkg, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return r, fmt.Errorf("hash %s: %w", a.File, err)
	}
	r.Size = n
	copy(r.SHA256[:], h.Sum(nil))
	return r, nil
}

// Build builds one artifact into o.Out. The binary is written in a
// temporary directory under o.Out and renamed into place, so o.Out never
// holds a half-written file.
func Build(ctx context.Context, o Options, a Artifact) (Result, error) {
	o, err := o.normalize()
	if err != nil {
		return Result{}, err
	}
	tmp, err := os.MkdirTemp(o.Out, ".build-")
	if err != nil {
		return Result{}, fmt.Errorf("build %s: %w", a.File, err)
	}
	defer os.RemoveAll(tmp)
	r, err := buildInto(ctx, o, a, tmp)
	if err != nil {
		return r, err
	}
	if err := os.Rename(filepath.Join(tmp, a.File), filepath.Join(o.Out, a.File)); err != nil {
		return r, fmt.Errorf("build %s: %w", a.File, err)
	}
	return r, nil
}

// Release builds every artifact, then writes SHA256SUMS and targets.json,
// printing one line per artifact to progress (if not nil). Everything is
// built in a staging directory under o.Out and moved into o.Out only once
// all builds succeeded, so a failed release leaves the previous one (its
// binaries and their checksums) untouched.
func Release(ctx context.Context, o Options, arts []Artifact, progress io.Writer) ([]Result, error) {
	if progress == nil {
		progress = io.Discard
	}
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(o.Out, ".release-")
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	defer os.RemoveAll(stage)

	results := make([]Result, 0, len(arts))
	sums := make(map[string][sha256.Size]byte, len(arts))
	for _, a := range arts {
		if _, dup := sums[a.File]; dup {
			return nil, fmt.Errorf("two artifacts named %s", a.File)
		}
		r, err := buildInto(ctx, o, a, stage)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
		sums[a.File] = r.SHA256
		fmt.Fprintln(progress, FormatResult(r))
	}
	tj, err := TargetsJSON(arts)
	if err != nil {
		return nil, err
	}
	meta := map[string][]byte{SumsFile: FormatSums(sums), TargetsFile: tj}
	for name, data := range meta {
		if err := os.WriteFile(filepath.Join(stage, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	// Binaries first and the checksums last: whoever reads SHA256SUMS
	// mid-move sees the previous sums, never sums of files not yet there.
	names := make([]string, 0, len(results)+2)
	for _, r := range results {
		names = append(names, r.File)
	}
	names = append(names, TargetsFile, SumsFile)
	for _, name := range names {
		if err := os.Rename(filepath.Join(stage, name), filepath.Join(o.Out, name)); err != nil {
			return nil, fmt.Errorf("move %s into %s: %w", name, o.Out, err)
		}
	}
	return results, nil
}

// FormatResult is the one-line report of a built artifact.
func FormatResult(r Result) string {
	who := strings.Join(r.Boards, ",")
	if who == "" {
		who = "generic"
	}
	return fmt.Sprintf("%-24s %-13s %9d bytes %6.1f MiB  %s", r.File, Platform(r.Target), r.Size, float64(r.Size)/(1<<20), who)
}

// FormatSums renders checksums the way sha256sum prints them (and
// `sha256sum -c` reads them): "<hex>  <file>\n", sorted by file name.
func FormatSums(sums map[string][sha256.Size]byte) []byte {
	files := make([]string, 0, len(sums))
	for f := range sums {
		files = append(files, f)
	}
	slices.Sort(files)
	var b bytes.Buffer
	for _, f := range files {
		sum := sums[f]
		b.WriteString(hex.EncodeToString(sum[:]))
		b.WriteString("  ")
		b.WriteString(f)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// targetEntry is one element of targets.json.
type targetEntry struct {
	File   string   `json:"file"`
	GOOS   string   `json:"goos"`
	GOARCH string   `json:"goarch"`
	GOARM  string   `json:"goarm,omitempty"`
	Boards []string `json:"boards"`
}

// TargetsJSON is the matrix as targets.json: an array of
// {file, goos, goarch, goarm (arm only), boards}, in matrix order.
func TargetsJSON(arts []Artifact) ([]byte, error) {
	entries := make([]targetEntry, len(arts))
	for i, a := range arts {
		bs := a.Boards
		if bs == nil {
			bs = []string{} // [] rather than null for the generic build
		}
		entries[i] = targetEntry{File: a.File, GOOS: a.Target.GOOS, GOARCH: a.Target.GOARCH, GOARM: a.Target.GOARM, Boards: bs}
	}
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("targets.json: %w", err)
	}
	return append(data, '\n'), nil
}

// DefaultVersion is `git describe --always --dirty` run in dir, or "dev"
// when git or the repository history is not there.
func DefaultVersion(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	cmd.Dir = dir
	out, err := cmd.Output()
	v := strings.TrimSpace(string(out))
	if err != nil || checkVersion(v) != nil {
		return "dev"
	}
	return v
}
