package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vggedge/vggedge/firmware/stream"
)

// vggedge run with --output jsonl:F --output msgpack:G, killed with
// SIGKILL and restarted, several times: every complete line of F from
// earlier runs is still there, in order, and the stream reader reads G
// to its end (a torn last record skipped), one header in all.
func TestRunOutputsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	jpath, mpath := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "r.msgpack")
	var prev []byte // F's complete lines after the previous run
	const rounds = 4
	for round := range rounds {
		args := []string{"--source", "bundled:digits?fps=300", "--output", "jsonl:" + jpath, "--output", "msgpack:" + mpath}
		cmd := exec.Command(os.Args[0], "-test.run=^TestMQTTHelperProcess$")
		argsJSON, _ := json.Marshal(args)
		cmd.Env = append(os.Environ(), "VGGEDGE_MQTT_HELPER="+string(argsJSON))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until this run has written 100 more lines, then kill it.
		want := bytes.Count(prev, []byte("\n")) + 100
		for deadline := time.Now().Add(60 * time.Second); ; {
			data, _ := os.ReadFile(jpath)
			if bytes.Count(data, []byte("\n")) >= want {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: %d lines after 60 s, want %d; stderr:\n%s", round, bytes.Count(data, []byte("\n")), want, stderr.String())
			}
			time.Sleep(20 * time.Millisecond) // polling the file, with a deadline
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		data, err := os.ReadFile(jpath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, prev) {
			t.Fatalf("round %d: the lines of earlier runs are not all still at the start of %s", round, jpath)
		}
		prev = data[:bytes.LastIndexByte(data, '\n')+1]
		if strings.Contains(stderr.String(), "torn") {
			t.Logf("round %d: %s", round, strings.TrimSpace(stderr.String()))
		}
	}
	lines := parseJSONLines(t, string(prev))
	runs := 1
	for i := 1; i < len(lines); i++ {
		if *lines[i].Frame < *lines[i-1].Frame {
			runs++
		}
	}
	frames, hdr, torn := readStream(t, mpath)
	mruns := 1
	for i := 1; i < len(frames); i++ {
		if frames[i] < frames[i-1] {
			mruns++
		}
	}
	data, _ := os.ReadFile(mpath)
	t.Logf("%d runs killed: %s holds %d lines of %d runs; %s %d results of %d runs, %d bytes, torn tail %t",
		rounds, jpath, len(lines), runs, mpath, len(frames), mruns, len(data), torn)
	if runs != rounds || mruns != rounds || hdr == nil || hdr.Model != "digits" {
		t.Errorf("want the results of all %d runs in both files (jsonl %d, msgpack %d, header %+v)", rounds, runs, mruns, hdr)
	}
	if n := bytes.Count(data, []byte(stream.Format)); n != 1 {
		t.Errorf("%d headers in %s, want 1", n, mpath)
	}
}

// A pipe: command that exits 0 (a finite input) ends the run cleanly:
// exit 0, the frames it sent classified, no restart.
func TestRunPipeExitZeroEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, out, errOut := runLiveCLI(t, ctx, "--source", "pipe:head -c 3136 /dev/zero", "--format", "GRAY", "--size", "28x28")
	if code != exitOK || ctx.Err() != nil {
		t.Fatalf("exit %d (context: %v): %s", code, ctx.Err(), errOut)
	}
	if n := strings.Count(out, "\n"); n < 1 || n > 4 {
		t.Errorf("%d results from 4 frames", n)
	}
	if !strings.Contains(errOut, "command exited (exit status 0): the source ended") || strings.Contains(errOut, "restarting") {
		t.Errorf("log:\n%s", errOut)
	}
}

