package quant

import "github.com/vggedge/vggedge/internal/testtool"

// The external programs these tests run (python3 with PyTorch) are found
// through internal/testtool: a missing one skips the test here and fails
// it in CI.
var (
	missingTool  = testtool.Missing
	underCI      = testtool.UnderCI
	requireTorch = testtool.RequireTorch
)
