package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vggedge/vggedge/camera"
)

// digitFile is a bundled MNIST digit written as an image file.
type digitFile struct {
	path  string
	label int
}

// writeDigits writes bundled digits first..first+n-1 as real image files:
// PNG for even i, JPEG (quality 95) for odd; in class folders named by
// the digit (dir/7/00012.jpg) when tree is set, else flat (dir/00012.jpg).
// keep, when not nil, picks the digits wanted.
func writeDigits(t *testing.T, dir string, first, n int, tree bool, keep func(label int) bool) []digitFile {
	t.Helper()
	imgs, labels, err := camera.BundledDigits()
	if err != nil {
		t.Fatal(err)
	}
	var out []digitFile
	for i := first; i < imgs.N && len(out) < n; i++ {
		label := int(labels[i])
		if keep != nil && !keep(label) {
			continue
		}
		g := image.NewGray(image.Rect(0, 0, imgs.W, imgs.H))
		copy(g.Pix, imgs.Image(i))
		d := dir
		if tree {
			d = filepath.Join(dir, strconv.Itoa(label))
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		ext := ".png"
		if i%2 == 1 {
			ext = ".jpg"
		}
		p := filepath.Join(d, fmt.Sprintf("%05d%s", i, ext))
		var b bytes.Buffer
		if ext == ".png" {
			err = png.Encode(&b, g)
		} else {
			err = jpeg.Encode(&b, g, &jpeg.Options{Quality: 95})
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, digitFile{p, label})
	}
	if len(out) < n {
		t.Fatalf("only %d bundled digits fit", len(out))
	}
	return out
}

// runClassifyCLI runs classify in-process and prints its error as main does.
func runClassifyCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code, err := classify(args, &o, &e)
	if err != nil {
		fmt.Fprintf(&e, "vggedge classify: %s\n", oneLine(err))
	}
	return code, o.String(), e.String()
}

// plainResult is one file's block of plain classify output.
type plainResult struct {
	file, truth, verdict string
	top                  []string // labels, best first
	scores               []float64
}

var (
	plainHead  = regexp.MustCompile(`^(\S+)  ([0-9.]+) ms(?:  truth (\S+), (correct|wrong))?$`)
	plainClass = regexp.MustCompile(`^  ([01]\.[0-9]{4})  (\S+)$`)
	plainAcc   = regexp.MustCompile(`^accuracy on (\d+) image\(s\) with truth: top-1 [0-9.]+ \((\d+)/(\d+)\), top-5 [0-9.]+ \((\d+)/(\d+)\)$`)
)

// parsePlain reads classify's plain output strictly: every line is a
// file's head, one of its classes or the final accuracy line.
func parsePlain(t *testing.T, out string) (res []plainResult, acc []int) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch m := []*regexp.Regexp{plainHead, plainClass, plainAcc}; {
		case m[0].MatchString(line):
			g := m[0].FindStringSubmatch(line)
			res = append(res, plainResult{file: g[1], truth: g[3], verdict: g[4]})
		case m[1].MatchString(line) && len(res) > 0 && acc == nil:
			g := m[1].FindStringSubmatch(line)
			r := &res[len(res)-1]
			s, _ := strconv.ParseFloat(g[1], 64)
			r.top, r.scores = append(r.top, g[2]), append(r.scores, s)
		case m[2].MatchString(line) && acc == nil:
			for _, s := range m[2].FindStringSubmatch(line)[1:] {
				n, _ := strconv.Atoi(s)
				acc = append(acc, n)
			}
		default:
			t.Fatalf("unexpected line %q in:\n%s", line, out)
		}
	}
	return res, acc
}

func TestClassifyFlatFolderPlain(t *testing.T) {
	dir := t.TempDir()
	files := writeDigits(t, dir, 0, 12, false, nil)
	code, out, errOut := runClassifyCLI(t, dir)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	res, acc := parsePlain(t, out)
	if acc != nil {
		t.Errorf("accuracy %v for a flat folder (no truth)", acc)
	}
	if len(res) != len(files) {
		t.Fatalf("%d results for %d files:\n%s", len(res), len(files), out)
	}
	right := 0
	for i, r := range res {
		if r.file != files[i].path || r.truth != "" {
			t.Errorf("result %d: file %q truth %q, want %q without truth (sorted order)", i, r.file, r.truth, files[i].path)
		}
		if len(r.top) != 5 {
			t.Errorf("%s: %d classes, want the default top-5", r.file, len(r.top))
		}
		for j := 1; j < len(r.scores); j++ {
			if r.scores[j] > r.scores[j-1] {
				t.Errorf("%s: scores %v not best first", r.file, r.scores)
			}
		}
		if len(r.top) > 0 && r.top[0] == strconv.Itoa(files[i].label) {
			right++
		}
	}
	// The digits model is right on ≥ 98.5 % of MNIST: 11 of 12 at least.
	if right < len(files)-1 {
		t.Errorf("top-1 right on %d of %d digits:\n%s", right, len(files), out)
	}
}