// SIGHUP (logrotate) reopens the output files and says so in one line:
// after F is moved away, new results go to a new F (msgpack: with its
// header); the run goes on and stops cleanly on SIGTERM.
func TestRunSIGHUPReopensOutputs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	jpath, mpath := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "r.msgpack")
	args := []string{"--source", "bundled:digits?fps=200", "--output", "jsonl:" + jpath, "--output", "msgpack:" + mpath}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMQTTHelperProcess$")
	argsJSON, _ := json.Marshal(args)
	cmd.Env = append(os.Environ(), "VGGEDGE_MQTT_HELPER="+string(argsJSON))
	stderr := &syncLog{}
	cmd.Stderr = stderrWriter{stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitLines := func(path string, n int) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling the file, with a deadline
			data, _ := os.ReadFile(path)
			if bytes.Count(data, []byte("\n")) >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d lines after 60 s, want %d; stderr:\n%s", path, bytes.Count(data, []byte("\n")), n, stderr)
			}
		}
	}
	waitLines(jpath, 20)
	os.Rename(jpath, jpath+".1")
	os.Rename(mpath, mpath+".1")
	cmd.Process.Signal(syscall.SIGHUP)
	waitLines(jpath, 20)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGHUP and SIGTERM: %v; stderr:\n%s", err, stderr)
	}
	if n := strings.Count(stderr.String(), "SIGHUP: reopening 2 output file(s)"); n != 1 {
		t.Errorf("%d SIGHUP lines in the log, want 1:\n%s", n, stderr)
	}
	old, _ := os.ReadFile(jpath + ".1")
	cur, _ := os.ReadFile(jpath)
	a, b := parseJSONLines(t, string(old)), parseJSONLines(t, string(cur))
	if len(a) == 0 || len(b) < 20 || *b[0].Frame <= *a[len(a)-1].Frame {
		t.Errorf("rotated file ends at frame %d, new one starts at %d: want the new file to go on", *a[len(a)-1].Frame, *b[0].Frame)
	}
	for _, p := range []string{mpath + ".1", mpath} {
		frames, hdr, _ := readStream(t, p)
		if hdr == nil || len(frames) == 0 {
			t.Errorf("%s: %d results, header %v", p, len(frames), hdr)
		}
	}
	t.Logf("rotated: %d lines; new: %d lines (frames %d..%d)", len(a), len(b), *b[0].Frame, *b[len(b)-1].Frame)
}

// jsonl:PATH?rotate=SIZE&keep=N and the same for msgpack: once the file
// reaches SIZE it becomes PATH.1 (and so on, N kept); nothing is lost
// across the rotations and every msgpack file starts with its header.
func TestFileOutputsRotate(t *testing.T) {
	dir := t.TempDir()
	jpath, mpath := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "r.msgpack")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	code, _, errOut := runLiveCLI(t, ctx, "--source", "idx:"+gomnistDir(t), "--max-frames", "600",
		"--output", "jsonl:"+jpath+"?rotate=8KiB&keep=3", "--output", "msgpack:"+mpath+"?rotate=8KiB&keep=3")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var lines []jsonLine
	var frames []uint64
	for _, suffix := range []string{".3", ".2", ".1", ""} {
		data, err := os.ReadFile(jpath + suffix)
		if err != nil {
			t.Fatalf("%s: %v (want 3 rotated files and the current one)", jpath+suffix, err)
		}
		if suffix != "" && len(data) < 8<<10 {
			t.Errorf("%s: %d bytes, rotated before 8 KiB", jpath+suffix, len(data))
		}
		lines = append(lines, parseJSONLines(t, string(data))...)
		f, _, _ := readStream(t, mpath+suffix) // fails on a file without its header
		frames = append(frames, f...)
	}
	if _, err := os.Stat(jpath + ".4"); err == nil {
		t.Errorf("%s.4 exists: keep=3", jpath)
	}
	for i := 1; i < len(lines); i++ {
		if *lines[i].Frame != *lines[i-1].Frame+1 {
			t.Fatalf("line %d: frame %d after %d: a line lost or repeated across a rotation", i, *lines[i].Frame, *lines[i-1].Frame)
		}
	}
	for i := 1; i < len(frames); i++ {
		if frames[i] != frames[i-1]+1 {
			t.Fatalf("msgpack result %d: frame %d after %d", i, frames[i], frames[i-1])
		}
	}
	if *lines[len(lines)-1].Frame != 599 || frames[len(frames)-1] != 599 {
		t.Errorf("last frames %d and %d, want 599", *lines[len(lines)-1].Frame, frames[len(frames)-1])
	}
	t.Logf("the last %d lines and %d results of 600 in 4 files each (older ones rotated away)", len(lines), len(frames))

	for _, bad := range []struct{ out, want string }{
		{"jsonl:" + jpath + "?rotate=1KiB", "rotate=1KiB: want a size of at least 4KiB"},
		{"jsonl:" + jpath + "?keep=3", "keep= needs rotate=SIZE"},
		{"msgpack:" + mpath + "?rotate=8KiB&keep=0", "keep=0: want 1..1000"},
		{"jsonl:" + jpath + "?rotat=8KiB", `unknown option "rotat"`},
	} {
		code, _, errOut := runLiveCLI(t, context.Background(), "--source", "bundled:digits?fps=0", "--max-frames", "1", "--output", bad.out)
		if code != exitBadInput || !strings.Contains(errOut, bad.want) {
			t.Errorf("--output %s: exit %d, %q; want exit 2 and %q", bad.out, code, errOut, bad.want)
		}
	}
}

// readStream reads a msgpack results file (a copy of the output package's test helper).
func readStream(t *testing.T, path string) (frames []uint64, hdr *stream.Header, torn bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := stream.NewReader(f)
	for {
		res, err := r.Next()
		if err == io.EOF {
			return frames, r.Header(), r.Torn()
		}
		if err != nil {
			t.Fatalf("%s after %d results: %v", path, len(frames), err)
		}
		frames = append(frames, res.Frame)
	}
}
