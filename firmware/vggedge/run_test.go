package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vggedge/vggedge/firmware/stream"
)

// jsonLine is one line of --output jsonl.
type jsonLine struct {
	Frame *uint64 `json:"frame"`
	TS    string  `json:"ts"`
	Top   []struct {
		Label string   `json:"label"`
		Score *float64 `json:"score"`
	} `json:"top"`
	LatencyMs *float64 `json:"latency_ms"`
	Truth     *string  `json:"truth"`
	File      *string  `json:"file"` // file sources only
}

// parseJSONLines parses every line strictly (unknown keys are errors) and
// checks the fields every line must have.
func parseJSONLines(t *testing.T, out string) []jsonLine {
	t.Helper()
	if out != "" && !strings.HasSuffix(out, "\n") {
		t.Errorf("output does not end with a complete line: …%q", out[max(0, len(out)-80):])
	}
	var lines []jsonLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var l jsonLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %d %q: %v", len(lines)+1, sc.Text(), err)
		}
		if l.Frame == nil || l.LatencyMs == nil || len(l.Top) == 0 {
			t.Fatalf("line %d %q: frame, top or latency_ms missing", len(lines)+1, sc.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, l.TS); err != nil {
			t.Fatalf("line %d: ts %q: %v", len(lines)+1, l.TS, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// runLiveCLI runs `vggedge run args…` in-process with a context.
func runLiveCLI(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code, err := runLive(ctx, args, &o, &e)
	if err != nil {
		e.WriteString("error: " + oneLine(err) + "\n")
	}
	return code, o.String(), e.String()
}

// Required by the issue: 2000 MNIST test digits through the whole live
// path (idx source → preprocessing → int8 session → top-k → jsonl sink)
// agree with their ground truth on ≥ 98.5 %.
func TestRunDigitsIDX2000(t *testing.T) {
	dir := gomnistDir(t)
	code, out, errOut := runLiveCLI(t, context.Background(), "--model", "digits", "--source", "idx:"+dir,
		"--max-frames", "2000", "--output", "jsonl")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := parseJSONLines(t, out)
	if len(lines) != 2000 {
		t.Fatalf("%d lines, want 2000", len(lines))
	}
	agree := 0
	for i, l := range lines {
		if *l.Frame != uint64(i) {
			t.Fatalf("line %d is frame %d: every idx frame must be classified, in order", i, *l.Frame)
		}
		if l.Truth == nil {
			t.Fatalf("line %d: no truth from an idx source", i)
		}
		if len(l.Top) != 5 {
			t.Fatalf("line %d: top-%d, want the default 5", i, len(l.Top))
		}
		if l.Top[0].Label == *l.Truth {
			agree++
		}
	}
	rate := float64(agree) / 2000
	m := regexp.MustCompile(`[0-9.]+ fps \(inference`).FindString(errOut)
	t.Logf("top-1 agrees with truth on %d/2000 = %.4f; loop %s", agree, rate, m)
	if rate < 0.985 {
		t.Errorf("top-1 agreement %.4f < 0.985", rate)
	}
}

// Bad flags: exit 2 and one line that names the flag and what it wants.
func TestRunFlagErrors(t *testing.T) {
	dir := "idx:" + gomnistDir(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--size", "640"}, `--size: "640": want WxH`},
		{[]string{"--size", "0x480"}, `want WxH`},
		{[]string{"--format", "H264"}, `--format: "H264": want one of YUYV, I420, NV12, MJPEG, RGB24, BGR24, GRAY`},
		{[]string{"--fps", "-1"}, `--fps -1: want 0..1000`},
		{[]string{"--max-frames", "-3"}, `--max-frames -3: want ≥ 0`},
		{[]string{"--threads", "0"}, `--threads 0: want 1..256`},
		{[]string{"--topk", "11", "--source", dir}, `--topk 11: want 1..10 (model digits has 10 classes)`},
		{[]string{"--output", "csv"}, `--output "csv": want jsonl, jsonl:PATH, msgpack:PATH`},
		{[]string{"--output", "jsonl", "--output", "jsonl"}, `--output jsonl given twice`},
		{[]string{"--output", "msgpack:tcp:nohost"}, `want HOST:PORT`},
		{[]string{"--gpio", "GPIO17"}, `--gpio GPIO17 needs --when`},
		{[]string{"--when", "7"}, `--when needs --gpio PIN`},
		{[]string{"--gpio", "17", "--when", "cat"}, `--when cat: not a label of the model (labels: 0, 1, 2`},
		{[]string{"--gpio", "17", "--when", "7", "--on-score", "0.5", "--off-score", "0.6"}, `--off-score 0.6: want 0 ≤ off-score < on-score (0.5)`},
		{[]string{"--gpio", "17", "--when", "7", "--on-score", "1.5"}, `--on-score 1.5: want a probability in (0, 1]`},
		{[]string{"--gpio", "GPIO9999", "--when", "7", "--source", dir}, `gpio GPIO9999: no such pin on this board`},
		{[]string{"--model", "nosuchmodel"}, `model nosuchmodel: not an embedded model`},
		{[]string{"--model", "digits-f32"}, `model digits-f32 has no int8 weights`},
		{[]string{"--source", "nosuch:thing"}, `unknown scheme "nosuch"`},
		{[]string{"--source", "idx:/nonexistent"}, `/nonexistent`},
		{[]string{"--stats-every", "soon"}, `invalid value "soon" for flag -stats-every`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		code, out, errOut := runCLI(t, append([]string{"run"}, tt.args...)...)
		// flag's own parse errors make newFlags print usage on stdout.
		if strings.Contains(tt.want, "for flag") {
			out = ""
		}
		if code != exitBadInput || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want 2 and nothing", tt.args, code, out)
		}
		if !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "vggedge run: ") {
			t.Errorf("%v: stderr %q, want one line containing %q", tt.args, errOut, tt.want)
		}
	}
}

// jsonl and msgpack outputs of the same run carry the same results.
func TestRunJSONLAndMsgpackFiles(t *testing.T) {
	dir := t.TempDir()
	jpath, mpath := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "r.msgpack")
	code, out, errOut := runLiveCLI(t, context.Background(), "--source", "idx:"+gomnistDir(t), "--max-frames", "300",
		"--topk", "3", "--output", "jsonl:"+jpath, "--output", "msgpack:"+mpath, "--quiet")
	if code != exitOK || out != "" || errOut != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	data, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	lines := parseJSONLines(t, string(data))
	f, err := os.Open(mpath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := stream.NewReader(f)
	for i, l := range lines {
		m, err := r.Next()
		if err != nil {
			t.Fatalf("msgpack result %d: %v", i, err)
		}
		ts, _ := time.Parse(time.RFC3339Nano, l.TS)
		if m.Frame != *l.Frame || m.Truth != *l.Truth || len(m.Top) != 3 || m.Time.Sub(ts).Abs() >= time.Millisecond {
			t.Fatalf("result %d: msgpack %+v, jsonl %+v", i, m, l)
		}
		for j := range m.Top {
			if m.Top[j].Label != l.Top[j].Label || strconv.FormatFloat(float64(m.Top[j].Score), 'g', -1, 32) != strconv.FormatFloat(*l.Top[j].Score, 'g', -1, 32) {
				t.Fatalf("result %d top %d: msgpack %+v, jsonl %+v", i, j, m.Top[j], l.Top[j])
			}
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("msgpack holds more results than the %d jsonl lines: %v", len(lines), err)
	}
	if h := r.Header(); h == nil || h.Model == "" || len(h.Labels) != 10 || h.Labels[3] != "3" {
		t.Errorf("msgpack header %+v", h)
	}
}

// buildVggedge builds the binary once per test run.
func buildVggedge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vggedge")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// SIGTERM (what systemd sends) and SIGINT stop the binary cleanly with no
// terminal: stdin /dev/null, its own session (no controlling TTY). It
// exits 0 and its jsonl output ends with a complete line.
func TestRunSignalStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildVggedge(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "run", "--source", "bundled:digits?fps=200", "--output", "jsonl", "--threads", "1")
			cmd.Stdin = nil // /dev/null
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			pipe, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for real output before signalling, then keep reading
			// to the end.
			var out bytes.Buffer
			rd := bufio.NewReader(pipe)
			for n := 0; n < 20; n++ {
				line, err := rd.ReadBytes('\n')
				out.Write(line)
				if err != nil {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("after %d lines: %v; stderr: %s", n, err, stderr.String())
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := io.Copy(&out, rd)
				if err == nil {
					err = cmd.Wait()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("after %v: %v; stderr: %s", sig, err, stderr.String())
				}
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 60 s after %v; stderr: %s", sig, stderr.String())
			}
			lines := parseJSONLines(t, out.String())
			if len(lines) < 20 {
				t.Errorf("%d lines", len(lines))
			}
			if !strings.Contains(stderr.String(), "stopped after") {
				t.Errorf("stderr does not report the stop: %s", stderr.String())
			}
		})
	}
}

