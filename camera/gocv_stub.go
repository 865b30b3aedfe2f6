//go:build !gocv

package camera

import "errors"

// gocvBuilt tells tests and messages whether this binary has OpenCV.
const gocvBuilt = false

// errNoGoCV is what gocv: URIs give in a build without OpenCV (the
// default, static CGO_ENABLED=0 build).
var errNoGoCV = errors.New("this vggedge was built without OpenCV; rebuild with -tags gocv (needs libopencv-dev)")

func init() {
	register("gocv", func(string, Options) (Source, error) { return nil, errNoGoCV })
}
