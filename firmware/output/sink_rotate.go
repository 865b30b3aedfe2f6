package output

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Rotation is a file output's ?rotate=SIZE&keep=N: once the file reaches
// SIZE it is renamed PATH.1 (PATH.1 to PATH.2, …, keeping N) and a new
// PATH is started. The zero value never rotates.
type Rotation struct {
	maxBytes int64
	keep     int
}

// SplitRotation reads "PATH?rotate=64MiB&keep=5" (what follows jsonl: or
// msgpack:). Without a "?" the path is taken whole.
func SplitRotation(target string) (string, Rotation, error) {
	i := strings.LastIndex(target, "?")
	if i < 0 {
		return target, Rotation{}, nil
	}
	path, query := target[:i], target[i+1:]
	vals, err := url.ParseQuery(query)
	if err != nil {
		return "", Rotation{}, fmt.Errorf("want PATH?rotate=SIZE&keep=N: %v", err)
	}
	rot := Rotation{keep: 5}
	for k, v := range vals {
		if len(v) != 1 {
			return "", Rotation{}, fmt.Errorf("%s given %d times", k, len(v))
		}
		switch k {
		case "rotate":
			n, err := ParseSize(v[0])
			if err != nil || n < 4<<10 {
				return "", Rotation{}, fmt.Errorf("rotate=%s: want a size of at least 4KiB, e.g. 64MiB", v[0])
			}
			rot.maxBytes = n
		case "keep":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 1 || n > 1000 {
				return "", Rotation{}, fmt.Errorf("keep=%s: want 1..1000 rotated files", v[0])
			}
			rot.keep = n
		default:
			return "", Rotation{}, fmt.Errorf("unknown option %q (want rotate=SIZE and keep=N)", k)
		}
	}
	if rot.maxBytes == 0 {
		return "", Rotation{}, errors.New("keep= needs rotate=SIZE")
	}
	if path == "" {
		return "", Rotation{}, errors.New("no path before the ?")
	}
	return path, rot, nil
}

// shiftFiles renames path to path.1, path.1 to path.2 and so on, dropping
// the one beyond keep.
func shiftFiles(path string, keep int) error {
	if err := os.Remove(fmt.Sprintf("%s.%d", path, keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(fmt.Sprintf("%s.%d", path, i), fmt.Sprintf("%s.%d", path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.Rename(path, path+".1")
}

// ParseSize reads a byte size: "300MiB", "1.5GiB", "512MB", "4096" (bytes).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	}
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q: want a size such as 300MiB, 1GiB or 512MB", s)
	}
	b := v * mult
	if b <= 0 || b > 1<<50 {
		return 0, fmt.Errorf("%q: must be positive and below 1 PiB", s)
	}
	return int64(b), nil
}
