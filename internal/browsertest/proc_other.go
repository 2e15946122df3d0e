//go:build !linux

package browsertest

import "os/exec"

// setProcAttr does nothing where process groups are not used here.
func setProcAttr(*exec.Cmd) {}

// killGroup kills the browser only; its helpers exit with it.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
