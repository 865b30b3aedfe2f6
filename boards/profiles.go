package boards

import (
	"fmt"
	"slices"
	"strings"
)

const (
	oneMiB = int64(1) << 20
	oneGiB = int64(1) << 30
)

// VGG16 at 3x224x224, as infer costs it (checked against infer in
// TestSeedConstantsMatchInfer). The published benchmarks time the whole
// network; these split it into the convolutions, which the seeded throughput
// has to explain, and the rest, which the estimator costs by bytes alone.
const (
	vgg16ConvMACs = 15_346_630_656 // the 13 3x3 convolutions (ANCHORS.md §2)
	// Bytes read and written by the layers costed by memory at int8: the
	// five max-pools and the avgpool (7,702,016 B) and the three Linear
	// layers, weights included (123,749,672 B). ReLU is fused: 0 B.
	vgg16OtherBytesInt8 = 131_451_688
	// The same at fp32: 30,808,064 B + 494,741,312 B.
	vgg16OtherBytesFP32 = 525_549_376
)

// Effective streaming-read bandwidth, bytes per second. Only the x86 figure
// is measured; the rest are estimates from each board's memory bus, set well
// below its theoretical peak because one CPU cluster reading a stream gets
// 30-60% of it. (ANCHORS.md §1 puts reading VGG16's FC weights at 7-10 ms on
// a Pi 4/5, i.e. the buses' peak; we use sustained figures. For VGG16 the
// choice only moves time between the Linear layers and the convolutions:
// the seed absorbs it.)
const (
	// Pi Zero 2 W and Pi 3B+: 32-bit LPDDR2 at 900 MT/s, 3.6 GB/s peak.
	// Estimate.
	bwPi3 = 2.0e9
	// Pi 4: 32-bit LPDDR4-3200, 12.8 GB/s peak. Estimate.
	bwPi4 = 4.0e9
	// Pi 5: 32-bit LPDDR4X-4267, 17 GB/s peak. Estimate.
	bwPi5 = 9.0e9
	// Jetson Nano: 64-bit LPDDR4, 25.6 GB/s peak (NVIDIA's module data
	// sheet); the A57 cluster streams far less. Estimate.
	bwNano = 6.0e9
	// Xavier NX: 128-bit LPDDR4x, 51.2 GB/s peak. Estimate.
	bwXavierNX = 20e9
	// Orin Nano 8 GB: 128-bit LPDDR5, 68 GB/s peak. Estimate.
	bwOrinNano = 30e9
	// Development host class: ~19 GB/s streaming read on one core, measured
	// with a C probe (ANCHORS.md §1).
	bwX86 = 19e9
)

// seed is one published whole-network VGG16 time and how it maps onto a
// board. All figures are ncnn's benchncnn (Tencent/ncnn benchmark/README.md,
// random weights, all cores), except the x86 host's, which were measured on
// our development machine class. SOURCES.md beside this file gives each
// figure's exact line, commit and date in ncnn's README (and the x86
// measurement), so the seeds can be re-derived from the repository alone.
type seed struct {
	ms      float64 // published ms per inference
	threads int
	on      string  // the machine it was measured on
	refBW   float64 // that machine's bandwidth, bytes/s (for the non-conv memory time)
	// scale converts the measured machine's convolution rate to the
	// board's: board cores·GHz ÷ measured cores·GHz. 1 when measured on the
	// board itself.
	scale float64
}

// conv3x3 derives the effective all-core 3x3-convolution rate, GMAC/s, from
// the published time:
//
//	rate = vgg16ConvMACs ÷ (published s − otherBytes ÷ refBW) × scale
//
// so that EstimateLatency, which charges the convolutions MACs ÷ rate and
// every other layer bytes ÷ bandwidth, gives the published time back (for
// scale 1). The rate folds in whatever ncnn does to a 3x3 convolution
// (Winograd on most of these cores), so it can exceed the core's direct
// multiply peak.
func (s seed) conv3x3(otherBytes float64) float64 {
	return vgg16ConvMACs / (s.ms/1e3 - otherBytes/s.refBW) / 1e9 * s.scale
}

