package camera

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Child-process supervision for the sources that read a program's stdout
// (pipe:, csi://). The child runs in its own process group (so a shell
// pipeline dies as a whole), dies with us (Pdeathsig on Linux), gets
// SIGTERM and then SIGKILL on Close, and is always reaped. When it exits
// or closes its stdout mid-run it is restarted after a backoff.

// How long a child gets between SIGTERM and SIGKILL, and how long an
// exiting child (its stdout at EOF) gets to report its status before it is
// stopped.
const (
	childTermGrace = 2 * time.Second
	childExitGrace = time.Second
)

// child is one run of the supervised program.
type child struct {
	cmd    *exec.Cmd
	out    *os.File      // read end of its stdout
	exited chan struct{} // closed once Wait returned (the child is reaped)
	err    error         // Wait's result, valid after exited

	stderrMu   sync.Mutex
	stderrLast string        // the last line it wrote to stderr, for the log
	stderrDone chan struct{} // closed when its stderr reached EOF
}

// startChild runs argv with stdout on a pipe we read and stderr scanned
// for its last line.
func startChild(argv []string) (*child, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	c := &child{out: outR, exited: make(chan struct{}), stderrDone: make(chan struct{})}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Stdout, c.cmd.Stderr = outW, errW
	c.cmd.SysProcAttr = childProcAttr()
	err = c.cmd.Start()
	// The child holds its own copies; ours would keep the pipes open
	// after it exits.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	go c.scanStderr(errR)
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// scanStderr keeps the child's last stderr line (bounded) so that the
// restart message can say why it died.
func (c *child) scanStderr(r *os.File) {
	defer close(c.stderrDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if len(line) > 200 {
			line = line[:200] + "…"
		}
		c.stderrMu.Lock()
		c.stderrLast = line
		c.stderrMu.Unlock()
	}
}

// stop ends the child's process group (SIGTERM, then SIGKILL after a
// grace period), waits until it is reaped and closes our end of its
// stdout.
func (c *child) stop() {
	select {
	case <-c.exited:
	default:
		signalChildGroup(c.cmd, false)
		t := time.NewTimer(childTermGrace)
		select {
		case <-c.exited:
		case <-t.C:
		}
		t.Stop()
	}
	// Also after a clean exit: grandchildren of a shell pipeline may
	// still hold the group.
	signalChildGroup(c.cmd, true)
	<-c.exited
	c.out.Close()
}

// status describes how the child ended, for the log.
func (c *child) status() string {
	s := "exit status 0"
	if c.err != nil {
		s = c.err.Error()
	}
	// Its last words may still be in the pipe; a grandchild holding
	// stderr open must not stall the log, hence the bound.
	t := time.NewTimer(100 * time.Millisecond)
	select {
	case <-c.stderrDone:
	case <-t.C:
	}
	t.Stop()
	c.stderrMu.Lock()
	defer c.stderrMu.Unlock()
	if c.stderrLast != "" {
		s += ": " + c.stderrLast
	}
	return s
}

// supervisor keeps one child of a program running for a source.
type supervisor struct {
	uri  string   // the source, for the log: "csi://0"
	prog string   // the program, for the log: "rpicam-vid"
	argv []string // argv[0] is what is executed
	o    Options

	mu      sync.Mutex
	cur     *child
	gen     uint64 // counts children started, so readers notice a new stdout
	backoff backoffPolicy

	done      chan struct{}
	closeOnce sync.Once
	restarts  atomic.Uint64

	// finite: a child that exits 0 has delivered all its frames (a
	// pipe: command on a file) and the source ends, not restarts. A
	// camera program that exits, even with 0, is restarted.
	finite bool
	ended  bool // a finite child exited 0; guarded by mu
	// once: a child that fails is not run again (a video file's
	// decoder, which would start the file over); failed is how it ended,
	// what output returns from then on. Guarded by mu.
	once   bool
	failed error
}

// ErrEnded is what a supervised source's Read returns once its command
// exited 0: the end of its frames. It is an io.EOF, so the loop stops
// cleanly, and a reconnecting wrapper does not reopen the source.
var ErrEnded = fmt.Errorf("the command exited with status 0 (end of its frames): %w", io.EOF)

func newSupervisor(uri, prog string, argv []string, o Options) *supervisor {
	return &supervisor{uri: uri, prog: prog, argv: argv, o: o, backoff: newBackoff(o), done: make(chan struct{})}
}

// start launches the first child, so that Open fails when the program
// cannot run at all.
func (s *supervisor) start() error {
	c, err := startChild(s.argv)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.prog, err)
	}
	s.mu.Lock()
	s.cur, s.gen = c, s.gen+1
	s.mu.Unlock()
	return nil
}

