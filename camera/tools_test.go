package camera

import "github.com/vggedge/vggedge/internal/testtool"

// The external programs these tests run are found through
// internal/testtool: a missing one skips the test here and fails it in CI.
var (
	requireTool = testtool.Require
	missingTool = testtool.Missing
	underCI     = testtool.UnderCI
)

// requireTorch returns a python3 that imports torch and torchvision.
var requireTorch = testtool.RequireTorch
