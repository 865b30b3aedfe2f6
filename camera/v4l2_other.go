//go:build !linux

package camera

import "errors"

// v4l2Host on systems without V4L2: opening fails with a clear error.
var v4l2Host = v4l2System{
	open: func(string) (v4l2Device, error) { return nil, errV4L2Unsupported },
	list: func() []string { return nil },
}

var errV4L2Unsupported = errors.New("V4L2 cameras need Linux")
