package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// UnderCI reports whether the tests run in CI (CI set and not false, as CI
// systems and .ci/run set it).
func UnderCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// debianPackage names the Debian package of each tool the tests run, for
// the message when one is missing.
var debianPackage = map[string]string{
	"aarch64-linux-gnu-objdump":   "binutils-aarch64-linux-gnu",
	"arm-linux-gnueabihf-objdump": "binutils-arm-linux-gnueabihf",
	"chromium":                    "chromium",
	"ffmpeg":                      "ffmpeg",
	"ffprobe":                     "ffmpeg",
	"go":                          "golang",
	"gst-inspect-1.0":             "gstreamer1.0-tools",
	"gst-launch-1.0":              "gstreamer1.0-tools",
	"mosquitto":                   "mosquitto",
	"objdump":                     "binutils",
	"qemu-aarch64-static":         "qemu-user-static",
	"qemu-arm-static":             "qemu-user-static",
}

// Require returns the path of the first of names found in PATH (or in
// /usr/sbin, where Debian puts daemons such as mosquitto). Without any of
// them the test is skipped, or fails under CI.
func Require(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		if p, err := exec.LookPath(filepath.Join("/usr/sbin", n)); err == nil {
			return p
		}
	}
	pkg := debianPackage[names[0]]
	if pkg == "" {
		pkg = names[0]
	}
	Missing(t, "%s not found (apt-get install %s)", names[0], pkg)
	return ""
}

// Missing skips the test for a missing tool or part of one, and fails it
// under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if UnderCI() {
		t.Fatalf(format+"; CI must install it (see .ci/run)", args...)
	}
	t.Skipf(format, args...)
}
