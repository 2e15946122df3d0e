//go:build !linux

package s3test

import "os/exec"

// setProcAttr does nothing where the kernel cannot kill a child with its
// parent; t.Cleanup still kills MinIO.
func setProcAttr(*exec.Cmd) {}
