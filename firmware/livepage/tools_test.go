package livepage

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// This file is the same in every package whose tests run external tools
// (camera, firmware, infer/kernels): test helpers cannot be shared across
// packages without a package of their own.

// underCI reports whether the tests run in CI (CI set and not false, as CI
// systems and .ci/run set it), which installs every tool they use.
func underCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// toolPackage names the Debian package of each tool these tests run.
var toolPackage = map[string]string{"chromium": "chromium", "ffmpeg": "ffmpeg", "gst-inspect-1.0": "gstreamer1.0-tools", "mosquitto": "mosquitto", "qemu-aarch64-static": "qemu-user-static"}

// requireTool returns the path of the first of names found in PATH (or in
// /usr/sbin, where Debian puts daemons such as mosquitto). Without any of
// them the test is skipped — but fails under CI, where a skipped test
// would pass for one that ran.
func requireTool(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		if p, err := exec.LookPath(filepath.Join("/usr/sbin", n)); err == nil {
			return p
		}
	}
	pkg := toolPackage[names[0]]
	if pkg == "" {
		pkg = names[0]
	}
	missingTool(t, "%s not found (apt-get install %s)", names[0], pkg)
	return ""
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
