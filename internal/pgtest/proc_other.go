//go:build !linux

package pgtest

import (
	"os/exec"
	"syscall"
)

// setProcAttr runs cmd as owner (when not nil); where the kernel cannot
// signal a child when its parent dies, cleanup alone stops the server.
func setProcAttr(cmd *exec.Cmd, owner *syscall.Credential) {
	if owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner}
	}
}
