//go:build !unix

package atomicfile

func isEINVAL(error) bool { return true } // directory sync is best effort here