// The seeds. Each comment names the published figure.
var (
	// Raspberry Pi 5 (4x A76 2.4 GHz): ncnn VGG16 int8 107 ms, 4 threads.
	// Source: Tencent/ncnn benchmark/README.md (SOURCES.md).
	seedPi5 = seed{ms: 107, threads: 4, on: "Raspberry Pi 5", refBW: bwPi5, scale: 1}
	// Raspberry Pi 4 (4x A72 1.8 GHz): 394 ms, 4 threads (before ncnn's
	// 2023 int8 rewrite). Source: Tencent/ncnn benchmark/README.md
	// (SOURCES.md).
	seedPi4 = seed{ms: 394, threads: 4, on: "Raspberry Pi 4", refBW: bwPi4, scale: 1}
	// 4x Cortex-A53 at 2.0 GHz (an Arduino UNO Q's QRB2210): 367 ms, 4
	// threads. Source: Tencent/ncnn benchmark/README.md (SOURCES.md).
	// Scaled by clock to the Pi 3B+ (1.4/2.0) and the Zero 2 W (1.0/2.0). That board's bandwidth is
	// unknown: we assume the Pi 3's; if it was faster, the Pi 3-class
	// estimates are up to ~10% optimistic.
	seedA53 = seed{ms: 367, threads: 4, on: "4x Cortex-A53 2.0 GHz", refBW: bwPi3}
	// Jetson Nano (4x A57 1.43 GHz): 294 ms, 4 threads. Source:
	// Tencent/ncnn benchmark/README.md (SOURCES.md).
	seedNano = seed{ms: 294, threads: 4, on: "Jetson Nano", refBW: bwNano, scale: 1}
	// Jetson Orin Nano (6x A78AE 1.5 GHz): 108 ms, 6 threads. Source:
	// Tencent/ncnn benchmark/README.md (SOURCES.md).
	seedOrinNano = seed{ms: 108, threads: 6, on: "Jetson Orin Nano", refBW: bwOrinNano, scale: 1}
	// Jetson AGX Xavier (8x Carmel 2.26 GHz): 76 ms, 8 threads. Source:
	// Tencent/ncnn benchmark/README.md (SOURCES.md). Scaled to the
	// Xavier NX's 6 cores at 1.9 GHz: (6·1.9)/(8·2.26). The AGX's CPU
	// bandwidth is taken as the NX's (it is higher, so this slightly
	// overstates the AGX's convolution time; a few per cent).
	seedAGXXavier = seed{ms: 76, threads: 8, on: "Jetson AGX Xavier", refBW: bwXavierNX, scale: (6 * 1.9) / (8 * 2.26)}
	// Development host class (2-core EPYC Zen 3, AVX2): ncnn int8 with 2
	// threads 87-94 ms; we take the middle, 90.5 ms. Source: our own
	// measurement, benchncnn, 3 repeats (SOURCES.md).
	seedX86Int8 = seed{ms: 90.5, threads: 2, on: "2-core AMD EPYC Zen 3 host", refBW: bwX86, scale: 1}
	// The same host, ncnn fp32 with 2 threads: 114-128 ms, middle 121 ms.
	// Source: our own measurement (SOURCES.md).
	seedX86FP32 = seed{ms: 121, threads: 2, on: "2-core AMD EPYC Zen 3 host", refBW: bwX86, scale: 1}
)

// a53Seed scales the 2.0 GHz Cortex-A53 figure to a 4-core A53 board
// clocked at mhz.
func a53Seed(mhz int) seed {
	s := seedA53
	s.scale = float64(mhz) / 2000
	return s
}

