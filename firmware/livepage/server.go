package livepage

import (
	"github.com/vggedge/vggedge/firmware/live"

	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/netutil"
)

//go:embed page.html
var livePage []byte

const (
	// streamInterval caps /stream.mjpg at 10 fps: enough to see the camera,
	// cheap enough that JPEG encoding does not steal a Pi's inference cores.
	streamInterval = 100 * time.Millisecond
	// streamWriteTimeout drops a client that has not taken a part for this
	// long (a phone that went to sleep with the page open).
	streamWriteTimeout = 10 * time.Second
	// shutdownTimeout bounds Close; clients still attached after it are cut.
	shutdownTimeout = 3 * time.Second
	// maxPictureWidth is the widest picture the page is sent; larger
	// frames are shrunk by an integer factor before encoding.
	maxPictureWidth = 640
	jpegQuality     = 80
	streamBoundary  = "vggedgeframe"
)

var errNoPicture = errors.New("no picture yet")

// Limits of the live page's server against clients that misbehave (vars,
// so tests can shorten them).
var (
	// httpReadTimeout bounds reading a whole request, body included: a
	// request announcing a body it never sends is dropped. It ends with
	// the request: the MJPEG stream's response is not bound by it.
	httpReadTimeout = 15 * time.Second
	// httpMaxConns caps the connections served at once; further ones wait
	// in the listen backlog until one closes.
	httpMaxConns = 256
)

// httpMaxHeaderBytes bounds a request's headers (Go's default is 1 MiB):
// 8 KiB is plenty for a browser and keeps 200 connections well below a
// megabyte each.
const httpMaxHeaderBytes = 8 << 10

// Server serves the live page, the camera stream, /api/status and
// /metrics. The loop's side (ObservePicture, Write) only copies under a
// mutex; every encoding happens on the HTTP goroutines, and only while
// someone is asking.
type Server struct {
	stats live.StatsSource
	logf  func(string, ...any)
	addr  string // the address actually bound, host:port
	srv   *http.Server

	done      chan struct{} // closed by Close: streams end
	closeOnce sync.Once
	served    chan struct{} // closed when Serve has returned

	mu     sync.Mutex // guards the fields below; held for copies only
	slots  [pictureSlots]pictureSlot
	picN   uint64      // pictures observed; 0 = none yet
	newest int         // the slot of the newest picture
	shown  int         // the slot the page is served (see pair.go); -1 before the first picture
	shownV uint64      // bumped whenever what shown names changes
	paired bool        // some picture has had its result
	res    live.Result // the newest result, for /api/status; Top's capacity is reused
	resN   uint64      // results written; 0 = none yet

	streams atomic.Int32 // /stream.mjpg clients attached

	// cutMu guards cut: the open streams' controllers, so that Close can
	// end a write stuck on a client that stopped reading.
	cutMu sync.Mutex
	cut   map[*http.ResponseController]struct{}

	enc pictureEncoder

	allowHosts   map[string]bool // Host names served besides IP literals and loopback names
	hostRejected atomic.Uint64
}

// New listens on addr and serves the live page until Close. Its
// errors leave out the flag's name: the caller says "--http ADDR: ". An
// address without a host (":8080", or just "8080") binds the loopback
// interface only: showing a camera to the network is something a user asks
// for by naming the interface ("0.0.0.0:8080").
//
// Requests whose Host header is not an IP address, a loopback name
// (localhost, *.localhost), this machine's hostname (and hostname.local),
// the host of addr or one of allowHosts are refused (403): a web page on
// another site cannot read the camera through DNS rebinding.
func New(addr string, stats live.StatsSource, logf func(string, ...any), allowHosts ...string) (live.PictureSink, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bind, err := BindAddr(addr)
	if err != nil {
		return nil, err
	}
	if bind != addr {
		logf("live page: --http %q names no interface, listening on loopback %s only (use 0.0.0.0:PORT to serve the network)", addr, bind)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen on %s: address already in use (another vggedge or web server has that port; pick another)", bind)
		}
		return nil, fmt.Errorf("live page: %w", err)
	}
	// Report the host as named (Go reports 0.0.0.0 as [::], its dual-stack
	// socket) with the port actually bound (for :0).
	host, _, _ := net.SplitHostPort(bind)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := &Server{
		stats:  stats,
		logf:   logf,
		addr:   net.JoinHostPort(host, port),
		done:   make(chan struct{}),
		served: make(chan struct{}),
		cut:    map[*http.ResponseController]struct{}{},
		shown:  -1,

		allowHosts: map[string]bool{},
	}
	for _, h := range append(allowHosts, host) {
		if h = strings.ToLower(strings.TrimSuffix(h, ".")); h != "" {
			s.allowHosts[h] = true
		}
	}
	if hn, err := os.Hostname(); err == nil && hn != "" {
		hn = strings.ToLower(hn)
		s.allowHosts[hn], s.allowHosts[hn+".local"] = true, true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /stream.mjpg", s.serveStream)
	mux.HandleFunc("GET /snapshot.jpg", s.serveSnapshot)
	mux.HandleFunc("GET /api/status", s.serveStatus)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.srv = &http.Server{
		Handler:           s.checkHost(mux),
		ReadHeaderTimeout: 10 * time.Second, // a client that never finishes its request holds nothing for long
		ReadTimeout:       httpReadTimeout,  // nor one that never sends the body it announced
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    httpMaxHeaderBytes,
	}
	limited := netutil.LimitListener(ln, httpMaxConns)
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(limited); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("live page: %v", err)
		}
	}()
	logf("live page: %s", s.URL())
	return s, nil
}