// classifyLineStrict is a --json line with every field a pointer, so a
// missing one is seen; unknown fields are errors.
type classifyLineStrict struct {
	File *string `json:"file"`
	Top  []struct {
		Index *int     `json:"index"`
		Label *string  `json:"label"`
		Score *float64 `json:"score"`
	} `json:"top"`
	LatencyMs *float64 `json:"latency_ms"`
	Truth     *string  `json:"truth"`
	Correct   *bool    `json:"correct"`
}

func parseClassifyJSON(t *testing.T, out string) []classifyLineStrict {
	t.Helper()
	var lines []classifyLineStrict
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var l classifyLineStrict
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if dec.More() {
			t.Fatalf("line %q: more than one value", sc.Text())
		}
		if l.File == nil || l.LatencyMs == nil || *l.LatencyMs < 0 || len(l.Top) == 0 || (l.Truth == nil) != (l.Correct == nil) {
			t.Fatalf("line %q: file, top, latency_ms missing or truth without correct", sc.Text())
		}
		for _, c := range l.Top {
			if c.Index == nil || c.Label == nil || c.Score == nil || *c.Label != strconv.Itoa(*c.Index) {
				t.Fatalf("line %q: class entry incomplete or label not the digits' name of its index", sc.Text())
			}
		}
		lines = append(lines, l)
	}
	return lines
}

