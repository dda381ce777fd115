package tensorio

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// RemoveStaleTemps removes only temporary files of our naming whose
// process is dead, or that are older than the age given; a running
// process's file, and every other file, stay.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.npz")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("no process to outlive: %v", err)
	}
	deadPID, livePID := dead.Process.Pid, os.Getppid()
	files := map[string]bool{ // name: removed
		".w.npz.tmp" + strconv.Itoa(deadPID) + "-abc":   true,
		".w.npz.tmp" + strconv.Itoa(livePID) + "-abc":   false, // a concurrent run's
		".w.npz.tmp" + strconv.Itoa(os.Getpid()) + "-x": false, // our own
		".w.npz.tmpoldnaming":                           false, // no PID, recent
		".w.npz.tmpancient":                             true,  // no PID, old
		".other.npz.tmp" + strconv.Itoa(deadPID) + "-a": false, // another file's
		"w.npz": false,
		"notes": false,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(dir, ".w.npz.tmpancient"), old, old)
	staleDir := filepath.Join(dir, ".w.npz.tmp"+strconv.Itoa(deadPID)+"-dir")
	if err := os.Mkdir(staleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files[filepath.Base(staleDir)] = true
	RemoveStaleTemps(path, StaleAge)
	var want []string
	for name, removed := range files {
		if !removed {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("left %q, want %q", got, want)
	}
}
