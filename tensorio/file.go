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

// archiveExtError is the error for an archive path whose extension is
// neither .npz nor .safetensors.
func archiveExtError(path string) error {
	return fmt.Errorf("%s: unknown archive extension %q: want .npz or .safetensors", path, filepath.Ext(path))
}

// ReadFile reads one tensor from a file: a NumPy .npy file, or, for a .pb
// extension, an ONNX TensorProto whose name is dropped. Unlike ReadNPY it
// checks that nothing follows the array. Errors name the file.
func ReadFile(path string) (*tensor.Dense, error) { return ReadFileLimit(path, 0) }

// ReadFileLimit is ReadFile refusing, before allocating them, data of more
// than limit bytes (no limit when limit <= 0) with a *LimitError: the
// array a .npy header declares, or the bytes of a .pb file.
func ReadFileLimit(path string, limit int64) (*tensor.Dense, error) {
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
		t, err = readTensorProtoFile(f, limit)
	} else {
		t, err = readNPYFile(f, limit)
	}
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) && le.Path == "" {
			le.Path = path
			return nil, le
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// readTensorProtoFile reads an ONNX TensorProto file of at most limit
// bytes (any size when limit <= 0).
func readTensorProtoFile(f *os.File, limit int64) (*tensor.Dense, error) {
	var r io.Reader = f
	if limit > 0 {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
			return nil, &LimitError{What: "a TensorProto file", Need: fi.Size(), Limit: limit}
		}
		r = &limitReader{r: f, left: limit, limit: limit, what: "a TensorProto file"}
	}
	t, _, err := ReadTensorProto(r)
	return t, err
}

// readNPYFile reads a .npy file and checks that nothing follows the array.
func readNPYFile(f *os.File, limit int64) (*tensor.Dense, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	avail := int64(-1) // a pipe or device: read the data as it comes
	if fi.Mode().IsRegular() {
		avail = fi.Size()
	}
	t, err := readNPY(f, avail, avail >= 0, limit)
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
func ReadArchive(path string) (map[string]*tensor.Dense, error) { return ReadArchiveLimit(path, 0) }

// ReadArchiveLimit is ReadArchive refusing, before allocating them,
// tensors of more than limit bytes in all (no limit when limit <= 0) with
// a *LimitError: for a .npz the sizes its members declare decompressed,
// summed before any is inflated; for a .safetensors its data buffer.
func ReadArchiveLimit(path string, limit int64) (map[string]*tensor.Dense, error) {
	e := ext(path)
	if e != ".npz" && e != ".safetensors" {
		return nil, archiveExtError(path)
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
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: expected a regular file, found %s", path, describeMode(fi.Mode()))
	}
	var ts map[string]*tensor.Dense
	if e == ".npz" {
		ts, err = readNPZ(f, fi.Size(), limit)
	} else {
		if limit > 0 && fi.Size() > limit {
			err = &LimitError{What: "the tensors of the file", Need: fi.Size(), Limit: limit}
		} else {
			ts, err = ReadSafetensors(f, fi.Size())
		}
	}
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) && le.Path == "" {
			le.Path = path
			return nil, le
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}

// describeMode names the kind of file a mode is.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a " + m.Type().String() + " file"
}

// WriteArchive writes ts to a .npz or .safetensors file, chosen by the
// extension of path, atomically (see AtomicWrite). The layout depends only
// on the names and tensors (see WriteNPZ and WriteSafetensors), so equal
// inputs give equal files.
func WriteArchive(path string, ts map[string]*tensor.Dense) error {
	return WriteArchiveMeta(path, ts, nil)
}

// AtomicWrite replaces the file at path with what write writes, so that
// readers see either the old file or the complete new one, never a part.
// It writes through a buffer to a temporary file in the same directory,
// syncs it to disk and renames it over path, then syncs the directory
// where the system allows it. The new file gets the permissions of the
// file it replaces, or 0666 less the umask as os.Create gives. On any
// error, or if write panics, the temporary file is removed and path is
// left as it was. Errors name path.
//
// A symbolic link at path is followed: the file it names is replaced and
// the link stays. A directory at path is an error.
func AtomicWrite(path string, write func(io.Writer) error) error {
	given := path
	path = ResolveLinks(path)
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("%s: want a file name, found a directory path", given)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s: is a directory: want a file name", given)
	}
	f, tmp, err := createTemp(dir, base)
	if err != nil {
		return fmt.Errorf("%s: %w", given, tempErr(err))
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
		return fmt.Errorf("%s: %w", given, tempErr(err))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%s: %w", given, tempErr(err))
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		if err := f.Chmod(fi.Mode().Perm()); err != nil {
			return fmt.Errorf("%s: %w", given, tempErr(err))
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", given, tempErr(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", given, tempErr(err))
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

// tempErr drops the name of the temporary file from err, which the
// caller did not ask for: the error names the file it writes instead.
func tempErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ResolveLinks returns the path that path names once its symbolic links
// are followed, even when the last one dangles (its target does not exist
// yet): the file a write to path creates. Without links, or when they
// cannot be read, it returns path cleaned.
func ResolveLinks(path string) string {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		if r, err := filepath.EvalSymlinks(path); err == nil {
			return r
		}
		target, err := os.Readlink(path)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	if dir, base := filepath.Split(path); dir != "" {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, base)
		}
	}
	return filepath.Clean(path)
}

// createTemp creates a new file beside base in dir. Unlike os.CreateTemp
// it creates the file with mode 0666, less the umask, as os.Create does.
func createTemp(dir, base string) (*os.File, string, error) {
	for range 100 {
		name := filepath.Join(dir, tempName(base, strconv.FormatUint(rand.Uint64(), 36)))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("could not create a temporary file in %s", dir)
}
