// Package testtool is how tests that run an external program (ffmpeg,
// chromium, mosquitto, qemu, objdump, GStreamer, python3 with PyTorch)
// find it: a missing tool skips the test on a developer's machine and
// fails it under CI, which
// installs every tool (.ci/run) — a skipped test there would pass for one
// that ran.
//
// Only tests import it. It imports the standard library only.
package testtool
