package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func checkJSONOf(t *testing.T, args ...string) (int, checkJSON) {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"check", "--json"}, args...)...)
	if code == exitBadInput {
		t.Fatalf("check %v: exit 2: %s", args, errOut)
	}
	var j checkJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("check %v: bad JSON: %v\n%s", args, err, out)
	}
	return code, j
}

// torchvision's figures (ANCHORS.md §2).
func TestCheckJSONTotals(t *testing.T) {
	for _, tt := range []struct {
		arch   string
		params int64
		macs   int64
	}{
		{"vgg11", 132_863_336, 7_609_090_048},
		{"vgg13", 133_047_848, 11_308_466_176},
		{"vgg16", 138_357_544, 15_470_264_320},
		{"vgg19", 143_667_240, 19_632_062_464},
		{"vgg11_bn", 132_868_840, 7_609_090_048},
		{"vgg13_bn", 133_053_736, 11_308_466_176},
		{"vgg16_bn", 138_365_992, 15_470_264_320},
		{"vgg19_bn", 143_678_248, 19_632_062_464},
	} {
		_, j := checkJSONOf(t, "--arch", tt.arch, "--board", "rpi5-8g", "--input", "3x224x224")
		if j.Params != tt.params || j.MACs != tt.macs {
			t.Errorf("%s: params %d MACs %d, want %d and %d", tt.arch, j.Params, j.MACs, tt.params, tt.macs)
		}
		if j.Arch != tt.arch || j.Board != "rpi5-8g" || len(j.Input) != 3 || j.Input[1] != 224 {
			t.Errorf("%s: header fields wrong: %+v", tt.arch, j)
		}
		var sum int64
		for _, l := range j.Layers {
			sum += l.MACs
		}
		if sum != tt.macs {
			t.Errorf("%s: per-layer MACs sum to %d, want %d", tt.arch, sum, tt.macs)
		}
	}
}

func TestCheckVGG16Memory(t *testing.T) {
	_, j := checkJSONOf(t, "--arch", "vgg16", "--board", "rpi4-4g")
	if j.PeakActivationBytes != 6_422_528 {
		t.Errorf("int8 ping-pong peak = %d, want 6,422,528", j.PeakActivationBytes)
	}
	if j.PeakMemoryBytes != j.WeightBytes+j.PeakActivationBytes+j.RuntimeReserveBytes {
		t.Errorf("peak memory %d is not weights + activations + reserve", j.PeakMemoryBytes)
	}
	if j.Precision != "int8" || j.FLOPs != 2*j.MACs {
		t.Errorf("precision %q, flops %d", j.Precision, j.FLOPs)
	}
}

func TestCheckVerdicts(t *testing.T) {
	code, j := checkJSONOf(t, "--arch", "vgg16", "--board", "rpi-zero2w", "--precision", "fp32")
	if code != exitNotFit || j.Fits || j.MemoryFits {
		t.Errorf("vgg16 fp32 on rpi-zero2w: exit %d fits %v, want 1 and false", code, j.Fits)
	}
	if len(j.Reasons) == 0 || !strings.Contains(j.Reasons[0], "memory") || !strings.Contains(j.Reasons[0], "available") {
		t.Errorf("reasons should name memory: %q", j.Reasons)
	}
	if len(j.Suggestions) == 0 {
		t.Error("no suggestion of what would fit")
	}
	code, j = checkJSONOf(t, "--arch", "vgg16", "--board", "rpi5-8g", "--fps", "1")
	if code != exitOK || !j.Fits || j.LatencyBudgetMs == nil || *j.LatencyBudgetMs != 1000 {
		t.Errorf("vgg16 on rpi5-8g at 1 fps: exit %d fits %v budget %v", code, j.Fits, j.LatencyBudgetMs)
	}
	code, j = checkJSONOf(t, "--arch", "vgg16", "--board", "rpi4-4g", "--latency", "100ms")
	if code != exitNotFit || j.LatencyFits || !strings.Contains(strings.Join(j.Reasons, ";"), "> 100 ms") {
		t.Errorf("vgg16 on rpi4-4g in 100 ms: exit %d, reasons %q", code, j.Reasons)
	}
	code, j = checkJSONOf(t, "--arch", "vgg16", "--board", "rpi5-8g", "--mem", "100MiB")
	if code != exitNotFit || j.AvailableBytes != 100<<20 {
		t.Errorf("--mem 100MiB: exit %d, available %d", code, j.AvailableBytes)
	}
}