// Ratios of the int8 3x3 rate to the other kinds of work. These are
// judgement, not measurement, and the reason the error band is ±25%:
//
//   - conv1x1: 0.6. A 1x1 convolution is a plain GEMM: no Winograd, which
//     after its transforms saves ncnn roughly 1.5-1.7x on 3x3 layers; so a
//     1x1 runs at about the direct rate, 1/1.65 ≈ 0.6 of the 3x3 one.
//   - conv (other sizes, strides): 0.5. im2col-style GEMM with edge tails
//     and strided reads: a little below the 1x1 rate.
//   - linear: the 1x1 rate. At batch 1 a Linear layer is a matrix-vector
//     product that reads every weight once; with one byte per MAC (int8) or
//     four (fp32) it is memory-bound on every board, so the estimator's
//     bytes ÷ bandwidth term decides, not this rate.
const (
	conv1x1Ratio = 0.6
	convRatio    = 0.5
)

// fp32Divisor returns how much slower a board's fp32 convolutions are than
// its int8 ones (int8 rate ÷ fp32 rate). Derived estimates:
//
//   - without an int8 dot product (A53, A57, A72, Carmel, and x86 AVX2,
//     where int8 is widened to int16 and multiplied pairwise: SMLAL or
//     VPMADDWD), int8 has no more multiplies per cycle than fp32 FMA. The
//     x86 host's measured pair gives the ratio: its fp32 3x3 rate over its
//     int8 one, each derived like the int8 seeds (about 1.12).
//   - with SDOT (A76, A78AE): the Pi 5's published single-thread figures,
//     fp16 Winograd 190 ms against int8 273 ms; fp32 has half fp16's SIMD
//     lanes, so fp32 ≈ 2·190 = 380 ms and the ratio is 380/273 ≈ 1.39.
//     Source: Tencent/ncnn benchmark/README.md (SOURCES.md).
func fp32Divisor(dotprod bool) float64 {
	if dotprod {
		return 2 * 190.0 / 273.0
	}
	return x86Int8Conv3x3() / x86FP32Conv3x3()
}

func x86Int8Conv3x3() float64 { return seedX86Int8.conv3x3(vgg16OtherBytesInt8) }
func x86FP32Conv3x3() float64 { return seedX86FP32.conv3x3(vgg16OtherBytesFP32) }

// throughputs spreads a 3x3 rate over the kinds of work.
func throughputs(conv3x3 float64) Throughput {
	return Throughput{
		Conv3x3: conv3x3,
		Conv1x1: conv3x3 * conv1x1Ratio,
		Conv:    conv3x3 * convRatio,
		Linear:  conv3x3 * conv1x1Ratio,
	}
}

// reserveRule says how much RAM a board keeps from vggedge (OSReserveBytes):
//
//	reserve = carveFixed + carvePerGiB·(RAM in GiB) + baseline
//
// The carve-out is memory Linux never counts in MemTotal: the GPU firmware's
// share (gpu_mem on a Pi, the GPU/BPMP/TZ carve-outs on a Jetson), the kernel
// image, and the per-page bookkeeping that grows with RAM. Its two parts are
// fitted to the MemTotal real boards report (a Zero 2 W shows ~416 MiB of
// 512 MiB, a 4 GB Pi 4 ~3.7 GiB, an 8 GB Pi 5 ~7.86 GiB, a Jetson Nano
// ~3.87 GiB, an Orin Nano 8 GB ~7.44 GiB). The baseline is what a headless
// OS image uses after boot, plus camera buffers: Raspberry Pi OS Lite on
// 512 MiB-1 GiB boards, the 64-bit image on Pi 4/5, and L4T on a Jetson,
// whose GPU, camera daemon (nvargus) and CMA pool take RAM from the same
// LPDDR the CPU uses.
type reserveRule struct {
	carveFixed, carvePerGiB, baseline int64
}

func (r reserveRule) bytes(ram int64) int64 {
	return r.carveFixed + r.carvePerGiB*ram/oneGiB + r.baseline
}

