package tensorio

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gorgonia.org/tensor"
)

// npzTime is the modification time of every member WriteNPZ writes, so
// that the same tensors always give the same bytes. It is the earliest
// time a zip file can record.
func npzTime() time.Time { return time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC) }

// ReadNPZ reads a NumPy .npz archive, a zip of .npy files, of the given
// size from r, as np.savez (stored members) and np.savez_compressed
// (deflated members) write it. The map's keys are the member names
// without their .npy suffix. A member that is not a .npy file, a name
// that appears twice and a member with bytes after its array are errors.
func ReadNPZ(r io.ReaderAt, size int64) (map[string]*tensor.Dense, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a valid .npz (zip) archive: %w", err)
	}
	out := make(map[string]*tensor.Dense, len(zr.File))
	for _, f := range zr.File {
		name, ok := strings.CutSuffix(f.Name, ".npy")
		if !ok || name == "" {
			return nil, fmt.Errorf("member %q: want a name ending in .npy", f.Name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("member %q appears twice", f.Name)
		}
		t, err := readNPZMember(f, size)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", f.Name, err)
		}
		out[name] = t
	}
	return out, nil
}

// readNPZMember reads one member of an archive of the given size.
func readNPZMember(f *zip.File, size int64) (*tensor.Dense, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The zip reader checks the declared size and the CRC when it reaches
	// the end of the member, so a header that declares more data than the
	// member's size is refused early. Only a stored member's size is
	// bounded by the archive's, so only then is the data allocated at once;
	// a deflated member's grows as it decompresses.
	avail := int64(-1)
	if f.UncompressedSize64 <= 1<<62 {
		avail = int64(f.UncompressedSize64)
	}
	prealloc := f.Method == zip.Store && f.CompressedSize64 == f.UncompressedSize64 && f.CompressedSize64 <= uint64(size)
	t, err := readNPY(rc, avail, prealloc)
	if err != nil {
		return nil, err
	}
	if err := expectEOF(rc); err != nil {
		return nil, err
	}
	return t, nil
}

// expectEOF reads r to its end and reports any bytes left over.
func expectEOF(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d unexpected bytes after the array data", n)
	}
	return nil
}

// WriteNPZ writes ts to w as a NumPy .npz archive like np.savez: one
// stored (uncompressed) member NAME.npy per tensor, in sorted name order,
// with a fixed timestamp so that equal inputs give equal files.
func WriteNPZ(w io.Writer, ts map[string]*tensor.Dense) error {
	names, err := sortedNames(ts)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, name := range names {
		fw, err := zw.CreateHeader(&zip.FileHeader{
			Name:     name + ".npy",
			Method:   zip.Store,
			Modified: npzTime(),
		})
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		if err := WriteNPY(fw, ts[name]); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
	}
	return zw.Close()
}

// sortedNames returns the names of ts in order, refusing empty names and
// nil tensors.
func sortedNames(ts map[string]*tensor.Dense) ([]string, error) {
	names := make([]string, 0, len(ts))
	for name, t := range ts {
		if name == "" {
			return nil, errors.New("a tensor has an empty name")
		}
		if t == nil {
			return nil, fmt.Errorf("tensor %q is nil", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