// The systemd unit parses (systemd-analyze verify, when installed: it
// needs the ExecStart binary to exist, so a copy points at a fresh build)
// and its ExecStart flags are ones run accepts.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("vggedge.service")
	if err != nil {
		t.Fatal(err)
	}
	var execStart []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	if len(execStart) < 2 || execStart[0] != "/usr/local/bin/vggedge" || execStart[1] != "run" {
		t.Fatalf("ExecStart %q", execStart)
	}
	for _, want := range []string{"Type=simple", "Restart=on-failure", "RestartSec=2", "StandardOutput=journal", "DynamicUser=yes", "SupplementaryGroups=video gpio", "StateDirectory=vggedge"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
	// The flags, with a source and outputs that exist on this machine.
	args := append([]string{}, execStart[2:]...)
	dir := t.TempDir()
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--config": // the example config is what the README installs
			args[i+1] = "vggedge.example.yaml"
		case "--source":
			args[i+1] = "idx:" + gomnistDir(t)
		case "--http":
			args[i+1] = "127.0.0.1:0"
		case "--output":
			args[i+1] = "jsonl:" + filepath.Join(dir, "results.jsonl")
		}
	}
	// Flags override the config file: a source and outputs that exist here.
	args = append(args, "--source", "idx:"+gomnistDir(t), "--http", "127.0.0.1:0",
		"--output", "jsonl:"+filepath.Join(dir, "results.jsonl"), "--max-frames", "3")
	code, _, errOut := runLiveCLI(t, context.Background(), args...)
	if code != exitOK {
		t.Errorf("ExecStart's flags: exit %d: %s", code, errOut)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (package systemd)")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildVggedge(t)
	copyPath := filepath.Join(dir, "vggedge.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(unit, []byte("/usr/local/bin/vggedge"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", copyPath).CombinedOutput()
	// verify exits 0 on unknown keys and bad values, only warning.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
