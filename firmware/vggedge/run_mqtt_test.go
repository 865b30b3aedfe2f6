package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/vggedge/vggedge/firmware/mqtt"
	"github.com/vggedge/vggedge/firmware/mqtt/mqtttest"
)

// Stats every --mqtt-stats-every, through the real command: the loop's
// numbers (model, frames, fps, stage times) and the MQTT counters.
func TestRunMQTTStats(t *testing.T) {
	b := mqtttest.Start(t, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, 1)
	go func() {
		_, _, errOut := runLiveCLI(t, ctx, "--source", "bundled:digits?fps=100", "--output", "jsonl:"+os.DevNull,
			"--mqtt", b.URL().String(), "--device-id", "stats", "--mqtt-stats-every", "200ms", "--mqtt-when", "1")
		done <- errOut
	}()
	topic := "vggedge/stats/stats"
	b.WaitFor(t, "5 stats messages", func() bool { return len(b.On(topic)) >= 5 })
	cancel()
	errOut := <-done
	ms := b.On(topic)
	var last mqtt.StatsPayload
	for i, msg := range ms {
		var s mqtt.StatsPayload
		if err := json.Unmarshal(msg.Payload, &s); err != nil {
			t.Fatalf("stats %q: %v", msg.Payload, err)
		}
		if s.Model != "digits" || s.Device != "stats" || s.Threads < 1 {
			t.Errorf("stats %d: %+v", i, s)
		}
		if i > 0 && s.Frames < last.Frames {
			t.Errorf("stats %d: frames went back from %d to %d", i, last.Frames, s.Frames)
		}
		last = s
	}
	if last.Frames == 0 || last.FPS <= 0 || last.StagesMs.Inference.Mean <= 0 || last.MQTT.Connects != 1 {
		t.Errorf("last stats: %+v", last)
	}
	if last.MQTT.Published == 0 {
		t.Errorf("no events counted as published in %+v (digit 1 comes up in the bundled digits)", last.MQTT)
	}
	// Cadence: the ticker's period, read from the broker's receive times
	// (median, so one slow tick on a loaded machine does not matter).
	var gaps []time.Duration
	for i := 1; i < len(ms); i++ {
		gaps = append(gaps, ms[i].At.Sub(ms[i-1].At))
	}
	med := medianDuration(gaps)
	t.Logf("%d stats, median gap %v; last %+v", len(ms), med, last)
	if med < 100*time.Millisecond || med > 2*time.Second {
		t.Errorf("median gap between stats %v, want about 200ms", med)
	}
	if !strings.Contains(errOut, "mqtt: ") || !strings.Contains(errOut, "events published") {
		t.Errorf("no mqtt summary in the log:\n%s", errOut)
	}
}

