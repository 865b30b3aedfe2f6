package boards

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vggedge/vggedge/internal/atomicfile"
)

// Profile is a board's throughput measured by `vggedge bench`: it replaces
// the seeded figures of a Board for `check --profile`.
type Profile struct {
	Format    string  `json:"format"` // "vggedge-profile"
	Board     string  `json:"board"`  // the profile id it calibrates
	Precision string  `json:"precision"`
	Threads   int     `json:"threads"`
	Model     string  `json:"model"` // what was benchmarked
	MedianMs  float64 `json:"median_ms"`
	// Throughput per kind of layer, GMAC/s, from the per-layer medians.
	Throughput Throughput `json:"gmacs"`
	// BandwidthBytesPerSec is fitted from the layers without MACs (pools);
	// 0 keeps the board's.
	BandwidthBytesPerSec float64    `json:"bandwidth_bytes_per_sec"`
	Conditions           Conditions `json:"conditions"`
	Version              string     `json:"version"`
}

// ProfileFormat marks a profile file.
const ProfileFormat = "vggedge-profile"

// Conditions are what makes a board's timings unreproducible; each is
// empty or zero where the board does not expose it.
type Conditions struct {
	TempBeforeC float64 `json:"temp_before_c,omitempty"`
	TempAfterC  float64 `json:"temp_after_c,omitempty"`
	Throttled   string  `json:"throttled,omitempty"` // Raspberry Pi firmware flags, e.g. "0x0"
	Governor    string  `json:"governor,omitempty"`
	CurFreqMHz  int     `json:"cur_freq_mhz,omitempty"`
}

// ReadConditions reads the CPU temperature, the Raspberry Pi throttling
// flags, the frequency governor and the current clock from sysfs.
func ReadConditions() Conditions {
	var c Conditions
	c.TempBeforeC = CPUTemp()
	if b, err := os.ReadFile("/sys/devices/platform/soc/soc:firmware/get_throttled"); err == nil {
		c.Throttled = "0x" + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"); err == nil {
		c.Governor = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"); err == nil {
		if khz, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			c.CurFreqMHz = khz / 1000
		}
	}
	return c
}

// CPUTemp is the hottest thermal zone in °C, or 0 when none is exposed.
func CPUTemp() float64 {
	zones, _ := filepath.Glob("/sys/class/thermal/thermal_zone*/temp")
	var t float64
	for _, z := range zones {
		b, err := os.ReadFile(z)
		if err != nil {
			continue
		}
		if milli, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			t = max(t, float64(milli)/1000)
		}
	}
	return t
}

// SaveProfile writes p as JSON, atomically (internal/atomicfile: a synced
// temporary file renamed over path), mode 0644.
func SaveProfile(path string, p *Profile) error {
	p.Format = ProfileFormat
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save profile %s: %w", path, err)
	}
	return nil
}

// LoadProfile reads and checks a profile file.
func LoadProfile(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	if p.Format != ProfileFormat {
		return nil, fmt.Errorf("profile %s: format %q, want %q (a file written by vggedge bench --save-profile)", path, p.Format, ProfileFormat)
	}
	t := p.Throughput
	for name, v := range map[string]float64{"conv3x3": t.Conv3x3, "conv1x1": t.Conv1x1, "conv": t.Conv, "linear": t.Linear} {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("profile %s: gmacs.%s %g: want a positive number", path, name, v)
		}
	}
	if p.BandwidthBytesPerSec < 0 || math.IsNaN(p.BandwidthBytesPerSec) || math.IsInf(p.BandwidthBytesPerSec, 0) {
		return nil, fmt.Errorf("profile %s: bandwidth_bytes_per_sec %g: want ≥ 0", path, p.BandwidthBytesPerSec)
	}
	if p.Precision != "int8" && p.Precision != "fp32" {
		return nil, fmt.Errorf("profile %s: precision %q: want int8 or fp32", path, p.Precision)
	}
	return &p, nil
}

// WithProfile returns a copy of b whose throughput at the profile's
// precision (and bandwidth, if measured) come from p, marked Calibrated.
func (b *Board) WithProfile(p *Profile) (*Board, error) {
	if p.Board != b.ID {
		return nil, errors.New("profile was measured on " + p.Board + ", not " + b.ID)
	}
	c := *b
	if p.Precision == "fp32" {
		c.FP32 = p.Throughput
	} else {
		c.Int8 = p.Throughput
	}
	if p.BandwidthBytesPerSec > 0 {
		c.BandwidthBytesPerSec = p.BandwidthBytesPerSec
	}
	c.Calibrated = true
	c.Source = fmt.Sprintf("measured by vggedge bench on %s, %d threads", p.Model, p.Threads)
	return &c, nil
}