// checkHost refuses requests for a Host the page is not served as.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			if n := s.hostRejected.Add(1); n&(n-1) == 0 {
				s.logf("live page: refused a request for host %s (%d so far): not this machine's; allow it with --http-allow-host", quoteShort(r.Host, 80), n)
			}
			http.Error(w, "vggedge: host "+strconv.Quote(r.Host)+" is not served here (DNS rebinding?); start vggedge with --http-allow-host to allow it", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) hostAllowed(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if h == "" {
		return true // an HTTP/1.0 client without Host: browsers always send one
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true // an IP literal cannot be rebound to another site's name
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || s.allowHosts[h]
}

// liveBindAddr applies the loopback rule to a --http value.
func BindAddr(addr string) (string, error) {
	if addr != "" && strings.Trim(addr, "0123456789") == "" {
		addr = ":" + addr // a bare port
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q: want HOST:PORT or :PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return "", fmt.Errorf("%q: port %q is not a number in 0..65535", addr, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// URL is the page's address as a browser on this machine reaches it.
func (s *Server) URL() string {
	host, port, _ := net.SplitHostPort(s.addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "http://" + net.JoinHostPort(host, port) + "/ (all interfaces: use this board's address)"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// Close ends the streams, then shuts the server down; clients that do not
// let go within shutdownTimeout are disconnected.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		s.cutMu.Lock()
		for rc := range s.cut {
			rc.SetWriteDeadline(time.Now()) // a blocked Write returns now
		}
		s.cutMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if serr := s.srv.Shutdown(ctx); serr != nil {
			s.srv.Close()
			if !errors.Is(serr, context.DeadlineExceeded) {
				err = fmt.Errorf("live page: shutdown: %w", serr)
			}
		}
		<-s.served
	})
	return err
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(livePage)
}

// serveStream sends the picture as multipart/x-mixed-replace JPEGs, one
// part each time a new picture exists, at most every streamInterval.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	s.streams.Add(1)
	defer s.streams.Add(-1)
	h := w.Header()
	h.Set("Content-Type", "multipart/x-mixed-replace; boundary="+streamBoundary)
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(w)
	s.cutMu.Lock()
	select {
	case <-s.done:
		s.cutMu.Unlock()
		return
	default:
	}
	s.cut[rc] = struct{}{}
	s.cutMu.Unlock()
	defer func() {
		s.cutMu.Lock()
		delete(s.cut, rc)
		s.cutMu.Unlock()
	}()
	// ReadTimeout does not end a stream that runs for hours: net/http
	// clears the read deadline once a body-less request is read (its
	// background read), so only the write deadline below applies
	// (TestHTTPSinkStreamOutlivesReadTimeout).
	// Each part's headers go out with its picture, since they name its
	// frame (X-Frame) and that frame's result (X-Result), and Content-Length
	// says where it ends; the boundary after it goes out right away. The
	// page reads the stream itself and takes each part as soon as its
	// bytes are in. (Chromium's own MJPEG viewer shows a part only once the
	// next part's headers arrive: one picture late.)
	rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := io.WriteString(w, "--"+streamBoundary+"\r\n"); err != nil {
		return
	}
	rc.Flush()
	tick := time.NewTicker(streamInterval)
	defer tick.Stop()
	var sent uint64
	var head []byte
	for {
		if pic, err := s.enc.latest(s); err == nil && pic.version != sent {
			sent = pic.version
			head = partHeader(head[:0], &pic)
			rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := w.Write(head); err != nil {
				return
			}
			if _, err := w.Write(pic.jpeg); err != nil {
				return
			}
			if _, err := io.WriteString(w, "\r\n--"+streamBoundary+"\r\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		} else if err != nil && !errors.Is(err, errNoPicture) {
			s.logf("live page: stream: %v", err)
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// partHeader appends the headers of pic's part of the stream to b.
func partHeader(b []byte, pic *encodedPicture) []byte {
	b = append(b, "Content-Type: image/jpeg\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(pic.jpeg)), 10)
	b = append(b, "\r\nX-Frame: "...)
	b = strconv.AppendUint(b, pic.seq, 10)
	if pic.result != nil {
		b = append(b, "\r\nX-Result: "...)
		b = append(b, pic.result...)
	}
	return append(b, "\r\n\r\n"...)
}

func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	pic, err := s.enc.latest(s)
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("X-Content-Type-Options", "nosniff")
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, errNoPicture) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
		return
	}
	h.Set("Content-Type", "image/jpeg")
	h.Set("Content-Length", strconv.Itoa(len(pic.jpeg)))
	h.Set("X-Frame", strconv.FormatUint(pic.seq, 10))
	if pic.result != nil {
		h.Set("X-Result", string(pic.result))
	}
	w.Write(pic.jpeg)
}

// quoteShort is s quoted (strconv.Quote escapes every control and format
// character, so a Host header cannot drive the terminal) and cut to max
// runes.
func quoteShort(s string, max int) string {
	q := []rune(strconv.Quote(s))
	if len(q) <= max {
		return string(q)
	}
	return string(q[:max]) + "…"
}