func medianDuration(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// Through `vggedge run --source idx:… --mqtt …`: every frame of an idx
// set is classified, so the events can be checked against the jsonl
// results frame by frame: an "appeared 7" only at a frame where 7 scores
// ≥ on, a "disappeared" only where it scores < off, and between events
// nothing that should have fired.
func TestRunMQTTIDX(t *testing.T) {
	b := mqtttest.Start(t, "127.0.0.1:0")
	dir := t.TempDir()
	out := dir + "/results.jsonl"
	code, _, errOut := runLiveCLI(t, context.Background(), "--source", "idx:"+gomnistDir(t), "--max-frames", "1000",
		"--output", "jsonl:"+out, "--mqtt", b.URL().String(), "--device-id", "idx", "--mqtt-when", "7")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b.WaitPayload(t, "vggedge/idx/availability", mqtt.PayloadOffline, 0)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := parseJSONLines(t, string(raw))
	score7 := func(frame uint64) float64 {
		for _, c := range lines[frame].Top {
			if c.Label == "7" {
				return *c.Score
			}
		}
		return 0
	}
	evs := parseEvents(t, b.On("vggedge/idx/event"))
	if len(evs) < 20 {
		t.Fatalf("%d events over 1000 digits, want one per run of 7s (about 100)", len(evs))
	}
	seen, next := false, uint64(0)
	for _, e := range evs {
		f := *e.Frame
		// Frames since the previous event did not change the state.
		for g := next; g < f; g++ {
			if s := score7(g); (!seen && s >= 0.8) || (seen && s < 0.5) {
				t.Fatalf("frame %d: 7 scores %.3f while seen=%v, but no event until frame %d", g, s, seen, f)
			}
		}
		switch s := score7(f); {
		case !seen && *e.State == mqtt.EventAppeared && *e.Label == "7" && s >= 0.8:
		case seen && *e.State == mqtt.EventDisappeared && *e.Previous == "7" && s < 0.5:
		default:
			t.Fatalf("event %s %q at frame %d (7 scores %.3f, seen=%v)", *e.State, *e.Label, f, s, seen)
		}
		seen, next = !seen, f+1
	}
	if !strings.Contains(errOut, "sink-dropped 0,") {
		t.Errorf("results were dropped before the sinks, the check above is void:\n%s", errOut)
	}
	t.Logf("%d events over 1000 frames", len(evs))
}

// The issue: stop the broker mid-run, keep classifying, restart it on the
// same port — through the real command on a live (paced) source.
func TestRunMQTTBrokerRestart(t *testing.T) {
	b := mqtttest.Start(t, "127.0.0.1:0")
	addr := b.Addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan string, 1)
	go func() {
		_, _, errOut := runLiveCLI(t, ctx, "--source", "bundled:digits?fps=100", "--output", "jsonl:"+os.DevNull,
			"--mqtt", b.URL().String(), "--device-id", "rr", "--mqtt-when", "1", "--mqtt-queue", "4", "--mqtt-stats-every", "0")
		done <- errOut
	}()
	topic := "vggedge/rr/event"
	b.WaitFor(t, "4 events", func() bool { return len(b.On(topic)) >= 4 })
	b.Stop()
	before := parseEvents(t, b.On(topic))
	lastBefore := *before[len(before)-1].Frame
	// Down for 1.5 s: ~150 frames at 100 fps, ~30 events for a queue of 4.
	time.Sleep(1500 * time.Millisecond)
	b2 := mqtttest.Start(t, addr)
	b2.WaitFor(t, "events queued during the outage", func() bool { return len(b2.On(topic)) >= 4 })
	cancel()
	errOut := <-done
	after := parseEvents(t, b2.On(topic))
	var frames []uint64
	for _, e := range append(before, after...) {
		frames = append(frames, *e.Frame)
	}
	for i := 1; i < len(frames); i++ {
		if frames[i] < frames[i-1] {
			t.Fatalf("events out of order: %v", frames)
		}
	}
	if *after[0].Frame <= lastBefore+50 {
		t.Errorf("first event after the restart is frame %d, last before %d: the loop did not keep classifying through the outage", *after[0].Frame, lastBefore)
	}
	m := regexp.MustCompile(`mqtt: (\d+) events published, (\d+) dropped`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("no mqtt summary in the log:\n%s", errOut)
	}
	dropped, _ := strconv.Atoi(m[2])
	if dropped == 0 {
		t.Errorf("no events counted as dropped with a queue of 4 over a 1.5 s outage:\n%s", errOut)
	}
	if !strings.Contains(errOut, "reconnected") {
		t.Errorf("no reconnect in the log:\n%s", errOut)
	}
	t.Logf("events: %d before, %d after (first after: frame %d, last before: %d), %d dropped", len(before), len(after), *after[0].Frame, lastBefore, dropped)
}

// The process dies (SIGKILL, no chance to say goodbye): the broker
// publishes the last will "offline". A SIGTERM is a clean stop that
// publishes "offline" itself and exits 0.
func TestRunMQTTLastWillProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	b := mqtttest.Start(t, "127.0.0.1:0")
	for _, tt := range []struct {
		id  string
		sig syscall.Signal
	}{{"killed", syscall.SIGKILL}, {"stopped", syscall.SIGTERM}} {
		t.Run(tt.id, func(t *testing.T) {
			args := []string{"--source", "bundled:digits?fps=30", "--output", "jsonl:" + os.DevNull,
				"--mqtt", b.URL().String(), "--device-id", tt.id, "--mqtt-stats-every", "0"}
			cmd := exec.Command(os.Args[0], "-test.run=^TestMQTTHelperProcess$")
			argsJSON, _ := json.Marshal(args)
			cmd.Env = append(os.Environ(), "VGGEDGE_MQTT_HELPER="+string(argsJSON))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			topic := "vggedge/" + tt.id + "/availability"
			b.WaitPayload(t, topic, mqtt.PayloadOnline, 0)
			cmd.Process.Signal(tt.sig)
			err := cmd.Wait()
			b.WaitPayload(t, topic, mqtt.PayloadOffline, 0)
			if got := b.Retained(topic); got != mqtt.PayloadOffline {
				t.Errorf("retained availability %q, want offline", got)
			}
			if tt.sig == syscall.SIGTERM {
				if err != nil {
					t.Errorf("SIGTERM: %v; stderr:\n%s", err, stderr.String())
				}
				if !strings.Contains(stderr.String(), "events published") {
					t.Errorf("no clean mqtt shutdown in the log:\n%s", stderr.String())
				}
			}
		})
	}
}