// output returns the running child's stdout and its generation, starting
// a child (with backoff between failures) when none runs. It returns
// ErrClosed once the supervisor is closed.
func (s *supervisor) output() (*os.File, uint64, error) {
	for {
		s.mu.Lock()
		select {
		case <-s.done:
			ended, failed := s.ended, s.failed
			s.mu.Unlock()
			if ended {
				return nil, 0, ErrEnded
			}
			if failed != nil {
				return nil, 0, failed
			}
			return nil, 0, ErrClosed
		default:
		}
		if s.cur != nil {
			out, gen := s.cur.out, s.gen
			s.mu.Unlock()
			return out, gen, nil
		}
		c, err := startChild(s.argv)
		if err == nil {
			s.cur, s.gen = c, s.gen+1
			s.restarts.Add(1)
			s.mu.Unlock()
			continue
		}
		wait := s.backoff.next()
		s.mu.Unlock()
		logf(s.o, "%s: start %s: %v; retrying in %v", s.uri, s.prog, err, wait)
		if !sleepOrDone(wait, s.done) {
			return nil, 0, ErrClosed
		}
	}
}

// restart stops the child of generation gen after reading from it failed
// with cause, logs why (through lim when not nil, which keeps repeated
// restarts for corrupt frames to one line a second), and waits out the
// backoff; the next output call starts a new child. It returns ErrClosed
// when the supervisor was closed, and, for a finite source, ErrEnded when
// the child exited 0.
func (s *supervisor) restart(gen uint64, cause error, lim *logLimiter) error {
	s.mu.Lock()
	c := s.cur
	if c == nil || s.gen != gen {
		s.mu.Unlock()
		if s.closed() {
			return ErrClosed
		}
		return nil
	}
	s.cur = nil
	wait := s.backoff.next()
	s.mu.Unlock()

	// A child whose stdout ended is usually exiting: give it a moment so
	// the log can carry its exit status. One that sends garbage or
	// nothing at all is alive: it is stopped at once.
	if !errors.Is(cause, errCorruptFrame) && !errors.Is(cause, os.ErrDeadlineExceeded) {
		t := time.NewTimer(childExitGrace)
		select {
		case <-c.exited:
		case <-t.C:
		case <-s.done:
		}
		t.Stop()
	}
	if s.closed() {
		c.stop()
		return ErrClosed
	}
	var why string
	select {
	case <-c.exited:
		if s.finite && c.err == nil {
			c.stop() // reaps what is left of its process group
			logf(s.o, "%s: %s exited (%s): the source ended", s.uri, s.prog, c.status())
			s.mu.Lock()
			s.ended = true
			s.mu.Unlock()
			s.close()
			return ErrEnded
		}
		why = "exited (" + c.status() + ")"
	default:
		if errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF) {
			cause = errors.New("closed its output")
		}
		why = fmt.Sprintf("stopped delivering frames (%v)", cause)
		if errors.Is(cause, errCorruptFrame) {
			why = fmt.Sprintf("sent only corrupt frames (%v)", cause)
		}
	}
	c.stop()
	if s.once {
		err := fmt.Errorf("%s %s", s.prog, why)
		s.mu.Lock()
		s.failed = err
		s.mu.Unlock()
		s.close()
		return err
	}
	if lim != nil {
		lim.logf(s.o, "%s: %s %s; restarting in %v", s.uri, s.prog, why, wait)
	} else {
		logf(s.o, "%s: %s %s; restarting in %v", s.uri, s.prog, why, wait)
	}
	if !sleepOrDone(wait, s.done) {
		return ErrClosed
	}
	return nil
}

// delivered notes a good frame: the next failure starts the backoff over.
func (s *supervisor) delivered() {
	s.mu.Lock()
	s.backoff.reset()
	s.mu.Unlock()
}

func (s *supervisor) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// pid is the running child's process id, or 0.
func (s *supervisor) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.cmd.Process == nil {
		return 0
	}
	return s.cur.cmd.Process.Pid
}

// close stops the child (which interrupts a blocked read of its stdout)
// and any backoff wait.
func (s *supervisor) close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		close(s.done)
		c := s.cur
		s.cur = nil
		s.mu.Unlock()
		if c != nil {
			c.stop()
		}
	})
}
