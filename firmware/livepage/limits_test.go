package livepage

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vggedge/vggedge/camera"
)

// withHTTPLimits shortens the live page's limits for one test.
func withHTTPLimits(t *testing.T, readTimeout time.Duration, maxConns int) {
	t.Helper()
	oldRT, oldMC := httpReadTimeout, httpMaxConns
	httpReadTimeout, httpMaxConns = readTimeout, maxConns
	t.Cleanup(func() { httpReadTimeout, httpMaxConns = oldRT, oldMC })
}

// readAllUntil reads c to EOF (or an error) and says how long that took.
func readAllUntil(c net.Conn, d time.Duration) (string, time.Duration, error) {
	t0 := time.Now()
	c.SetReadDeadline(t0.Add(d))
	b, err := io.ReadAll(c)
	return string(b), time.Since(t0), err
}

// 200 requests announcing a 100000-byte body they never send: each
// connection is closed within the read timeout (it used to stay open for
// good), whatever the method.
func TestHTTPSinkBodylessRequestsClosed(t *testing.T) {
	const timeout = 500 * time.Millisecond
	withHTTPLimits(t, timeout, 256)
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	var failures []string
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				mu.Lock()
				failures = append(failures, err.Error())
				mu.Unlock()
				return
			}
			defer c.Close()
			method := []string{"POST", "GET"}[i%2]
			fmt.Fprintf(c, "%s /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n", method)
			_, took, err := readAllUntil(c, 30*time.Second)
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, took)
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s: still open after %v: %v", method, took, err))
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d connections: %s", len(failures), n, failures[0])
	}
	t.Logf("%d body-less requests: every connection closed by the server, the slowest after %v (read timeout %v)", n, slowest, timeout)
}

// Headers beyond 8 KiB are refused with 431; a burst of 200 connections
// each sending 1 MB of headers is refused without the heap growing with it.
func TestHTTPSinkHeaderLimit(t *testing.T) {
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	pads := map[int]string{6 << 10: strings.Repeat("a", 6<<10), 1 << 20: strings.Repeat("a", 1<<20)} // shared: the heap below is the server's
	req := func(headerBytes int) (int, error) {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		go func() { // the server may answer (and close) before all is sent
			io.WriteString(c, "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "+pads[headerBytes]+"\r\n\r\n")
		}()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := req(6 << 10); err != nil || code != http.StatusOK {
		t.Errorf("6 KiB of headers: %d, %v; want 200", code, err)
	}
	if code, err := req(1 << 20); err != nil || code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MiB of headers: %d, %v; want 431", code, err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	codes := make([]int, 200)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = req(1 << 20)
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	for i, c := range codes {
		if c != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("burst request %d: status %d, want 431", i, c)
			break
		}
	}
	t.Logf("200 x 1 MiB of headers: all refused; heap in use %d -> %d KiB", before.HeapInuse>>10, after.HeapInuse>>10)
}

// At most httpMaxConns connections are served at once: one more waits
// until another closes, then it is served.
func TestHTTPSinkConnectionCap(t *testing.T) {
	withHTTPLimits(t, 15*time.Second, 4)
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	var held []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n") // unfinished
		held = append(held, c)
	}
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("the fifth connection was served while 4 were held (%d bytes, %v)", n, err)
	}
	held[0].Close()
	out, _, err := readAllUntil(c, 30*time.Second)
	if err != nil || !strings.HasPrefix(out, "HTTP/1.1 200") {
		t.Fatalf("after one closed, the fifth got %q, %v; want 200", out[:min(len(out), 40)], err)
	}
}

// The MJPEG stream outlives the read timeout: only its write deadline
// applies once its request is read.
func TestHTTPSinkStreamOutlivesReadTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	withHTTPLimits(t, timeout, 256)
	s, _ := startServer(t, "127.0.0.1:0", sampleStats())
	mr, body := streamReader(t, s)
	defer body.Close()
	t0 := time.Now()
	for i := range 3 {
		s.ObservePicture(rgbFrame(camera.RGB24, 32, 24, uint64(100+i)))
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d, %v after the stream opened (read timeout %v): %v", i, time.Since(t0), timeout, err)
		}
		io.Copy(io.Discard, part)
		time.Sleep(2 * timeout) // let the read timeout pass: the stream must not care
	}
}

// The Host check: IP addresses, loopback names, this machine's hostname
// and --http-allow-host names are served; any other name gets 403 (a page
// on another site reaching the camera by DNS rebinding).
func TestHTTPSinkHostCheck(t *testing.T) {
	s, log := startServer(t, "127.0.0.1:0", sampleStats(), "cam.example.org")
	_, port, _ := net.SplitHostPort(s.addr)
	hn, _ := os.Hostname()
	for host, want := range map[string]int{
		"127.0.0.1:" + port:            200,
		"[::1]:" + port:                200,
		"10.0.0.7":                     200,
		"localhost:" + port:            200,
		"LocalHost.":                   200,
		"app.localhost:" + port:        200,
		"cam.example.org:" + port:      200,
		strings.ToLower(hn) + ".local": 200,
		"evil.example:" + port:         403,
		"127.0.0.1.evil.example":       403,
		"cam.example.org.evil.test":    403,
	} {
		req, _ := http.NewRequest("GET", s.testURL("/api/status"), nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("Host %s: %v", host, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
		if want == 403 && !strings.Contains(string(b), "--http-allow-host") {
			t.Errorf("Host %s: body %q does not say how to allow it", host, b)
		}
	}
	if !strings.Contains(log.String(), `refused a request for host "evil.example:`) && !strings.Contains(log.String(), "refused a request for host") {
		t.Errorf("no log line for the refused host:\n%s", log)
	}
}
