//go:build unix

package tensorio

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with this id exists (a zombie
// not yet waited for counts as alive).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
