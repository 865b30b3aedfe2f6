package camera

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
)

// torchPython and requireTorch are the same in quant and quant/torchio
// (tools_test.go there); underCI and missingTool are tools_test.go's.

// torchPython returns the first of $VGGEDGE_PYTHON, python3 on PATH and
// /usr/bin/python3 that can import torch and torchvision (a pyenv or venv
// python3 often cannot), or "".
func torchPython(ctx context.Context) string {
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

// requireTorch returns a python3 that imports torch and torchvision; without
// one the test is skipped, and fails under CI.
func requireTorch(t testing.TB, ctx context.Context) string {
	t.Helper()
	py := torchPython(ctx)
	if py == "" {
		missingTool(t, "no python3 that imports torch and torchvision (apt-get install python3-torch python3-torchvision, or set VGGEDGE_PYTHON)")
	}
	return py
}
