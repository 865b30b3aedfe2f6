package mqtt

// Test helpers (the main package has its own copies: test helpers cannot
// be shared across packages).

import (
	"fmt"
	"strings"
	"sync"

	"github.com/vggedge/vggedge/camera"
)

// syncLog collects log lines from any goroutine.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func grayFrame(w, h int, seq uint64) *camera.Frame {
	data := make([]byte, w*h)
	for i := range data {
		if i%w >= w/2 {
			data[i] = 200
		}
	}
	return &camera.Frame{Seq: seq, Format: camera.GRAY8, Width: w, Height: h, Data: data, Label: -1}
}