// The seeded estimate reproduces the published ncnn VGG16 int8 all-core
// figure it came from (Tencent/ncnn benchmark/README.md, see boards/SOURCES.md).
func TestCheckEstimateMatchesPublished(t *testing.T) {
	for board, published := range map[string]float64{"rpi4-4g": 394, "rpi5-8g": 107, "jetson-nano": 294, "orin-nano": 108} {
		_, j := checkJSONOf(t, "--arch", "vgg16", "--board", board)
		if r := j.EstimatedLatencyMs / published; r < 0.75 || r > 1.25 {
			t.Errorf("%s: estimated %.0f ms, published %.0f ms", board, j.EstimatedLatencyMs, published)
		}
		if !strings.Contains(j.EstimateNote, "25%") {
			t.Errorf("%s: the note should state the error band: %q", board, j.EstimateNote)
		}
	}
}

func TestCheckText(t *testing.T) {
	code, out, _ := runCLI(t, "check", "--arch", "vgg16", "--board", "rpi-zero2w", "--precision", "fp32")
	if code != exitNotFit {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"features.0", "classifier.6", "138,357,544", "15,470,264,320", "DOES NOT FIT", "memory: needs", "would fit:", "uncalibrated"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q", want)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\n  \"features\": [64, {\"type\": \"conv2d\", \"out\": 8, \"kernal\": 3}]\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pthFile := filepath.Join(dir, "vgg16-397923af.pth") // a torch.save zip's first bytes
	if err := os.WriteFile(pthFile, []byte("PK\x03\x04archive/data.pkl"), 0o644); err != nil {
		t.Fatal(err)
	}
	neg := filepath.Join(dir, "neg.json")
	if err := os.WriteFile(neg, []byte(`{"features": [64], "classifier": [-4096]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown board", []string{"check", "--board", "rpi9"}, []string{"rpi9", "rpi-zero2w", "orin-nano", "x86-64"}},
		{"missing file", []string{"check", "--board", "rpi4-4g", "--arch", filepath.Join(dir, "nope.json")}, []string{"nope.json", "no such file"}},
		{"malformed file", []string{"check", "--board", "rpi4-4g", "--arch", bad}, []string{"bad.json:2:", "features[1]", "kernal"}},
		{"negative width", []string{"check", "--board", "rpi4-4g", "--arch", neg}, []string{"neg.json", "classifier[0]", "-4096"}},
		{"tiny input", []string{"check", "--board", "rpi4-4g", "--input", "3x8x8"}, []string{"3x8x8", "smaller"}},
		{"pth as model", []string{"info", "--model", pthFile}, []string{"holds weights", "vggedge quantize"}},
		{"out not writable", []string{"quantize", "--arch", "vgg11", "--calib", dir, "--out", filepath.Join(dir, "missing", "m.vgm")}, []string{"--out", "missing", "cannot create a file"}},
		{"bad resize filter", []string{"quantize", "--model", "digits-f32", "--calib", dir, "--out", filepath.Join(dir, "m.vgm"), "--resize-filter", "lanczos"}, []string{"--resize-filter", "lanczos", "pil"}},
		{"model and arch", []string{"check", "--board", "rpi4-4g", "--model", "digits", "--arch", "vgg11"}, []string{"--model digits", "--arch vgg11", "one of them"}},
		{"mem without unit", []string{"check", "--board", "rpi4-4g", "--mem", "300"}, []string{"--mem", "no unit", "300MiB"}},
		{"latency without unit", []string{"check", "--board", "rpi4-4g", "--latency", "250"}, []string{"-latency", "no unit", "250ms"}},
		{"reduce mem without unit", []string{"reduce", "--model", "digits", "--calib", "idx:x", "--fit", "rpi4-4g", "--mem", "64", "--out", "x.vgm"}, []string{"--mem", "no unit"}},
		{"zero channels", []string{"check", "--board", "rpi4-4g", "--input", "0x224x224"}, []string{"0x224x224", "dimension"}},
		{"negative input", []string{"check", "--board", "rpi4-4g", "--input", "3x-224x224"}, []string{"--input"}},
		{"latency and fps", []string{"check", "--board", "rpi4-4g", "--fps", "2", "--latency", "1s"}, []string{"not both"}},
		{"bad fps", []string{"check", "--board", "rpi4-4g", "--fps", "-2"}, []string{"--fps"}},
		{"bad mem", []string{"check", "--board", "rpi4-4g", "--mem", "lots"}, []string{"--mem", "lots"}},
		{"bad precision", []string{"check", "--board", "rpi4-4g", "--precision", "int4"}, []string{"int4"}},
		{"unknown flag", []string{"check", "--bored", "rpi4-4g"}, []string{"bored"}},
		{"stray arg", []string{"check", "vgg16"}, []string{"vgg16"}},
		{"negative classes", []string{"summary", "--classes", "-3"}, []string{"--classes"}},
		{"unknown arch", []string{"summary", "--arch", "vgg99"}, []string{"vgg99", "vgg16_bn"}},
		{"unknown command", []string{"chek"}, []string{"chek", "check"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			if code != exitBadInput {
				t.Errorf("exit %d, want 2", code)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "vggedge") {
				t.Errorf("stderr should be one line starting vggedge, got %q", errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	code, out, errOut := runCLI(t, "summary", "--arch", "vgg11_bn")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"VGG(\n  (features): Sequential(\n    (0): Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
		"(1): BatchNorm2d(64, eps=1e-05", "(avgpool): AdaptiveAvgPool2d(output_size=(7, 7))",
		"Total params: 132,868,840", "Total MACs: 7,609,090,048"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
}

func TestBoardsCommand(t *testing.T) {
	code, out, _ := runCLI(t, "boards", "--json")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var j struct {
		Boards []struct {
			ID string `json:"id"`
		} `json:"boards"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Boards) != 14 {
		t.Errorf("%d boards, want 14", len(j.Boards))
	}
	code, out, _ = runCLI(t, "boards")
	if code != exitOK || !strings.Contains(out, "rpi5-16g") || !strings.Contains(out, "this machine") {
		t.Errorf("boards text: exit %d\n%s", code, out)
	}
}

// --camera adds what run holds for a camera of that size: 3 V4L2 kernel
// buffers and 3 loop buffers at YUYV's 2 bytes per pixel, plus one RGB
// conversion buffer — 640×480: 6·2·307,200 + 3·307,200 = 4,608,000 B.
// On a board where the model only just fits, the camera tips it over.
func TestCheckCountsCameraBuffers(t *testing.T) {
	_, plain := checkJSONOf(t, "--arch", "vgg16", "--board", "rpi-zero2w")
	_, cam := checkJSONOf(t, "--arch", "vgg16", "--board", "rpi-zero2w", "--camera", "640x480")
	if cam.CameraBufferBytes != 4_608_000 || cam.PeakMemoryBytes-plain.PeakMemoryBytes != 4_608_000 {
		t.Errorf("camera 640x480: %d B counted, peak %d → %d; want 4,608,000 more", cam.CameraBufferBytes, plain.PeakMemoryBytes, cam.PeakMemoryBytes)
	}
	// A memory budget between the two peaks: fits without the camera, not with it.
	mem := strconv.FormatInt(plain.PeakMemoryBytes+1_000_000, 10) + "B"
	codeA, a := checkJSONOf(t, "--arch", "vgg16", "--board", "rpi-zero2w", "--mem", mem)
	codeB, b := checkJSONOf(t, "--arch", "vgg16", "--board", "rpi-zero2w", "--mem", mem, "--camera", "640x480")
	if codeA != exitOK || !a.MemoryFits || codeB != exitNotFit || b.MemoryFits {
		t.Errorf("--mem %s: without camera exit %d fits %v; with camera exit %d fits %v", mem, codeA, a.MemoryFits, codeB, b.MemoryFits)
	}
	if !strings.Contains(strings.Join(b.Reasons, " "), "camera buffers 4.4 MiB") {
		t.Errorf("reasons do not name the camera buffers: %q", b.Reasons)
	}
}