// An ImageFolder tree: truth from the folder names, and the accuracy is
// what eval reports on the same tree.
func TestClassifyImageFolderMatchesEval(t *testing.T) {
	dir := t.TempDir()
	files := writeDigits(t, dir, 100, 80, true, nil)
	// A hidden folder (Jupyter leaves .ipynb_checkpoints in every folder
	// it opens) is no class, for eval as for classify.
	hidden := filepath.Join(dir, ".ipynb_checkpoints")
	if err := os.Mkdir(hidden, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(files[0].path, filepath.Join(hidden, "copy.png")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runClassifyCLI(t, dir)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	res, acc := parsePlain(t, out)
	if len(res) != len(files) || len(acc) != 5 {
		t.Fatalf("%d results for %d files, accuracy %v:\n%s", len(res), len(files), acc, out)
	}
	top1 := 0
	for _, r := range res {
		want := filepath.Base(filepath.Dir(r.file))
		if r.truth != want {
			t.Errorf("%s: truth %q, want its folder's %q", r.file, r.truth, want)
		}
		if (r.verdict == "correct") != (r.top[0] == r.truth) {
			t.Errorf("%s: verdict %s with top-1 %s and truth %s", r.file, r.verdict, r.top[0], r.truth)
		}
		if r.verdict == "correct" {
			top1++
		}
	}
	if acc[0] != len(files) || acc[1] != top1 || acc[2] != len(files) || acc[4] != len(files) {
		t.Errorf("accuracy %v: want %d images, top-1 %d", acc, len(files), top1)
	}
	code, evalOut, errOut := runCLI(t, "eval", "--data", dir, "--json")
	if code != exitOK {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	var ev evalResult
	if err := json.Unmarshal([]byte(evalOut), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Samples != acc[0] || ev.Top1 != float64(acc[1])/float64(acc[0]) || ev.Top5 != float64(acc[3])/float64(acc[0]) {
		t.Errorf("classify: %d images, top-1 %d, top-5 %d; eval: %+v", acc[0], acc[1], acc[3], ev)
	}
	if ev.Top1 < 0.95 {
		t.Errorf("top-1 %.3f on real digit files: the pixels are not what the model was trained on", ev.Top1)
	}

	// --json: the same verdicts, file by file; accuracy on stderr.
	code, out, errOut = runClassifyCLI(t, "--json", dir)
	if code != exitOK || !plainAcc.MatchString(strings.TrimSpace(errOut)) {
		t.Fatalf("--json: exit %d, stderr %q", code, errOut)
	}
	lines := parseClassifyJSON(t, out)
	if len(lines) != len(res) {
		t.Fatalf("%d JSON lines for %d files", len(lines), len(res))
	}
	for i, l := range lines {
		if *l.File != res[i].file || l.Truth == nil || *l.Truth != res[i].truth || *l.Correct != (res[i].verdict == "correct") || len(l.Top) != 5 {
			t.Errorf("line %d: %+v, plain said %+v", i, l, res[i])
		}
	}
}

func TestClassifyJSONTopKAndFlags(t *testing.T) {
	dir := t.TempDir()
	files := writeDigits(t, dir, 0, 4, false, nil)
	for _, tc := range []struct {
		name string
		args []string
		topk int
	}{
		{"topk 3", []string{"--json", "--topk", "3", dir}, 3},
		{"topk capped at the classes", []string{"--topk", "50", "--json", dir}, 10},
		{"flags after the arguments", []string{dir, "--json", "--topk", "1", "--threads", "1"}, 1},
		{"float model", []string{"--model", "digits-f32", "--json", dir}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runClassifyCLI(t, tc.args...)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := parseClassifyJSON(t, out)
			if len(lines) != len(files) {
				t.Fatalf("%d lines for %d files", len(lines), len(files))
			}
			for i, l := range lines {
				if *l.File != files[i].path || len(l.Top) != tc.topk || l.Truth != nil {
					t.Errorf("line %d: file %s, %d classes, truth %v; want %s, %d, none", i, *l.File, len(l.Top), l.Truth, files[i].path, tc.topk)
				}
				sum := 0.0
				for _, c := range l.Top {
					sum += *c.Score
				}
				if sum > 1.0001 || *l.Top[0].Score <= 0 {
					t.Errorf("line %d: scores sum to %v", i, sum)
				}
			}
		})
	}
}

// pngClaiming is a valid PNG header (CRC and all) claiming w×h pixels,
// with no pixel data to back it.
func pngClaiming(t *testing.T, w, h uint32) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	binary.BigEndian.PutUint32(p[16:], w) // IHDR data starts at 16
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// Bad files are one line each, naming the file; the good ones are still
// classified; the exit status is 2 at the end.
func TestClassifyCorruptAmongGood(t *testing.T) {
	dir := t.TempDir()
	files := writeDigits(t, dir, 0, 3, false, nil)
	good, _ := os.ReadFile(files[1].path) // a JPEG
	bad := map[string][]byte{
		"00000x-truncated.jpg": good[:len(good)/2],
		"00001x-garbage.png":   []byte("\x89PNG\r\n\x1a\nnot really"),
		"00002x-huge.png":      pngClaiming(t, 100000, 100000),
	}
	for name, data := range bad {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	notes := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notes, []byte("not an image\n"), 0o644)
	code, out, errOut := runClassifyCLI(t, dir, notes)
	if code != exitBadInput {
		t.Errorf("exit %d, want %d", code, exitBadInput)
	}
	res, _ := parsePlain(t, out)
	if len(res) != len(files) {
		t.Errorf("%d results, want the %d good files:\n%s", len(res), len(files), out)
	}
	errLines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(errLines) != len(bad)+2 {
		t.Fatalf("stderr has %d lines, want one per bad file and a summary:\n%s", len(errLines), errOut)
	}
	for name, want := range map[string]string{
		"00000x-truncated.jpg": "invalid JPEG format",
		"00001x-garbage.png":   "unexpected EOF",
		"00002x-huge.png":      "want sides from 1 to",
		"notes.txt":            "not a JPEG or PNG image",
	} {
		found := false
		for _, l := range errLines {
			if strings.HasPrefix(l, "vggedge classify: ") && strings.Contains(l, name) && strings.Contains(l, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no stderr line names %s with %q:\n%s", name, want, errOut)
		}
	}
	if last := errLines[len(errLines)-1]; !strings.Contains(last, "4 file(s) could not be classified") || !strings.Contains(last, "3 classified") {
		t.Errorf("summary %q", last)
	}
}

func TestClassifyNoMatchAndGlob(t *testing.T) {
	dir := t.TempDir()
	files := writeDigits(t, dir, 0, 6, false, nil)
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"glob matching nothing", []string{filepath.Join(dir, "*.gif")}, []string{"*.gif: no such file, and no files match it", "no image files to classify"}},
		{"missing file", []string{filepath.Join(dir, "missing.png")}, []string{"missing.png: no such file or directory", "no image files to classify"}},
		{"empty folder", []string{empty}, []string{"no .jpg, .jpeg or .png files", "no image files to classify"}},
		{"no arguments", nil, []string{"no images given"}},
		{"bad flag", []string{"--topk", "0", dir}, []string{"--topk 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runClassifyCLI(t, tc.args...)
			if code != exitBadInput || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
	// A quoted glob is expanded by classify itself: only the PNGs (even i).
	code, out, errOut := runClassifyCLI(t, "--json", filepath.Join(dir, "*.png"))
	if code != exitOK {
		t.Fatalf("glob: exit %d: %s", code, errOut)
	}
	lines := parseClassifyJSON(t, out)
	var want []string
	for _, f := range files {
		if strings.HasSuffix(f.path, ".png") {
			want = append(want, f.path)
		}
	}
	var got []string
	for _, l := range lines {
		got = append(got, *l.File)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("glob classified %v, want %v", got, want)
	}
	// A missing argument among good ones: the others classified, exit 2.
	code, out, errOut = runClassifyCLI(t, "--json", files[0].path, filepath.Join(dir, "nope.jpg"))
	if code != exitBadInput || len(parseClassifyJSON(t, out)) != 1 || !strings.Contains(errOut, "nope.jpg") {
		t.Errorf("good + missing: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// run --source file://DIR: every line names its file, and truth is the
// folder's NAME mapped to the model's labels (folders 3 and 7 are digits 3
// and 7, not classes 0 and 1).
func TestRunFileSourceFileAndTruthByName(t *testing.T) {
	dir := t.TempDir()
	files := writeDigits(t, dir, 0, 10, true, func(l int) bool { return l == 3 || l == 7 })
	slices.SortFunc(files, func(a, b digitFile) int { return strings.Compare(a.path, b.path) }) // the source's order
	code, out, errOut := runLiveCLI(t, context.Background(), "--source", "file://"+dir, "--output", "jsonl", "--quiet")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := parseJSONLines(t, out)
	if len(lines) != len(files) {
		t.Fatalf("%d lines for %d files", len(lines), len(files))
	}
	seen := map[string]bool{}
	for i, l := range lines {
		if l.File == nil || *l.File != files[i].path {
			t.Errorf("line %d: file %v, want %s", i, l.File, files[i].path)
			continue
		}
		if l.Truth == nil || *l.Truth != strconv.Itoa(files[i].label) {
			t.Errorf("%s: truth %v, want %d (its folder's name)", *l.File, l.Truth, files[i].label)
			continue
		}
		seen[*l.Truth] = true
	}
	if !seen["3"] || !seen["7"] {
		t.Errorf("truths seen %v, want 3 and 7", seen)
	}
	// Folders that are no label of the model: no truth, and a note.
	other := t.TempDir()
	writeDigits(t, filepath.Join(other, "day1"), 0, 2, false, nil)
	code, out, errOut = runLiveCLI(t, context.Background(), "--source", "file://"+other, "--output", "jsonl")
	if code != exitOK || !strings.Contains(errOut, "classes day1 name no single label of the model") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, l := range parseJSONLines(t, out) {
		if l.Truth != nil || l.File == nil {
			t.Errorf("day1 file: truth %v, file %v; want no truth, a file", l.Truth, l.File)
		}
	}
}

// Calibration needs no labels: quantize takes a flat folder, a glob and a
// file:// URI; eval, which needs labels, refuses a flat folder.
func TestCalibFlatFolderGlobURI(t *testing.T) {
	dir := t.TempDir()
	writeDigits(t, dir, 0, 40, false, nil)
	for _, calib := range []string{dir, "file://" + dir, filepath.Join(dir, "*.png")} {
		t.Run(calib, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "q.vgm")
			code, stdout, errOut := runCLI(t, "quantize", "--model", "digits-f32", "--calib", calib, "--samples", "20", "--out", out)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(stdout, "calibration on 20 images") {
				t.Errorf("stdout %q", stdout)
			}
			// The model calibrated on the flat folder classifies the tree.
			tree := t.TempDir()
			writeDigits(t, tree, 200, 60, true, nil)
			code, evalOut, errOut := runCLI(t, "eval", "--model", out, "--data", "file://"+tree, "--json")
			if code != exitOK {
				t.Fatalf("eval: exit %d: %s", code, errOut)
			}
			var ev evalResult
			if err := json.Unmarshal([]byte(evalOut), &ev); err != nil || ev.Top1 < 0.9 {
				t.Errorf("eval of the flat-calibrated model: %+v, %v", ev, err)
			}
		})
	}
	// reduce fits its 1x1 layers on the same flat folder.
	red := filepath.Join(t.TempDir(), "r.vgm")
	if code, stdout, errOut := runCLI(t, "reduce", "--model", "digits", "--calib", dir, "--samples", "40", "--keep-macs", "0.5", "--out", red); code != exitOK || !strings.Contains(stdout, "fitted on 40 images") {
		t.Errorf("reduce --calib FLAT: exit %d: %s%s", code, stdout, errOut)
	}
	code, _, errOut := runCLI(t, "eval", "--data", dir)
	if code != exitBadInput || !strings.Contains(errOut, "no labels to measure accuracy against") {
		t.Errorf("eval on a flat folder: exit %d, %s", code, errOut)
	}
}