// TestMQTTHelperProcess is `vggedge run` in a subprocess for
// TestRunMQTTLastWillProcess and TestRunOutputsSurviveKill; it does
// nothing in a normal test run.
func TestMQTTHelperProcess(t *testing.T) {
	args := os.Getenv("VGGEDGE_MQTT_HELPER")
	if args == "" {
		t.Skip("helper process of TestRunMQTTLastWillProcess")
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		t.Fatal(err)
	}
	code, err := runRun(argv, io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// Bad MQTT and snapshot flags: exit 2 and one line naming the flag.
func TestRunMQTTFlagErrors(t *testing.T) {
	ca := t.TempDir() + "/ca.pem"
	os.WriteFile(ca, []byte("not a certificate"), 0o644)
	pwFile, emptyFile := t.TempDir()+"/pw", t.TempDir()+"/empty"
	os.WriteFile(pwFile, []byte("secret\n"), 0o600)
	os.WriteFile(emptyFile, []byte("\n"), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--mqtt", "http://host"}, `--mqtt http://host: scheme "http": want mqtt://`},
		{[]string{"--mqtt", "mqtt://"}, `--mqtt mqtt:: want mqtt://[user:pass@]host[:port]`},
		{[]string{"--mqtt", "mqtt://h/topic"}, `--mqtt mqtt://h/topic: want`},
		{[]string{"--mqtt", "mqtt://u:secret@h", "--mqtt-ca", ca}, `--mqtt-ca ` + ca + `: only for mqtts:// brokers, --mqtt is mqtt://u:xxxxx@h:1883`},
		{[]string{"--mqtt", "mqtts://h", "--mqtt-ca", ca}, `--mqtt-ca ` + ca + `: no PEM certificate in it`},
		{[]string{"--mqtt", "mqtts://h", "--mqtt-ca", ca + ".missing"}, `--mqtt-ca: open ` + ca + `.missing: no such file`},
		{[]string{"--mqtt", "mqtt://h", "--device-id", "Kitchen Pi"}, `--device-id "Kitchen Pi": want 1..64 of a-z, 0-9, _ and -`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-format", "xml"}, `--mqtt-format "xml": want json or msgpack`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-format", "msgpack", "--mqtt-discovery"}, `--mqtt-discovery needs --mqtt-format json`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-when", "cat"}, `--mqtt-when cat: not a label of the model`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-off-score", "0.9"}, `--mqtt-off-score 0.9: want 0 ≤ off-score < on-score (0.8)`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-queue", "0"}, `--mqtt-queue 0: want 1..65536`},
		{[]string{"--mqtt", "mqtt://h", "--mqtt-stats-every", "-1s"}, `--mqtt-stats-every -1s: want a duration ≥ 0`},
		{[]string{"--mqtt", "mqtt://u:secret@[::1"}, `--mqtt "mqtt://u:xxxxx@[::1": missing ']' in host`},
		{[]string{"--mqtt", "u:secret@host"}, `--mqtt u:xxxxx@host: scheme "u"`},
		{[]string{"--mqtt-password-file", pwFile}, `--mqtt-password-file needs --mqtt URL`},
		{[]string{"--mqtt", "mqtt://u:secret@h", "--mqtt-password-file", pwFile}, `--mqtt-password-file ` + pwFile + `: --mqtt mqtt://u:xxxxx@h:1883 has a password already`},
		{[]string{"--mqtt", "mqtt://u@h", "--mqtt-password-file", pwFile + ".missing"}, `--mqtt-password-file: open ` + pwFile + `.missing: no such file`},
		{[]string{"--mqtt", "mqtt://u@h", "--mqtt-password-file", emptyFile}, `--mqtt-password-file ` + emptyFile + `: empty first line`},
		{[]string{"--mqtt-discovery"}, `--mqtt-discovery needs --mqtt URL`},
		{[]string{"--mqtt-when", "7"}, `--mqtt-when needs --mqtt URL or --snapshot-dir DIR`},
		{[]string{"--snapshot-when", "7"}, `--snapshot-when needs --snapshot-dir DIR`},
		{[]string{"--snapshot-dir", t.TempDir(), "--snapshot-when", "cat"}, `--snapshot-when cat: not a label of the model`},
		{[]string{"--snapshot-dir", t.TempDir(), "--snapshot-max-files", "-1"}, `--snapshot-max-files -1: want ≥ 0`},
	} {
		args := append([]string{"--source", "bundled:digits?fps=0", "--max-frames", "1"}, tt.args...)
		code, _, errOut := runLiveCLI(t, context.Background(), args...)
		if code != exitBadInput || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 2 and %q", tt.args, code, errOut, tt.want)
		}
		if strings.Contains(errOut, "secret") {
			t.Errorf("%q: the password is in the log:\n%s", tt.args, errOut)
		}
	}
}

