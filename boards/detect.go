package boards

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/cpu"
)

// Detected is what Detect found out about the machine it runs on.
type Detected struct {
	// Board is the matching profile, the RAM variant chosen by MemTotal;
	// nil when no profile fits (Reason says why).
	Board *Board
	// Approximate is true when Board is the nearest profile rather than
	// this board's own: the same SoC family on a board without a profile
	// (a Pi 3 B, an AGX Xavier, an Orin NX). Reason names the difference.
	Approximate bool
	// Model is /proc/device-tree/model without its trailing NUL; "" when
	// there is no device tree (x86, ACPI arm64 servers).
	Model string
	// Compatible is /proc/device-tree/compatible split at its NULs, most
	// specific first.
	Compatible []string
	// MemTotalBytes is MemTotal from /proc/meminfo; 0 when unknown.
	MemTotalBytes int64
	// Features are the CPU features the running process can use.
	Features Features
	// Reason explains the match, or why there is none, for humans.
	Reason string
}

// The files detection reads, relative to the file system root.
const (
	dtModelPath      = "proc/device-tree/model"
	dtCompatiblePath = "proc/device-tree/compatible"
	meminfoPath      = "proc/meminfo"
	// maxProcFile bounds every read: these files are a few KiB, and a
	// strange file system must not make detection read without end.
	maxProcFile = 1 << 20
)

// Detect identifies the running board from the real /proc and the CPU
// features golang.org/x/sys/cpu reports (never /proc/cpuinfo, which under
// qemu-user shows the host).
func Detect() (*Detected, error) {
	return DetectFS(os.DirFS("/"), HostFeatures(), runtime.GOARCH)
}

// HostFeatures returns the running CPU's features from golang.org/x/sys/cpu,
// which honours GODEBUG=cpu.asimddp=off and the like.
func HostFeatures() Features {
	switch runtime.GOARCH {
	case "arm64":
		return Features{NEON: cpu.ARM64.HasASIMD, DotProd: cpu.ARM64.HasASIMDDP, I8MM: cpu.ARM64.HasI8MM}
	case "arm":
		return Features{NEON: cpu.ARM.HasNEON}
	case "amd64":
		return Features{AVX2: cpu.X86.HasAVX2, AVX512VNNI: cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
			cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI}
	}
	return Features{}
}

// socFallback maps a SoC compatible string to the nearest profile for boards
// with that SoC but no profile of their own; matching falls back to it only
// when no profile's Compatible matched.
var socFallback = []struct {
	soc, family, note string
}{
	{"brcm,bcm2837", "rpi3bplus", "another BCM2837 board (Pi 3 B at 1.2 GHz, Pi 3 A+, CM3): nearest profile rpi3bplus (1.4 GHz), estimates may be optimistic"},
	{"brcm,bcm2710", "rpi3bplus", "another BCM2837 board (Pi 3 B at 1.2 GHz, Pi 3 A+, CM3): nearest profile rpi3bplus (1.4 GHz), estimates may be optimistic"},
	{"nvidia,tegra210", "jetson-nano", "a Tegra X1 board other than the 4 GB Jetson Nano (Nano 2 GB, TX1): nearest profile jetson-nano (same 4x A57)"},
	{"nvidia,tegra194", "xavier-nx", "a Tegra194 board other than the Xavier NX (e.g. AGX Xavier, 8 cores at 2.26 GHz): nearest profile xavier-nx, estimates will be pessimistic"},
	{"nvidia,tegra234", "orin-nano", "a Tegra234 board other than the Orin Nano (Orin NX or AGX Orin, more and faster cores): nearest profile orin-nano, estimates will be pessimistic"},
}

