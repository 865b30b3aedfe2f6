package cross

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/boards"
)

func TestFormatSums(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string // file → content
		want string
	}{
		{"empty", nil, ""},
		{
			// FIPS 180-2 test vector: SHA-256("abc").
			"abc", map[string]string{"abc": "abc"},
			"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  abc\n",
		},
		{
			"sorted by file", map[string]string{"b": "abc", "a": ""},
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a\n" +
				"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  b\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sums := map[string][sha256.Size]byte{}
			for f, d := range tc.data {
				sums[f] = sha256.Sum256([]byte(d))
			}
			if got := string(FormatSums(sums)); got != tc.want {
				t.Errorf("FormatSums =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestFormatSumsMatchesSha256sum checks the format against the tool users
// verify releases with.
func TestFormatSumsMatchesSha256sum(t *testing.T) {
	tool, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Skip("sha256sum not installed")
	}
	dir := t.TempDir()
	files := map[string]string{"vggedge-linux-arm64": "abc", "vggedge-linux-amd64": "\x7fELF"}
	sums := map[string][sha256.Size]byte{}
	var names []string
	for f, d := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
		sums[f] = sha256.Sum256([]byte(d))
		names = append(names, f)
	}
	slices.Sort(names)
	cmd := exec.Command(tool, names...)
	cmd.Dir = dir
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("sha256sum: %v", err)
	}
	if got := FormatSums(sums); !bytes.Equal(got, want) {
		t.Errorf("FormatSums =\n%s\nsha256sum printed\n%s", got, want)
	}
}

func TestTargetsJSON(t *testing.T) {
	data, err := TargetsJSON(Matrix([]*boards.Board{board("rpi4-4g", arm64, armv7), board("x86-64", amd64)}))
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("targets.json does not parse: %v\n%s", err, data)
	}
	want := []map[string]any{
		{"file": "vggedge-linux-arm64", "goos": "linux", "goarch": "arm64", "boards": []any{"rpi4-4g"}},
		{"file": "vggedge-linux-armv7", "goos": "linux", "goarch": "arm", "goarm": "7", "boards": []any{"rpi4-4g"}},
		{"file": "vggedge-linux-armv6", "goos": "linux", "goarch": "arm", "goarm": "6", "boards": []any{}},
		{"file": "vggedge-linux-amd64", "goos": "linux", "goarch": "amd64", "boards": []any{"x86-64"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets.json =\n%s\nwant %v", data, want)
	}
}

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		v  string
		ok bool
	}{
		{"dev", true},
		{"v1.2.3-4-gabcdef0-dirty", true},
		{"0.1.0+build/7", true},
		{"", false},
		{"v1 2", false},
		{"v1'", false},
		{`v1"`, false},
		{`v1\`, false},
		{"v1\n", false},
	}
	for _, tc := range tests {
		if err := checkVersion(tc.v); (err == nil) != tc.ok {
			t.Errorf("checkVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
}

func TestBuildEnv(t *testing.T) {
	tests := []struct {
		t    boards.Target
		want []string
	}{
		{arm64, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOARM=", "GOARM64=v8.0"}},
		{armv6, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm", "GOARM=6"}},
		{amd64, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOARM=", "GOAMD64=v1"}},
	}
	for _, tc := range tests {
		if got := BuildEnv(tc.t); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("BuildEnv(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// tinyModule writes a module with a main package shaped like firmware's
// (a var version set with -X) and returns its directory.
func tinyModule(t *testing.T, main string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/tiny\n\ngo 1.22\n",
		"main.go": main,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tinyMain prints with the builtin println (to stderr) so that it imports
// nothing: a cold cross build then compiles little beyond the runtime.
const tinyMain = `package main

var version = "dev"

func main() { println(version) }
`

// TestRelease cross-builds a tiny main package (not ./firmware, which is
// slow to build) for arm64 and ARMv6 and checks what landed in Out.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles; skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH")
	}
	mod := tinyModule(t, tinyMain)
	out := filepath.Join(t.TempDir(), "dist")
	const version = "v9.8.7-test"
	arts := []Artifact{
		{Target: arm64, File: FileName(arm64), Boards: []string{"rpi5-8g"}},
		{Target: armv6, File: FileName(armv6), Boards: []string{}},
	}
	var progress bytes.Buffer
	results, err := Release(context.Background(), Options{Pkg: ".", Dir: mod, Out: out, Version: version}, arts, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(progress.String(), "\n"); n != len(arts) {
		t.Errorf("progress has %d lines, want %d:\n%s", n, len(arts), &progress)
	}

	tests := []struct {
		file     string
		machine  elf.Machine
		class    elf.Class
		settings map[string]string // build settings the binary must record
	}{
		{"vggedge-linux-arm64", elf.EM_AARCH64, elf.ELFCLASS64, map[string]string{"GOARCH": "arm64", "GOARM64": "v8.0"}},
		{"vggedge-linux-armv6", elf.EM_ARM, elf.ELFCLASS32, map[string]string{"GOARCH": "arm", "GOARM": "6"}},
	}
	sums := map[string][sha256.Size]byte{}
	for i, tc := range tests {
		path := filepath.Join(out, tc.file)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sums[tc.file] = sha256.Sum256(data)
		if r := results[i]; r.File != tc.file || r.Size != int64(len(data)) || r.SHA256 != sums[tc.file] {
			t.Errorf("result %d = %s size %d, want %s size %d and matching hash", i, r.File, r.Size, tc.file, len(data))
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s is not ELF: %v", tc.file, err)
		}
		if f.Machine != tc.machine || f.Class != tc.class || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
			t.Errorf("%s: machine %v class %v osabi %v, want %v %v linux", tc.file, f.Machine, f.Class, f.OSABI, tc.machine, tc.class)
		}
		if f.Section(".symtab") != nil {
			t.Errorf("%s has a symbol table; -ldflags -s was not applied", tc.file)
		}
		if !bytes.Contains(data, []byte(version)) {
			t.Errorf("%s does not contain the version %q; -X main.version was not applied", tc.file, version)
		}
		bi, err := buildinfo.Read(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s build info: %v", tc.file, err)
		}
		want := map[string]string{"GOOS": "linux", "CGO_ENABLED": "0", "-trimpath": "true"}
		for k, v := range tc.settings {
			want[k] = v
		}
		got := map[string]string{}
		for _, s := range bi.Settings {
			got[s.Key] = s.Value
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: build setting %s = %q, want %q", tc.file, k, got[k], v)
			}
		}
	}
	if got, err := os.ReadFile(filepath.Join(out, SumsFile)); err != nil || !bytes.Equal(got, FormatSums(sums)) {
		t.Errorf("%s = %q (%v), want %q", SumsFile, got, err, FormatSums(sums))
	}
	if _, err := os.Stat(filepath.Join(out, TargetsFile)); err != nil {
		t.Error(err)
	}
	// Nothing else: no staging directory or temp file left behind.
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{SumsFile, "targets.json", "vggedge-linux-arm64", "vggedge-linux-armv6"}; !reflect.DeepEqual(names, want) {
		t.Errorf("%s holds %q, want %q", out, names, want)
	}

	// Run the arm64 build if this machine can: proves it is a working
	// static binary, not just the right header.
	if qemu, err := exec.LookPath("qemu-aarch64-static"); err == nil {
		got, err := exec.Command(qemu, filepath.Join(out, "vggedge-linux-arm64")).CombinedOutput()
		if err != nil || string(got) != version+"\n" {
			t.Errorf("arm64 binary under qemu printed %q (%v), want %q", got, err, version+"\n")
		}
	}
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command; skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH")
	}
	t.Run("ok", func(t *testing.T) {
		// Same target and flags as TestRelease, so the go build cache makes
		// this cheap.
		mod := tinyModule(t, tinyMain)
		out := t.TempDir()
		a := Artifact{Target: arm64, File: FileName(arm64)}
		r, err := Build(context.Background(), Options{Pkg: ".", Dir: mod, Out: out, Version: "dev"}, a)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(out, a.File))
		if err != nil || fi.Size() != r.Size || fi.Mode()&0o111 == 0 {
			t.Errorf("built file: %v, %v; want an executable of %d bytes", fi, err, r.Size)
		}
	})
	t.Run("compile error names the target and shows go's output", func(t *testing.T) {
		mod := tinyModule(t, "package main\n\nfunc main() { undefinedThing() }\n")
		out := t.TempDir()
		// ARMv6, as in TestRelease, so the runtime comes from the build cache.
		a := Artifact{Target: armv6, File: FileName(armv6)}
		_, err := Build(context.Background(), Options{Pkg: ".", Dir: mod, Out: out, Version: "dev"}, a)
		if err == nil {
			t.Fatal("Build of a broken package succeeded")
		}
		for _, want := range []string{"vggedge-linux-armv6", "linux/arm/v6", "undefinedThing"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q:\n%v", want, err)
			}
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("failed build left %d entries in Out", len(entries))
		}
	})
	t.Run("bad version is rejected before building", func(t *testing.T) {
		_, err := Build(context.Background(), Options{Pkg: ".", Out: t.TempDir(), Version: "1 2"}, Artifact{Target: arm64, File: FileName(arm64)})
		if err == nil || !strings.Contains(err.Error(), "version") {
			t.Errorf("err = %v, want a version error", err)
		}
	})
}
