package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gorgonia.org/tensor"

	"multigpu/tensorio"
)

// writeOutputDir writes every tensor of outs as DIR/NAME.npy, all or
// nothing. The files are written and synced in a new directory beside
// DIR (.DIR.tmpPID-*), which then takes DIR's place in one step:
//   - DIR does not exist: the new directory is renamed to DIR;
//   - DIR holds only files and links: they are linked into the new
//     directory (hard links: nothing is copied), all but the outputs it
//     replaces, and the two directories are exchanged atomically
//     (renameat2 RENAME_EXCHANGE, Linux); the old one is then removed;
//   - otherwise (DIR holds directories, or the system cannot exchange):
//     the outputs are renamed into DIR one by one. A run stopped during
//     those renames, and only then, leaves some outputs new and the
//     others as they were.
//
// A run that fails before the step leaves DIR as it was; what it wrote
// beside it is removed, or, when it was killed, by a later run
// (tensorio.RemoveStaleTemps).
func writeOutputDir(dir string, names []string, outs map[string]*tensor.Dense) error {
	dir = tensorio.ResolveLinks(dir)
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	if base == "." || base == ".." || base == string(filepath.Separator) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		parent, base = filepath.Split(abs)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tensorio.RemoveStaleTemps(filepath.Join(parent, base), tensorio.StaleAge)
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp"+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	for _, name := range names {
		if err := writeSynced(filepath.Join(tmp, name+".npy"), outs[name]); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, name+".npy"), err)
		}
	}
	fi, err := os.Stat(dir)
	if os.IsNotExist(err) {
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		syncDir(tmp)
		if err := os.Rename(tmp, dir); err == nil {
			done = true
			syncDir(parent)
			return nil
		}
		fi, err = os.Stat(dir) // made meanwhile: go on as for an existing DIR
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: expected a directory, found a file", dir)
	}
	outputs := map[string]bool{}
	for _, name := range names {
		outputs[name+".npy"] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	swap := true
	for _, e := range entries {
		if outputs[e.Name()] {
			continue
		}
		if !linkInto(dir, tmp, e) {
			swap = false
			break
		}
	}
	if swap {
		os.Chmod(tmp, fi.Mode().Perm())
		syncDir(tmp)
		if err := exchange(tmp, dir); err == nil {
			done = true
			syncDir(parent)
			restoreNewcomers(tmp, dir, entries)
			os.RemoveAll(tmp) // the old directory: its files are linked into the new one
			return nil
		}
	}
	// One by one.
	for _, name := range names {
		if err := os.Rename(filepath.Join(tmp, name+".npy"), filepath.Join(dir, name+".npy")); err != nil {
			return err
		}
	}
	syncDir(dir)
	return nil
}

// linkInto links the entry e of dir into tmp: a hard link for a file, a
// new link with the same target for a symbolic link. It reports false for
// anything else, or when the link cannot be made.
func linkInto(dir, tmp string, e fs.DirEntry) bool {
	from, to := filepath.Join(dir, e.Name()), filepath.Join(tmp, e.Name())
	switch {
	case e.Type().IsRegular():
		return os.Link(from, to) == nil
	case e.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(from)
		return err == nil && os.Symlink(target, to) == nil
	}
	return false
}

// restoreNewcomers moves back into dir what appeared in old (DIR before
// the exchange) after its entries were listed: files another process
// wrote meanwhile, which must not be removed with it.
func restoreNewcomers(old, dir string, listed []fs.DirEntry) {
	seen := map[string]bool{}
	for _, e := range listed {
		seen[e.Name()] = true
	}
	now, err := os.ReadDir(old)
	if err != nil {
		return
	}
	for _, e := range now {
		if !seen[e.Name()] {
			if _, err := os.Lstat(filepath.Join(dir, e.Name())); os.IsNotExist(err) {
				os.Rename(filepath.Join(old, e.Name()), filepath.Join(dir, e.Name()))
			}
		}
	}
}

// writeSynced writes t as a new .npy file at path and syncs it.
func writeSynced(path string, t *tensor.Dense) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if err := tensorio.WriteNPY(f, t); err != nil {
		return err
	}
	return f.Sync()
}

// outputNames returns the names of the outputs, in order, without
// duplicates.
func outputNames(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