// DetectFS is Detect on any file system rooted at "/" (os.DirFS("/") or a
// test fixture), with the CPU features and GOARCH given. A file that is
// missing is information (no device tree: not an ARM board); only a file
// that is present but cannot be read or parsed is an error.
func DetectFS(fsys fs.FS, feat Features, goarch string) (*Detected, error) {
	if fsys == nil {
		return nil, errors.New("detect board: no file system")
	}
	d := &Detected{Features: feat}
	model, haveDT, err := readProcFile(fsys, dtModelPath)
	if err != nil {
		return nil, err
	}
	d.Model = strings.TrimSpace(strings.TrimRight(string(model), "\x00"))
	compat, haveCompat, err := readProcFile(fsys, dtCompatiblePath)
	if err != nil {
		return nil, err
	}
	for _, s := range strings.Split(string(compat), "\x00") {
		if s = strings.TrimSpace(s); s != "" {
			d.Compatible = append(d.Compatible, s)
		}
	}
	meminfo, haveMeminfo, err := readProcFile(fsys, meminfoPath)
	if err != nil {
		return nil, err
	}
	var notes []string
	if haveMeminfo {
		if d.MemTotalBytes, err = parseMemTotal(meminfo); err != nil {
			return nil, fmt.Errorf("detect board: /%s: %w", meminfoPath, err)
		}
	}
	if d.MemTotalBytes == 0 {
		notes = append(notes, "MemTotal unknown (/proc/meminfo missing or without MemTotal)")
	}

	family, why, approx := matchFamily(d.Compatible)
	switch {
	case family != "":
		d.Board, d.Approximate = pickVariant(family, d.MemTotalBytes, &notes), approx
		d.Reason = why
	case haveDT || haveCompat:
		d.Reason = fmt.Sprintf("no profile for this device tree (model %q, compatible %s)", d.Model, quoteList(d.Compatible))
	case goarch == "amd64" && feat.AVX2:
		d.Board = pickVariant("x86-64", d.MemTotalBytes, &notes)
		d.Reason = "amd64 with AVX2 and no device tree: the x86-64 host profile (nominal 8 GiB RAM; its speed is the 2-core EPYC development class)"
	case goarch == "amd64":
		d.Reason = "amd64 without AVX2: no profile (vggedge's x86 kernels need AVX2)"
	default:
		d.Reason = fmt.Sprintf("no device tree (/%s missing) on GOARCH=%s: not a known board", dtModelPath, goarch)
	}
	if d.Board != nil {
		notes = append(notes, mismatchNotes(d.Board, feat, goarch)...)
		if slices.ContainsFunc(d.Compatible, func(s string) bool { return strings.HasSuffix(s, "-super") }) {
			notes = append(notes, "JetPack Super mode (CPU up to 1.7 GHz): the profile's 1.5 GHz figures are pessimistic")
		}
	}
	if len(notes) > 0 {
		d.Reason += "; " + strings.Join(notes, "; ")
	}
	return d, nil
}

// readProcFile reads a small file; present is false when it does not exist.
func readProcFile(fsys fs.FS, name string) (data []byte, present bool, err error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("detect board: %w", err)
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, maxProcFile))
	if err != nil {
		return nil, true, fmt.Errorf("detect board: read /%s: %w", name, err)
	}
	return data, true, nil
}

// parseMemTotal finds "MemTotal: <n> kB". No such line gives 0 and no
// error; a line that does not parse is an error.
func parseMemTotal(meminfo []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 || len(f) > 2 {
			return 0, fmt.Errorf("MemTotal line %q: want \"MemTotal: <n> kB\"", sc.Text())
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("MemTotal %q: not a size", f[0])
		}
		unit := int64(1) // the kernel always writes kB; a bare number is bytes
		if len(f) == 2 {
			if f[1] != "kB" {
				return 0, fmt.Errorf("MemTotal unit %q: want kB", f[1])
			}
			unit = 1024
		}
		if n > (1<<62)/unit {
			return 0, fmt.Errorf("MemTotal %q: too large", strings.TrimSpace(rest))
		}
		return n * unit, nil
	}
	return 0, sc.Err()
}

// matchFamily returns the profile family the compatible list names, why,
// and whether it is only the nearest one.
func matchFamily(compat []string) (family, why string, approx bool) {
	names := expandCompatible(compat)
	for _, b := range profiles {
		for _, want := range b.Compatible {
			for _, have := range names {
				if compatMatches(want, have) {
					return b.family, fmt.Sprintf("device tree compatible %q matches %s", have, b.family), false
				}
			}
		}
	}
	for _, fb := range socFallback {
		if slices.Contains(names, fb.soc) {
			return fb.family, fmt.Sprintf("device tree compatible %q: %s", fb.soc, fb.note), true
		}
	}
	return "", "", false
}

func compatMatches(want, have string) bool {
	if prefix, ok := strings.CutSuffix(want, "*"); ok {
		return strings.HasPrefix(have, prefix)
	}
	return want == have
}

