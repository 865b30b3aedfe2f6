package camera

import (
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"testing/fstest"
)

type nopSource struct{ uri string }

func (nopSource) Read(*Frame) error { return io.EOF }
func (nopSource) Close() error      { return nil }

func TestOpenDefault(t *testing.T) {
	dev := func(names ...string) fstest.MapFS {
		fs := fstest.MapFS{}
		for _, n := range names {
			fs["dev/"+n] = &fstest.MapFile{}
		}
		return fs
	}
	withName := func(fs fstest.MapFS, node, name string) fstest.MapFS {
		fs["sys/class/video4linux/"+node+"/name"] = &fstest.MapFile{Data: []byte(name + "\n")}
		return fs
	}
	rpicam := csiHost{fsys: fstest.MapFS{}, lookPath: func(p string) (string, error) {
		if p == "rpicam-vid" {
			return "/usr/bin/rpicam-vid", nil
		}
		return "", exec.ErrNotFound
	}, hasGstEl: noGst}
	noCSI := csiHost{fsys: fstest.MapFS{}, lookPath: func(string) (string, error) { return "", exec.ErrNotFound }, hasGstEl: noGst}
	jetson := csiHost{fsys: fstest.MapFS{"proc/device-tree/compatible": {Data: []byte("nvidia,tegra210\x00")}},
		lookPath: func(p string) (string, error) { return "/usr/bin/" + p, nil }, hasGstEl: noGst}

	for _, tc := range []struct {
		name     string
		fsys     fstest.MapFS
		csi      csiHost
		v4l2     bool
		openable []string // URIs that open
		want     string
		wantErr  string
	}{
		{"usb camera", dev("video0", "video1"), noCSI, true, []string{"v4l2:///dev/video0"}, "v4l2:///dev/video0", ""},
		{"numeric order", dev("video10", "video2"), noCSI, true, []string{"v4l2:///dev/video2", "v4l2:///dev/video10"}, "v4l2:///dev/video2", ""},
		{"metadata node first", dev("video0", "video1"), noCSI, true, []string{"v4l2:///dev/video1"}, "v4l2:///dev/video1", ""},
		{"pi codec nodes skipped, csi", withName(dev("video10"), "video10", "bcm2835-codec-decode"), rpicam, true, []string{"v4l2:///dev/video10", "csi://0"}, "csi://0", ""},
		{"jetson csi", withName(dev("video0"), "video0", "vi-output, imx219 9-0010"), jetson, true, []string{"csi://0"}, "csi://0", ""},
		{"no v4l2 scheme", dev("video0"), rpicam, false, []string{"v4l2:///dev/video0", "csi://0"}, "csi://0", ""},
		{"nothing", dev(), noCSI, true, nil, "", "no camera found"},
		{"nodes that do not open", dev("video0"), noCSI, true, nil, "", "no camera found: tried /dev/video0 (busy)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := cameraProbe{
				fsys: tc.fsys,
				csi:  tc.csi,
				has:  func(s string) bool { return s == "v4l2" && tc.v4l2 },
				openURI: func(uri string, o Options) (Source, error) {
					for _, u := range tc.openable {
						if u == uri {
							return nopSource{uri}, nil
						}
					}
					return nil, errors.New("busy")
				},
			}
			s, uri, err := p.open(Options{})
			if tc.wantErr != "" {
				if !errors.Is(err, ErrNoCamera) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want ErrNoCamera %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || uri != tc.want || s.(nopSource).uri != tc.want {
				t.Fatalf("got %q, %v; want %q", uri, err, tc.want)
			}
		})
	}
}

// On this machine (no camera in the test environment is assumed), the
// real OpenDefault either finds one or says ErrNoCamera — never panics.
func TestOpenDefaultHere(t *testing.T) {
	s, uri, err := OpenDefault(Options{})
	if err != nil {
		if !errors.Is(err, ErrNoCamera) {
			t.Fatalf("error %v does not wrap ErrNoCamera", err)
		}
		return
	}
	t.Logf("default camera %s", uri)
	s.Close()
}
