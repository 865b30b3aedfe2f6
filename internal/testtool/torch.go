package testtool

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
)

// TorchPython returns the first of $VGGEDGE_PYTHON, python3 on PATH and
// /usr/bin/python3 that can import torch and torchvision (a pyenv or venv
// python3 often cannot; Debian's python3-torch is /usr/bin/python3's), or
// "".
func TorchPython(ctx context.Context) string {
	var tried []string
	for _, c := range []string{os.Getenv("VGGEDGE_PYTHON"), "python3", "/usr/bin/python3"} {
		if c == "" {
			continue
		}
		py, err := exec.LookPath(c)
		if err != nil || slices.Contains(tried, py) {
			continue
		}
		tried = append(tried, py)
		if exec.CommandContext(ctx, py, "-c", "import torch, torchvision").Run() == nil {
			return py
		}
	}
	return ""
}

// RequireTorch returns a python3 that imports torch and torchvision;
// without one the test is skipped, or fails under CI.
func RequireTorch(t testing.TB, ctx context.Context) string {
	t.Helper()
	py := TorchPython(ctx)
	if py == "" {
		Missing(t, "no python3 that imports torch and torchvision (apt-get install python3-torch python3-torchvision, or set VGGEDGE_PYTHON)")
	}
	return py
}