var (
	reservePi3  = reserveRule{carveFixed: 96 * oneMiB, baseline: 64 * oneMiB}
	reservePi4  = reserveRule{carveFixed: 96 * oneMiB, carvePerGiB: 48 * oneMiB, baseline: 128 * oneMiB}
	reservePi5  = reserveRule{carveFixed: 64 * oneMiB, carvePerGiB: 8 * oneMiB, baseline: 128 * oneMiB}
	reserveNano = reserveRule{carveFixed: 128 * oneMiB, baseline: 768 * oneMiB}
	reserveNX   = reserveRule{carveFixed: 448 * oneMiB, baseline: 768 * oneMiB}
	reserveOrin = reserveRule{carveFixed: 576 * oneMiB, baseline: 768 * oneMiB}
	// x86 host: firmware/ACPI and a general-purpose distribution's
	// services; the nominal 8 GiB is a stand-in, the class varies.
	reserveX86 = reserveRule{carveFixed: 256 * oneMiB, baseline: 512 * oneMiB}
)

var (
	linuxArm64 = Target{GOOS: "linux", GOARCH: "arm64"}
	linuxArmv7 = Target{GOOS: "linux", GOARCH: "arm", GOARM: "7"}
	linuxAmd64 = Target{GOOS: "linux", GOARCH: "amd64"}
)

// profile is one board family: everything but the RAM, which its variants
// add.
type profile struct {
	base     Board
	reserve  reserveRule
	int8     seed    // seeds Int8.Conv3x3
	fp32     *seed   // seeds FP32.Conv3x3 directly; nil: int8 ÷ fp32Divisor
	variants []int64 // RAM sizes, ascending; the id gets "-<n>g"
	bwNote   string  // where BandwidthBytesPerSec comes from
}

// build turns the family into its boards.
func (p profile) build() []*Board {
	b := p.base
	b.family = b.ID
	b.Int8 = throughputs(p.int8.conv3x3(vgg16OtherBytesInt8))
	fp32Note := ""
	if p.fp32 != nil {
		b.FP32 = throughputs(p.fp32.conv3x3(vgg16OtherBytesFP32))
		fp32Note = fmt.Sprintf("fp32: ncnn VGG16 fp32 %g ms, %d threads, %s", p.fp32.ms, p.fp32.threads, p.fp32.on)
	} else {
		d := fp32Divisor(b.Features.DotProd)
		b.FP32 = throughputs(b.Int8.Conv3x3 / d)
		fp32Note = fmt.Sprintf("fp32: derived estimate, int8 rates ÷ %.2f", d)
	}
	scaled := ""
	if p.int8.scale != 1 {
		scaled = fmt.Sprintf(", scaled ×%.3f by cores·clock", p.int8.scale)
	}
	b.Source = fmt.Sprintf("int8: ncnn VGG16 int8 %g ms, %d threads, %s%s "+
		"(Tencent/ncnn benchmark/README.md; line and date in boards/SOURCES.md); conv3x3 = 15.35 GMAC ÷ (time − non-conv memory time); "+
		"conv1x1, linear ×%.1f, other conv ×%.1f; %s; bandwidth: %s; uncalibrated",
		p.int8.ms, p.int8.threads, p.int8.on, scaled, conv1x1Ratio, convRatio, fp32Note, p.bwNote)
	if len(p.variants) == 0 {
		b.OSReserveBytes = p.reserve.bytes(b.RAMBytes)
		return []*Board{&b}
	}
	out := make([]*Board, 0, len(p.variants))
	for _, ram := range p.variants {
		v := b
		v.ID = fmt.Sprintf("%s-%dg", b.ID, ram/oneGiB)
		v.Name = fmt.Sprintf("%s (%d GB)", b.Name, ram/oneGiB)
		v.RAMBytes = ram
		v.OSReserveBytes = p.reserve.bytes(ram)
		out = append(out, &v)
	}
	return out
}