// expandCompatible adds the parts of NVIDIA's "carrier+module" entries:
// "nvidia,p3768-0000+p3767-0005" also names "nvidia,p3767-0005" (a part
// without a vendor takes the first part's).
func expandCompatible(compat []string) []string {
	var out []string
	for _, s := range compat {
		out = append(out, s)
		parts := strings.Split(s, "+")
		if len(parts) < 2 {
			continue
		}
		vendor, _, _ := strings.Cut(parts[0], ",")
		for _, p := range parts {
			if !strings.Contains(p, ",") {
				p = vendor + "," + p
			}
			out = append(out, p)
		}
	}
	return out
}

// pickVariant returns the family's smallest RAM variant whose nominal RAM
// holds MemTotal (which is always less than the nominal RAM), noting when it
// has to guess.
func pickVariant(family string, memTotal int64, notes *[]string) *Board {
	var vs []*Board
	for _, b := range profiles {
		if b.family == family {
			vs = append(vs, b)
		}
	}
	if len(vs) == 0 {
		return nil
	}
	slices.SortStableFunc(vs, func(a, b *Board) int { return cmpInt64(a.RAMBytes, b.RAMBytes) })
	pick := vs[len(vs)-1]
	switch {
	case memTotal == 0:
		pick = vs[0]
		if len(vs) > 1 {
			*notes = append(*notes, fmt.Sprintf("assuming the smallest RAM variant, %s", pick.ID))
		}
	default:
		for _, v := range vs {
			if v.RAMBytes >= memTotal {
				pick = v
				break
			}
		}
		switch {
		case memTotal > pick.RAMBytes:
			*notes = append(*notes, fmt.Sprintf("MemTotal %s is more than %s's %s: its memory check is pessimistic", gibText(memTotal), pick.ID, gibText(pick.RAMBytes)))
		case memTotal < pick.RAMBytes*3/4:
			*notes = append(*notes, fmt.Sprintf("MemTotal %s is well below %s's %s: check memory budgets with --mem", gibText(memTotal), pick.ID, gibText(pick.RAMBytes)))
		case len(vs) > 1:
			*notes = append(*notes, fmt.Sprintf("MemTotal %s → the %s variant", gibText(memTotal), gibText(pick.RAMBytes)))
		}
	}
	return pick.clone()
}

// mismatchNotes says when the process cannot use what the profile's figures
// assume: a 32-bit build on a 64-bit board, or a feature switched off.
func mismatchNotes(b *Board, feat Features, goarch string) []string {
	var notes []string
	if len(b.Targets) > 0 && b.Targets[0].GOARCH != goarch {
		notes = append(notes, fmt.Sprintf("running GOARCH=%s; the profile's figures are for %s", goarch, b.Targets[0].GOARCH))
	}
	if b.Features.DotProd && !feat.DotProd {
		notes = append(notes, "the profile assumes dotprod (SDOT) but this process cannot use it: expect slower int8")
	}
	if b.Features.AVX2 && !feat.AVX2 {
		notes = append(notes, "the profile assumes AVX2 but this process cannot use it")
	}
	return notes
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func gibText(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/float64(oneGiB)) }

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "(none)"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// String describes the detection on a few lines, for humans.
func (d *Detected) String() string {
	if d == nil {
		return "board: not detected"
	}
	var sb strings.Builder
	switch {
	case d.Board == nil:
		sb.WriteString("board:      unknown\n")
	case d.Approximate:
		fmt.Fprintf(&sb, "board:      %s (%s), nearest profile\n", d.Board.ID, d.Board.Name)
	default:
		fmt.Fprintf(&sb, "board:      %s (%s)\n", d.Board.ID, d.Board.Name)
	}
	if d.Model != "" {
		fmt.Fprintf(&sb, "model:      %s\n", d.Model)
	}
	if len(d.Compatible) > 0 {
		fmt.Fprintf(&sb, "compatible: %s\n", strings.Join(d.Compatible, ", "))
	}
	if d.MemTotalBytes > 0 {
		fmt.Fprintf(&sb, "memory:     %s (MemTotal)\n", gibText(d.MemTotalBytes))
	}
	fmt.Fprintf(&sb, "features:   %s\n", d.Features)
	fmt.Fprintf(&sb, "reason:     %s", d.Reason)
	return sb.String()
}

// String lists the features that are present ("neon dotprod"), or "none".
func (f Features) String() string {
	var s []string
	for _, x := range []struct {
		on   bool
		name string
	}{{f.NEON, "neon"}, {f.DotProd, "dotprod"}, {f.I8MM, "i8mm"}, {f.AVX2, "avx2"}} {
		if x.on {
			s = append(s, x.name)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
