package torchio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// gopickle's unpickler allocates every length prefix it reads before
// reading the bytes (make([]byte, n) for BINUNICODE, BINBYTES8, FRAME, …),
// so a 20-byte hostile pickle can ask for exabytes. scanPickle walks the
// opcodes first — the way Python's pickletools.genops does — checking each
// length against the bytes actually left, and hands gopickle only a pickle
// it has fully read. It also bounds MARK nesting: each MARK makes gopickle
// allocate a new stack, the cheapest way to turn a small file into a lot
// of memory.

// pickleMaxMarkDepth bounds nested MARKs. A state_dict pickle nests 3 deep.
const pickleMaxMarkDepth = 1000

// pickleArg is how an opcode's argument is encoded in the stream.
type pickleArg uint8

const (
	argNone     pickleArg = iota
	argFixed1             // 1 byte
	argFixed2             // 2 bytes
	argFixed4             // 4 bytes
	argFixed8             // 8 bytes
	argLine               // up to and including '\n'
	argTwoLines           // GLOBAL and INST: module\nname\n
	argLen1               // 1-byte length, then that many bytes
	argLen4               // 4-byte little-endian length, then the bytes
	argLen8               // 8-byte little-endian length, then the bytes
	argFrame              // 8-byte length of the frame that follows (its opcodes are scanned too)
)

// pickleOps maps every opcode of pickle protocols 0–5 (Lib/pickletools.py)
// to its argument; an opcode not listed is rejected.
var pickleOps = map[byte]pickleArg{
	'(': argNone, '.': argNone, '0': argNone, '1': argNone, '2': argNone,
	'F': argLine, 'I': argLine, 'J': argFixed4, 'K': argFixed1, 'L': argLine,
	'M': argFixed2, 'N': argNone, 'P': argLine, 'Q': argNone, 'R': argNone,
	'S': argLine, 'T': argLen4, 'U': argLen1, 'V': argLine, 'X': argLen4,
	'a': argNone, 'b': argNone, 'c': argTwoLines, 'd': argNone, '}': argNone,
	'e': argNone, 'g': argLine, 'h': argFixed1, 'i': argTwoLines, 'j': argFixed4,
	'l': argNone, ']': argNone, 'o': argNone, 'p': argLine, 'q': argFixed1,
	'r': argFixed4, 's': argNone, 't': argNone, ')': argNone, 'u': argNone,
	'G': argFixed8, 'B': argLen4, 'C': argLen1,
	0x80: argFixed1, // PROTO
	0x81: argNone,   // NEWOBJ
	0x82: argFixed1, // EXT1
	0x83: argFixed2, // EXT2
	0x84: argFixed4, // EXT4
	0x85: argNone,   // TUPLE1
	0x86: argNone,   // TUPLE2
	0x87: argNone,   // TUPLE3
	0x88: argNone,   // NEWTRUE
	0x89: argNone,   // NEWFALSE
	0x8a: argLen1,   // LONG1
	0x8b: argLen4,   // LONG4
	0x8c: argLen1,   // SHORT_BINUNICODE
	0x8d: argLen8,   // BINUNICODE8
	0x8e: argLen8,   // BINBYTES8
	0x8f: argNone,   // EMPTY_SET
	0x90: argNone,   // ADDITEMS
	0x91: argNone,   // FROZENSET
	0x92: argNone,   // NEWOBJ_EX
	0x93: argNone,   // STACK_GLOBAL
	0x94: argNone,   // MEMOIZE
	0x95: argFrame,  // FRAME
	0x96: argLen8,   // BYTEARRAY8
	0x97: argNone,   // NEXT_BUFFER
	0x98: argNone,   // READONLY_BUFFER
}

// pickleMarkUsers are the opcodes that pop everything down to the last MARK.
var pickleMarkUsers = map[byte]bool{
	'1': true, 'e': true, 'd': true, 'l': true, 'o': true, 't': true,
	'u': true, 'i': true, 0x90: true, 0x91: true,
}

