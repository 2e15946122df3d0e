package s3test

import (
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel kill MinIO if the test process dies first, so
// that no server outlives a crashed or interrupted test run.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
