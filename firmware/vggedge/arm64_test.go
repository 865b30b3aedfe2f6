package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The budget check must give the same answer on a board as on the
// workstation: the linux/arm64 binary, run under qemu-user, must print
// byte-identical JSON and exit with the same code as this build. CI (CI set
// in the environment) must have qemu-aarch64-static; elsewhere the test is
// skipped without it.
func TestArm64CheckMatchesNative(t *testing.T) {
	if runtime.GOARCH == "arm64" {
		t.Skip("already arm64: nothing to compare against")
	}
	qemu := requireTool(t, "qemu-aarch64-static")
	if testing.Short() {
		t.Skip("builds an arm64 binary: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "vggedge-arm64")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build for arm64: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"check", "--arch", "vgg16", "--board", "rpi4-4g", "--json"},
		{"check", "--arch", "vgg11_bn", "--board", "rpi-zero2w", "--precision", "fp32", "--json"},
		{"check", "--arch", "vgg19", "--board", "orin-nano", "--input", "3x320x240", "--fps", "5", "--json"},
		{"check", "--arch", "../../infer/testdata/vgg16-r64.json", "--board", "jetson-nano", "--latency", "250ms", "--json"},
	} {
		name := strings.Join(args, " ")
		var want, wantErr bytes.Buffer
		wantCode := run(args, &want, &wantErr)
		if wantCode == exitBadInput {
			t.Fatalf("%s: native exit 2: %s", name, wantErr.String())
		}
		cmd := exec.Command(qemu, append([]string{"-cpu", "cortex-a72", bin}, args...)...)
		var got, gotErr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &got, &gotErr
		gotCode := 0
		if err := cmd.Run(); err != nil {
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("%s: running under qemu: %v", name, err)
			}
			gotCode = exit.ExitCode()
		}
		if gotCode != wantCode {
			t.Errorf("%s: arm64 exit %d, native %d (stderr %q)", name, gotCode, wantCode, gotErr.String())
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%s: arm64 JSON differs from native:\narm64:\n%.2000s\nnative:\n%.2000s", name, got.String(), want.String())
		}
	}
}
