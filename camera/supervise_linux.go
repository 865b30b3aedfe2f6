package camera

import (
	"os/exec"
	"syscall"
)

// childProcAttr puts a child in its own process group and has the kernel
// SIGKILL it when the thread that started it (and so this process) dies.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalChildGroup sends SIGTERM (or SIGKILL) to the child's whole process
// group; errors (the group is gone) do not matter.
func signalChildGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	syscall.Kill(-cmd.Process.Pid, sig)
}
