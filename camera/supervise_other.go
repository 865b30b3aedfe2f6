//go:build !linux

package camera

import (
	"os"
	"os/exec"
	"syscall"
)

// childProcAttr: process groups and Pdeathsig are Linux features here;
// elsewhere the child is signalled alone.
func childProcAttr() *syscall.SysProcAttr { return nil }

func signalChildGroup(cmd *exec.Cmd, kill bool) {
	if kill {
		cmd.Process.Kill()
		return
	}
	cmd.Process.Signal(os.Interrupt)
}
