package quant

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
)

// This file's underCI and missingTool are the same as in every package
// whose tests run external tools (camera, firmware, infer/kernels); test
// helpers cannot be shared across packages without a package of their own.
// torchPython and requireTorch are the same in quant/torchio and in camera
// (torch_helpers_test.go).

// underCI reports whether the tests run in CI (CI set and not false, as CI
// systems and .ci/run set it), which installs every tool they use.
func underCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// missingTool skips the test for a missing tool or part of one, and fails
// it under CI.
func missingTool(t testing.TB, format string, args ...any) {
	t.Helper()
	if underCI() {
		t.Fatalf(format+"; CI must install it (see .ci/run)", args...)
	}
	t.Skipf(format, args...)
}

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
