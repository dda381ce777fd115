package tensorio

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StaleAge is the age past which RemoveStaleTemps removes a temporary
// file whose writer cannot be told dead: a day, far longer than any write.
const StaleAge = 24 * time.Hour

// tempName returns the name of a temporary file for base written by this
// process: .BASE.tmpPID-SUFFIX, so that RemoveStaleTemps can tell whose
// it is.
func tempName(base, suffix string) string {
	return "." + base + ".tmp" + strconv.Itoa(os.Getpid()) + "-" + suffix
}

// RemoveStaleTemps removes the temporary files that AtomicWrite of path
// left beside it (and the temporary directories named the same way, of a
// writer that puts a whole directory at path) in a process that died before renaming them (killed, or
// the machine stopped): those whose writer's process no longer exists,
// and those older than age whatever wrote them. A file of a process still
// running, another run writing the same path, is left alone, as is every
// file of another naming. Errors are ignored: this is housekeeping.
func RemoveStaleTemps(path string, age time.Duration) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	prefix := "." + base + ".tmp"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !(e.Type().IsRegular() || e.IsDir()) {
			continue
		}
		stale := false
		if pid, _, ok := strings.Cut(name, "-"); ok {
			if n, err := strconv.Atoi(pid); err == nil && n > 0 && n != os.Getpid() {
				stale = !processAlive(n)
			}
		}
		if !stale {
			fi, err := e.Info()
			stale = err == nil && time.Since(fi.ModTime()) > age
		}
		if stale {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
