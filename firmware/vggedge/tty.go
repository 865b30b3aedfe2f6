package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal (golang.org/x/term: an ioctl on
// the descriptor, so a character device that is not a terminal, such as
// /dev/null, is not one). Progress lines and redrawn tables are written only
// to terminals: under systemd, into a file or a pipe the output stays plain.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
