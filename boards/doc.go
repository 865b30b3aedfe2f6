// Package boards knows the edge boards vggedge runs on: their cores, clocks,
// RAM, ISA features and how fast they run each kind of layer; it detects the
// board it is running on and estimates a model's latency there.
//
// # Profiles
//
// All returns one Board per profile, in a stable order; ByID finds one by
// id (rpi-zero2w, rpi3bplus, rpi4-1g … rpi4-8g, rpi5-2g … rpi5-16g,
// jetson-nano, xavier-nx, orin-nano, x86-64). RAM variants of a board are
// generated from one base profile and differ only in RAM and OS reserve.
// x86-64 is the development host class (2-core AMD EPYC Zen 3, AVX2); its
// 8 GiB of RAM is nominal.
//
// # Where the numbers come from
//
// Throughputs are effective all-core GMAC/s per kind of work (conv3x3,
// conv1x1, other conv, linear). They are seeded, not measured by vggedge:
// the int8 3x3 rate of each board is derived from ncnn's published VGG16
// int8 time on that board (Tencent/ncnn benchmark/README.md; SOURCES.md in
// this directory gives each figure's line, commit and date) so that the
// estimate below gives the published time back:
//
//	conv3x3 = 15,346,630,656 conv MACs ÷ (published s − non-conv bytes ÷ bandwidth)
//
// where the non-conv bytes are VGG16's pools and Linear layers (131 MB at
// int8). Boards without a published figure are scaled from a relative by
// cores × clock: the Pi 3B+ and Zero 2 W from a 2.0 GHz Cortex-A53, the
// Xavier NX from the AGX Xavier. The x86 figures are ncnn measured on our
// host class. The other kinds of work are fixed ratios of the 3x3 rate
// (conv1x1 and linear 0.6, other convolutions 0.5: no Winograd for them),
// and fp32 is int8 divided by a ratio derived from the x86 host's measured
// fp32/int8 pair (cores without an int8 dot product) or from the Pi 5's
// fp16 and int8 figures (cores with SDOT); only x86 fp32 is seeded from its
// own measurement. Bandwidths are estimates of effective streaming reads
// (30–60% of each memory bus's peak), except the x86 host's, measured. Every
// profile's Source says which figures it rests on; profiles.go shows the
// arithmetic.
//
// # OS reserve
//
// OSReserveBytes is what the board keeps from vggedge:
//
//	reserve = carve-out (fixed + per GiB of RAM) + OS baseline
//
// The carve-out is memory Linux never counts in MemTotal (GPU firmware,
// Jetson carve-outs, kernel image and page bookkeeping), fitted to the
// MemTotal real boards report: a Zero 2 W keeps 96 MiB (it shows ~416 MiB of
// 512). The baseline is a headless OS after boot plus camera buffers: 64 MiB
// on Raspberry Pi OS Lite for the Zero 2 W and 3B+, 128 MiB on a Pi 4/5,
// 768 MiB on a Jetson, whose GPU, camera daemon and CMA pool share the
// CPU's RAM. The budget check gives vggedge RAMBytes − OSReserveBytes.
//
// # Latency estimate
//
// EstimateLatency charges each layer
//
//	max(MACs ÷ (rate of its Op · 1e9), (InputBytes + OutputBytes) ÷ bandwidth)
//
// seconds (compute and memory overlap; the slower one bounds the layer).
// Pools are costed by bytes alone; in-place layers (ReLU, BatchNorm,
// Dropout, Flatten) cost nothing, being fused into their producer. The
// estimate is exact for VGG16 int8 on the boards it was seeded from and
// carries an error band of ±25% (UncalibratedErrorBand, UncalibratedNote)
// elsewhere: other layer mixes lean on the ratios and bandwidth estimates.
// A board whose rates are fitted to vggedge's own per-layer benchmarks sets
// Calibrated and gets ±10%.
//
// # Detection
//
// Detect reads /proc/device-tree/model and /proc/device-tree/compatible
// (NUL-separated; most specific first) and MemTotal from /proc/meminfo, and
// takes CPU features from golang.org/x/sys/cpu, never /proc/cpuinfo. A
// compatible string picks the family (brcm,bcm2712 Pi 5; brcm,bcm2711 Pi 4;
// raspberrypi,model-zero-2-w; raspberrypi,3-model-b-plus; the Jetson module
// part numbers p3448/p3450, p3668, p3767-0003/4/5, including NVIDIA's
// "carrier+module" form), MemTotal the RAM variant: the smallest whose
// nominal RAM holds it. A board with a known SoC but no profile (Pi 3 B, AGX
// Xavier, Orin NX) gets the nearest profile, marked Approximate. An amd64
// machine without a device tree and with AVX2 is x86-64. Anything else is
// reported with a nil Board and a Reason, not an error; errors are kept for
// files that exist but cannot be read or parsed. DetectFS does the same on
// any fs.FS, which is how the fixtures in testdata/ test it.
//
// It imports infer (a model's costs), internal/atomicfile and x/sys/cpu;
// nothing from camera, quant or firmware.
package boards