// families lists the boards in the order All returns them.
func families() []profile {
	var (
		zero2wMHz = 1000
		pi3bpMHz  = 1400
	)
	return []profile{
		{
			base: Board{
				ID: "rpi-zero2w", Name: "Raspberry Pi Zero 2 W", CPU: "4x Cortex-A53",
				Cores: 4, MaxClockMHz: zero2wMHz, RAMBytes: 512 * oneMiB,
				Features:             Features{NEON: true},
				BandwidthBytesPerSec: bwPi3,
				Targets:              []Target{linuxArm64, linuxArmv7},
				Compatible:           []string{"raspberrypi,model-zero-2-w", "raspberrypi,model-zero-2"},
			},
			reserve: reservePi3, int8: a53Seed(zero2wMHz),
			bwNote: "estimate, ~2 GB/s of LPDDR2's 3.6 GB/s peak",
		},
		{
			base: Board{
				ID: "rpi3bplus", Name: "Raspberry Pi 3 Model B+", CPU: "4x Cortex-A53",
				Cores: 4, MaxClockMHz: pi3bpMHz, RAMBytes: 1 * oneGiB,
				Features:             Features{NEON: true},
				BandwidthBytesPerSec: bwPi3,
				Targets:              []Target{linuxArm64, linuxArmv7},
				Compatible:           []string{"raspberrypi,3-model-b-plus"},
			},
			reserve: reservePi3, int8: a53Seed(pi3bpMHz),
			bwNote: "estimate, ~2 GB/s of LPDDR2's 3.6 GB/s peak",
		},
		{
			base: Board{
				ID: "rpi4", Name: "Raspberry Pi 4 Model B", CPU: "4x Cortex-A72",
				Cores: 4, MaxClockMHz: 1800,
				Features:             Features{NEON: true},
				BandwidthBytesPerSec: bwPi4,
				Targets:              []Target{linuxArm64, linuxArmv7},
				// The SoC: Pi 4 B, Pi 400 and CM4 share it.
				Compatible: []string{"brcm,bcm2711"},
			},
			reserve: reservePi4, int8: seedPi4,
			variants: []int64{1 * oneGiB, 2 * oneGiB, 4 * oneGiB, 8 * oneGiB},
			bwNote:   "estimate, ~4 GB/s of LPDDR4-3200's 12.8 GB/s peak",
		},
		{
			base: Board{
				ID: "rpi5", Name: "Raspberry Pi 5", CPU: "4x Cortex-A76",
				Cores: 4, MaxClockMHz: 2400,
				Features:             Features{NEON: true, DotProd: true},
				BandwidthBytesPerSec: bwPi5,
				Targets:              []Target{linuxArm64},
				Compatible:           []string{"brcm,bcm2712"},
			},
			reserve: reservePi5, int8: seedPi5,
			variants: []int64{2 * oneGiB, 4 * oneGiB, 8 * oneGiB, 16 * oneGiB},
			bwNote:   "estimate, ~9 GB/s of LPDDR4X-4267's 17 GB/s peak",
		},
		{
			base: Board{
				ID: "jetson-nano", Name: "NVIDIA Jetson Nano (4 GB)", CPU: "4x Cortex-A57",
				Cores: 4, MaxClockMHz: 1430, RAMBytes: 4 * oneGiB,
				Features:             Features{NEON: true},
				BandwidthBytesPerSec: bwNano,
				Targets:              []Target{linuxArm64},
				// p3450 is the developer kit, p3448-0000/-0002 its 4 GB
				// modules; L4T writes "nvidia,p3449-0000-b00+p3448-0000-b00".
				Compatible: []string{"nvidia,jetson-nano", "nvidia,p3450-0000", "nvidia,p3448-0000*", "nvidia,p3448-0002*"},
			},
			reserve: reserveNano, int8: seedNano,
			bwNote: "estimate, ~6 GB/s of LPDDR4's 25.6 GB/s peak",
		},
		{
			base: Board{
				ID: "xavier-nx", Name: "NVIDIA Jetson Xavier NX (8 GB)", CPU: "6x Carmel (ARMv8.2)",
				Cores: 6, MaxClockMHz: 1900, RAMBytes: 8 * oneGiB,
				Features:             Features{NEON: true},
				BandwidthBytesPerSec: bwXavierNX,
				Targets:              []Target{linuxArm64},
				// p3668 is the Xavier NX module (-0000 SD, -0001 eMMC,
				// -0003 16 GB).
				Compatible: []string{"nvidia,jetson-xavier-nx", "nvidia,p3668-*"},
			},
			reserve: reserveNX, int8: seedAGXXavier,
			bwNote: "estimate, ~20 GB/s of LPDDR4x's 51.2 GB/s peak",
		},
		{
			base: Board{
				ID: "orin-nano", Name: "NVIDIA Jetson Orin Nano (8 GB)", CPU: "6x Cortex-A78AE",
				Cores: 6, MaxClockMHz: 1500, RAMBytes: 8 * oneGiB,
				Features:             Features{NEON: true, DotProd: true},
				BandwidthBytesPerSec: bwOrinNano,
				Targets:              []Target{linuxArm64},
				// p3767-0003/-0004 are the Orin Nano 8 GB/4 GB modules,
				// -0005 the developer kit's; a "-super" suffix marks
				// JetPack 6.2's Super mode. -0000/-0001 are Orin NX.
				Compatible: []string{"nvidia,jetson-orin-nano", "nvidia,p3767-0003*", "nvidia,p3767-0004*", "nvidia,p3767-0005*"},
			},
			reserve: reserveOrin, int8: seedOrinNano,
			bwNote: "estimate, ~30 GB/s of LPDDR5's 68 GB/s peak",
		},
		{
			base: Board{
				ID: "x86-64", Name: "x86-64 host (2-core AMD EPYC Zen 3, AVX2)", CPU: "2x AMD EPYC Zen 3",
				// EPYC 7003 (Milan) boosts to 3.5 GHz; cloud instances
				// report 2.45-3.5 GHz.
				Cores: 2, MaxClockMHz: 3500,
				// Nominal: the class has no fixed RAM; 8 GiB stands in.
				RAMBytes:             8 * oneGiB,
				Features:             Features{AVX2: true},
				BandwidthBytesPerSec: bwX86,
				Targets:              []Target{linuxAmd64},
			},
			reserve: reserveX86, int8: seedX86Int8, fp32: &seedX86FP32,
			bwNote: "measured, ~19 GB/s streaming read on one core (ANCHORS.md §1)",
		},
	}
}

// profiles is built once; All and ByID hand out copies so callers cannot
// change the table.
var profiles = buildAll()

func buildAll() []*Board {
	var out []*Board
	for _, f := range families() {
		out = append(out, f.build()...)
	}
	return out
}

func (b *Board) clone() *Board {
	c := *b
	c.Targets = slices.Clone(b.Targets)
	c.Compatible = slices.Clone(b.Compatible)
	return &c
}

// All returns every board profile, in a stable order: Raspberry Pis from the
// smallest, then Jetsons, then x86-64. Each call returns fresh copies.
func All() []*Board {
	out := make([]*Board, len(profiles))
	for i, b := range profiles {
		out[i] = b.clone()
	}
	return out
}

// IDs returns every profile id, in All's order.
func IDs() []string {
	ids := make([]string, len(profiles))
	for i, b := range profiles {
		ids[i] = b.ID
	}
	return ids
}

// ByID returns a copy of the profile with the given id. The error for an
// unknown id lists the known ones.
func ByID(id string) (*Board, error) {
	for _, b := range profiles {
		if b.ID == id {
			return b.clone(), nil
		}
	}
	return nil, fmt.Errorf("unknown board %q (known: %s)", id, strings.Join(IDs(), ", "))
}
