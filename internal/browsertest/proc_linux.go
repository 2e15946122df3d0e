package browsertest

import (
	"os/exec"
	"syscall"
)

// setProcAttr starts Chromium in a process group of its own, so that
// killGroup reaches its helper processes, and has the kernel kill the
// browser if the test process dies first.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills every process left in Chromium's process group. The
// group's id stays reserved while any member lives, so this never reaches
// another process.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
