package tensorio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gorgonia.org/tensor"
)

// ext is the lower-cased extension of path, with its dot.
func ext(path string) string { return strings.ToLower(filepath.Ext(path)) }

// ReadFile reads one tensor from a file: a NumPy .npy file, or, for a .pb
// extension, an ONNX TensorProto whose name is dropped. Unlike ReadNPY it
// checks that nothing follows the array. Errors name the file.
func ReadFile(path string) (*tensor.Dense, error) {
	e := ext(path)
	if e != ".npy" && e != ".pb" {
		return nil, fmt.Errorf("%s: unknown extension %q: want .npy (or an ONNX TensorProto .pb)", path, filepath.Ext(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var t *tensor.Dense
	if e == ".pb" {
		t, _, err = ReadTensorProto(f)
	} else {
		t, err = readNPYFile(f)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// readNPYFile reads a .npy file and checks that nothing follows the array.
func readNPYFile(f *os.File) (*tensor.Dense, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	avail := int64(-1) // a pipe or device: read the data as it comes
	if fi.Mode().IsRegular() {
		avail = fi.Size()
	}
	t, err := readNPY(f, avail, avail >= 0)
	if err != nil {
		return nil, err
	}
	if err := expectEOF(f); err != nil {
		return nil, err
	}
	return t, nil
}

// WriteFileAtomic writes t to path in NumPy's .npy format, whatever the
// extension, replacing the file atomically (see AtomicWrite).
func WriteFileAtomic(path string, t *tensor.Dense) error {
	return AtomicWrite(path, func(w io.Writer) error { return WriteNPY(w, t) })
}

// ReadArchive reads the named tensors of a .npz or .safetensors file,
// chosen by the file's extension. Errors name the file, and the member or
// tensor where there is one.
func ReadArchive(path string) (map[string]*tensor.Dense, error) {
	e := ext(path)
	if e != ".npz" && e != ".safetensors" {
		return nil, fmt.Errorf("%s: unknown archive extension %q: want .npz or .safetensors", path, filepath.Ext(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var ts map[string]*tensor.Dense
	if e == ".npz" {
		ts, err = ReadNPZ(f, fi.Size())
	} else {
		ts, err = ReadSafetensors(f, fi.Size())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}

// WriteArchive writes ts to a .npz or .safetensors file, chosen by the
// extension of path, atomically (see AtomicWrite). The layout depends only
// on the names and tensors (see WriteNPZ and WriteSafetensors), so equal
// inputs give equal files.
func WriteArchive(path string, ts map[string]*tensor.Dense) error {
	var write func(io.Writer, map[string]*tensor.Dense) error
	switch ext(path) {
	case ".npz":
		write = WriteNPZ
	case ".safetensors":
		write = WriteSafetensors
	default:
		return fmt.Errorf("%s: unknown archive extension %q: want .npz or .safetensors", path, filepath.Ext(path))
	}
	return AtomicWrite(path, func(w io.Writer) error { return write(w, ts) })
}

// AtomicWrite replaces the file at path with what write writes, so that
// readers see either the old file or the complete new one, never a part.
// It writes through a buffer to a temporary file in the same directory,
// syncs it to disk and renames it over path, then syncs the directory
// where the system allows it. The new file gets the permissions of the
// file it replaces, or 0666 less the umask as os.Create gives. On any
// error, or if write panics, the temporary file is removed and path is
// left as it was. Errors name path.
func AtomicWrite(path string, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("%s: want a file name, found a directory path", path)
	}
	f, tmp, err := createTemp(dir, base)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		if err := f.Chmod(fi.Mode().Perm()); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err // names both paths
	}
	done = true
	// Make the rename durable. Directories cannot be opened or synced on
	// every system (Windows), and the file itself is complete, so a
	// failure here is not reported.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// createTemp creates a new file beside base in dir. Unlike os.CreateTemp
// it creates the file with mode 0666, less the umask, as os.Create does.
func createTemp(dir, base string) (*os.File, string, error) {
	for range 100 {
		name := filepath.Join(dir, "."+base+".tmp"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("could not create a temporary file in %s", dir)
}
