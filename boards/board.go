package boards

// Features are the CPU features that decide which kernels run.
type Features struct {
	NEON    bool `json:"neon"`
	DotProd bool `json:"dotprod"` // arm64 SDOT/UDOT (FEAT_DotProd)
	I8MM    bool `json:"i8mm"`    // arm64 SMMLA (FEAT_I8MM)
	AVX2    bool `json:"avx2"`
	// AVX512VNNI is VPDPBUSD with the AVX-512 F/BW/VL it needs (x86
	// servers and recent desktops; no board profile has it).
	AVX512VNNI bool `json:"avx512vnni,omitempty"`
}

// Throughput is effective multiply-accumulates per second, in GMAC/s, for
// each kind of work a layer can be (infer.LayerCost.Op): "conv3x3",
// "conv1x1", "conv" (other kernel sizes), "linear". Pooling and in-place
// layers are costed by bytes moved alone.
type Throughput struct {
	Conv3x3 float64 `json:"conv3x3"`
	Conv1x1 float64 `json:"conv1x1"`
	Conv    float64 `json:"conv"`
	Linear  float64 `json:"linear"`
}

// Target is a Go build target that runs on a board.
type Target struct {
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
	GOARM  string `json:"goarm,omitempty"` // "6" or "7" for GOARCH=arm
}

// Board is a profile of one edge board: what it has and how fast it runs
// each kind of layer with all its cores.
type Board struct {
	ID          string `json:"id"`   // stable id: "rpi4-4g"
	Name        string `json:"name"` // "Raspberry Pi 4 Model B (4 GB)"
	CPU         string `json:"cpu"`  // "4x Cortex-A72"
	Cores       int    `json:"cores"`
	MaxClockMHz int    `json:"max_clock_mhz"`
	RAMBytes    int64  `json:"ram_bytes"`
	// OSReserveBytes is RAM the OS, firmware/GPU carve-out and camera stack
	// keep for themselves; available = RAMBytes - OSReserveBytes.
	OSReserveBytes int64    `json:"os_reserve_bytes"`
	Features       Features `json:"features"`
	// BandwidthBytesPerSec is the effective (streaming read) memory bandwidth.
	BandwidthBytesPerSec float64 `json:"bandwidth_bytes_per_sec"`
	// Targets are the Go builds that run on the board, the preferred first.
	Targets []Target `json:"targets"`
	// Int8 and FP32 are effective all-core throughputs, seeded from
	// published measurements (see the comments in profiles.go).
	Int8 Throughput `json:"int8_gmacs"`
	FP32 Throughput `json:"fp32_gmacs"`
	// Source says where the throughput figures come from.
	Source string `json:"source"`
	// Compatible lists device-tree compatible strings that identify the
	// board family (Detect matches them; a trailing "*" matches a prefix).
	Compatible []string `json:"-"`
	// Calibrated is true when Int8 and FP32 were fitted to vggedge's own
	// per-layer benchmarks on this board rather than seeded from published
	// whole-network figures; it narrows the estimate's error band
	// (CalibratedErrorBand instead of UncalibratedErrorBand).
	Calibrated bool `json:"calibrated"`

	// family groups the RAM variants of one board (rpi4-1g … rpi4-8g) so
	// detection can pick among them by MemTotal.
	family string
}