var errPickleTooLong = errors.New("pickle longer than its limit")

// scanPickle reads one pickle, through its STOP opcode, from r and returns
// its bytes. It never buffers more than limit bytes, and fails on any
// length argument that would reach past limit.
func scanPickle(r *bufio.Reader, limit int) ([]byte, error) {
	s := pickleScan{r: r, limit: limit}
	for {
		at := len(s.out)
		op, err := s.byte()
		if err != nil {
			return nil, err
		}
		arg, ok := pickleOps[op]
		if !ok {
			return nil, fmt.Errorf("pickle: unknown opcode 0x%02x at byte %d", op, at)
		}
		if op == '(' {
			if s.depth++; s.depth > pickleMaxMarkDepth {
				return nil, fmt.Errorf("pickle: more than %d nested MARKs", pickleMaxMarkDepth)
			}
		} else if pickleMarkUsers[op] && s.depth > 0 {
			s.depth--
		}
		switch arg {
		case argFixed1:
			_, err = s.take(1)
		case argFixed2:
			_, err = s.take(2)
		case argFixed4:
			_, err = s.take(4)
		case argFixed8, argFrame:
			// A frame's length is checked like a data length (gopickle
			// allocates it), and its opcodes are then scanned in line.
			var b []byte
			if b, err = s.take(8); err == nil && arg == argFrame {
				err = s.fits(binary.LittleEndian.Uint64(b))
			}
		case argLine:
			err = s.line()
		case argTwoLines:
			if err = s.line(); err == nil {
				err = s.line()
			}
		case argLen1, argLen4, argLen8:
			err = s.lengthPrefixed(arg)
		}
		if err != nil {
			return nil, fmt.Errorf("pickle: opcode 0x%02x at byte %d: %w", op, at, err)
		}
		if op == '.' {
			return s.out, nil
		}
	}
}

type pickleScan struct {
	r     *bufio.Reader
	out   []byte
	limit int
	depth int
}

func (s *pickleScan) fits(n uint64) error {
	if n > uint64(s.limit-len(s.out)) {
		return fmt.Errorf("length %d: %w", n, errPickleTooLong)
	}
	return nil
}

func (s *pickleScan) byte() (byte, error) {
	if len(s.out) >= s.limit {
		return 0, errPickleTooLong
	}
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, fmt.Errorf("pickle: %w (no STOP opcode)", unexpected(err))
	}
	s.out = append(s.out, c)
	return c, nil
}

// take reads n more bytes; n has been checked against the limit.
func (s *pickleScan) take(n int) ([]byte, error) {
	if err := s.fits(uint64(n)); err != nil {
		return nil, err
	}
	at := len(s.out)
	s.out = append(s.out, make([]byte, n)...)
	if _, err := io.ReadFull(s.r, s.out[at:]); err != nil {
		return nil, unexpected(err)
	}
	return s.out[at:], nil
}

func (s *pickleScan) line() error {
	for {
		c, err := s.byte()
		if err != nil {
			return err
		}
		if c == '\n' {
			return nil
		}
	}
}

func (s *pickleScan) lengthPrefixed(arg pickleArg) error {
	var n uint64
	switch arg {
	case argLen1:
		b, err := s.take(1)
		if err != nil {
			return err
		}
		n = uint64(b[0])
	case argLen4:
		b, err := s.take(4)
		if err != nil {
			return err
		}
		// BINSTRING and LONG4 read it signed: a negative length is
		// beyond any limit here, as it is an error there.
		n = uint64(binary.LittleEndian.Uint32(b))
	case argLen8:
		b, err := s.take(8)
		if err != nil {
			return err
		}
		n = binary.LittleEndian.Uint64(b)
	}
	if err := s.fits(n); err != nil {
		return err
	}
	_, err := s.take(int(n))
	return err
}
