package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// rotation is a file output's ?rotate=SIZE&keep=N: once the file reaches
// SIZE it is renamed PATH.1 (PATH.1 to PATH.2, …, keeping N) and a new
// PATH is started. The zero value never rotates.
type rotation struct {
	maxBytes int64
	keep     int
}

// splitRotation reads "PATH?rotate=64MiB&keep=5" (what follows jsonl: or
// msgpack:). Without a "?" the path is taken whole.
func splitRotation(target string) (string, rotation, error) {
	i := strings.LastIndex(target, "?")
	if i < 0 {
		return target, rotation{}, nil
	}
	path, query := target[:i], target[i+1:]
	vals, err := url.ParseQuery(query)
	if err != nil {
		return "", rotation{}, fmt.Errorf("want PATH?rotate=SIZE&keep=N: %v", err)
	}
	rot := rotation{keep: 5}
	for k, v := range vals {
		if len(v) != 1 {
			return "", rotation{}, fmt.Errorf("%s given %d times", k, len(v))
		}
		switch k {
		case "rotate":
			n, err := parseSize(v[0])
			if err != nil || n < 4<<10 {
				return "", rotation{}, fmt.Errorf("rotate=%s: want a size of at least 4KiB, e.g. 64MiB", v[0])
			}
			rot.maxBytes = n
		case "keep":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 1 || n > 1000 {
				return "", rotation{}, fmt.Errorf("keep=%s: want 1..1000 rotated files", v[0])
			}
			rot.keep = n
		default:
			return "", rotation{}, fmt.Errorf("unknown option %q (want rotate=SIZE and keep=N)", k)
		}
	}
	if rot.maxBytes == 0 {
		return "", rotation{}, errors.New("keep= needs rotate=SIZE")
	}
	if path == "" {
		return "", rotation{}, errors.New("no path before the ?")
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
