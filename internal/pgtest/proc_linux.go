package pgtest

import (
	"os/exec"
	"syscall"
)

// setProcAttr runs cmd as owner (when not nil) and has the kernel ask it
// for an immediate shutdown if the test process dies first, so that no
// server outlives a crashed or interrupted test run. Go sets the parent
// death signal after switching user, which would otherwise clear it.
func setProcAttr(cmd *exec.Cmd, owner *syscall.Credential) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT, Credential: owner}
}
