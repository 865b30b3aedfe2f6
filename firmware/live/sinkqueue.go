package live

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// sinkQueue runs one Sink on its own goroutine behind a bounded ring of
// preallocated Result slots. Put copies a result into a free slot and never
// waits: when the ring is full the result is dropped and counted, so a slow
// or stuck sink costs its own results, never the loop's frame rate.
type sinkQueue struct {
	name string
	sink Sink
	logf func(string, ...any)

	mu     sync.Mutex
	slots  []Result // ring; each Top has capacity topK
	head   int      // oldest queued slot
	n      int      // queued slots
	closed bool

	wake     chan struct{} // cap 1: "there is work or we are closing"
	finished chan struct{} // closed when the writer goroutine returns

	dropped atomic.Uint64 // results refused because the ring was full
	written atomic.Uint64
	failed  atomic.Uint64 // Write errors
}

// flusher is a sink with buffered output: the queue flushes it whenever it
// runs dry, so output is batched under load and prompt when idle.
type flusher interface {
	Flush() error
}

// newSinkQueue starts the writer goroutine for sink with depth slots, each
// able to hold topK classes.
func newSinkQueue(name string, sink Sink, depth, TopK int, logf func(string, ...any)) *sinkQueue {
	q := &sinkQueue{
		name: name, sink: sink, logf: logf,
		slots:    make([]Result, depth),
		wake:     make(chan struct{}, 1),
		finished: make(chan struct{}),
	}
	for i := range q.slots {
		q.slots[i].Top = make([]Class, 0, TopK)
	}
	go q.run(TopK)
	return q
}

// Put copies r into the ring. It reports false (and counts a drop) when the
// ring is full or the queue is closed. It allocates nothing while r.Top
// fits the slots' capacity.
func (q *sinkQueue) Put(r *Result) bool {
	q.mu.Lock()
	if q.closed || q.n == len(q.slots) {
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	s := &q.slots[(q.head+q.n)%len(q.slots)]
	top := append(s.Top[:0], r.Top...)
	*s = *r
	s.Top = top
	q.n++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// run is the writer goroutine: it copies the oldest slot out (so Put can
// reuse it at once) and writes it without holding the lock.
func (q *sinkQueue) run(TopK int) {
	defer close(q.finished)
	cur := Result{Top: make([]Class, 0, TopK)}
	for {
		q.mu.Lock()
		for q.n == 0 {
			closed := q.closed
			q.mu.Unlock()
			if f, ok := q.sink.(flusher); ok {
				if err := f.Flush(); err != nil {
					q.fail(err)
				}
			}
			if closed {
				return
			}
			<-q.wake
			q.mu.Lock()
		}
		s := &q.slots[q.head]
		top := append(cur.Top[:0], s.Top...)
		cur = *s
		cur.Top = top
		q.head = (q.head + 1) % len(q.slots)
		q.n--
		q.mu.Unlock()
		if err := q.sink.Write(&cur); err != nil {
			q.fail(err)
		} else {
			q.written.Add(1)
		}
	}
}

// fail counts a write error and logs the first and then every 1000th, so a
// dead sink does not flood the journal.
func (q *sinkQueue) fail(err error) {
	n := q.failed.Add(1)
	if n == 1 || n%1000 == 0 {
		q.logf("output %s: %v (%d errors so far)", q.name, err, n)
	}
}

// Close stops taking results, waits up to timeout for the queued ones to
// be written and flushed, and closes the sink. A sink stuck in Write is
// closed anyway (which unblocks most) and reported.
func (q *sinkQueue) Close(timeout time.Duration) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	var stuck error
	select {
	case <-q.finished:
	case <-time.After(timeout):
		q.mu.Lock()
		left := q.n
		q.mu.Unlock()
		stuck = fmt.Errorf("output %s: still writing after %v; %d queued results lost", q.name, timeout, left)
	}
	if err := q.sink.Close(); err != nil {
		return fmt.Errorf("output %s: close: %w", q.name, err)
	}
	return stuck
}
