//go:build !unix

package tensorio

// processAlive reports whether a process with this id exists; where that
// cannot be asked, every process counts as alive, and only age makes a
// temporary file stale.
func processAlive(pid int) bool { return true }