// A broker that is not there at start does not fail the run: the frames
// are classified, the events dropped and counted, and the log says why.
func TestRunMQTTBrokerAbsent(t *testing.T) {
	b := mqtttest.Start(t, "127.0.0.1:0")
	addr := b.Addr
	b.Stop()
	code, out, errOut := runLiveCLI(t, context.Background(), "--source", "idx:"+gomnistDir(t), "--max-frames", "300",
		"--mqtt", "mqtt://"+addr, "--mqtt-queue", "2", "--mqtt-stats-every", "0")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != 300 {
		t.Errorf("%d results, want 300", n)
	}
	sc := bufio.NewScanner(strings.NewReader(errOut))
	var refused, summary bool
	for sc.Scan() {
		refused = refused || strings.Contains(sc.Text(), "connection refused")
		summary = summary || regexp.MustCompile(`mqtt: 0 events published, [1-9]\d* dropped`).MatchString(sc.Text())
	}
	if !refused || !summary {
		t.Errorf("want the refused connection and the dropped events in the log:\n%s", errOut)
	}
}

// Snapshots through the real command, without a broker: each event of
// --snapshot-when saves the picture (28x28 digits), the log names it,
// and rotation keeps the newest --snapshot-max-files.
func TestRunSnapshots(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runLiveCLI(t, context.Background(), "--source", "bundled:digits?fps=100", "--max-frames", "300",
		"--output", "jsonl:"+os.DevNull, "--mqtt-when", "1,7", "--snapshot-dir", dir, "--snapshot-when", "1", "--snapshot-max-files", "4")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	re := regexp.MustCompile(`event: (appeared|changed|disappeared) (\S+) \([0-9.]+\) at frame (\d+)(?:, snapshot (\S+))?`)
	var names []string
	var exact, events int
	for _, m := range re.FindAllStringSubmatch(errOut, -1) {
		events++
		wantSnap := m[1] != mqtt.EventDisappeared && m[2] == "1"
		if (m[4] != "") != wantSnap {
			t.Errorf("%q: snapshot %q, want one only for 1 appearing or changing to 1", m[0], m[4])
		}
		if m[4] == "" {
			continue
		}
		names = append(names, m[4])
		var snapFrame uint64
		fmt.Sscanf(m[4][strings.Index(m[4], "-f")+2:], "%d", &snapFrame)
		frame, _ := strconv.ParseUint(m[3], 10, 64)
		if snapFrame < frame {
			t.Errorf("%q: the snapshot shows an older frame than the event's", m[0])
		}
		if snapFrame == frame {
			exact++
		}
	}
	if len(names) < 5 {
		t.Fatalf("%d snapshots over %d events, want more than 4 to see rotation:\n%s", len(names), events, errOut)
	}
	var have []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		have = append(have, e.Name())
		if w, h, _ := decodeJPEGFile(t, filepath.Join(dir, e.Name())); w != 28 || h != 28 {
			t.Errorf("%s: %dx%d, want the 28x28 digit", e.Name(), w, h)
		}
	}
	if want := names[len(names)-4:]; strings.Join(have, " ") != strings.Join(want, " ") {
		t.Errorf("folder holds %q, want the newest 4 %q", have, want)
	}
	t.Logf("%d events, %d snapshots, %d of the event's own frame", events, len(names), exact)
}

func TestRedactURLs(t *testing.T) {
	for in, want := range map[string]string{
		"source pipe:ffmpeg -i rtsp://admin:hunter2@cam/x -f rawvideo -": "source pipe:ffmpeg -i rtsp://admin:xxxxx@cam/x -f rawvideo -",
		"gocv:rtsp://a:b@1.2.3.4:554/s and mqtt://u:p@w@h:1883":          "gocv:rtsp://a:xxxxx@1.2.3.4:554/s and mqtt://u:xxxxx@h:1883",
		"mqtt://u@h:1883 http://h/a:b@c":                                 "mqtt://u@h:1883 http://h/a:b@c",
		"want mqtt://[user:pass@]host[:port]":                            "want mqtt://[user:pass@]host[:port]",
		"rtsp://admin:p%40ss:w0rd@cam":                                   "rtsp://admin:xxxxx@cam",
		"no url":                                                         "no url",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// A log line quoting something from outside (a child's stderr, a broker's
// reason string) reaches the terminal with its escapes escaped.
func TestRunLogEscapes(t *testing.T) {
	var b bytes.Buffer
	newRunLog(&b, false).warnf("camera said %q… raw: %s", "x", "\x1b]0;owned\x07 and rtsp://a:b@c")
	if got := b.String(); strings.ContainsAny(got[:len(got)-1], "\x1b\x07\n") || !strings.Contains(got, `\x1b]0;owned\a and rtsp://a:xxxxx@c`) {
		t.Errorf("log line %q", got)
	}
}
