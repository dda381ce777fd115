package tensorio

import (
	"archive/zip"
	"encoding/json"
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
	return readNPZ(r, size, 0)
}

// readNPZ is ReadNPZ under a limit on the bytes its members decompress to
// (none when limit <= 0). The members' sizes are summed as the archive
// declares them before any is inflated, and the zip reader fails a member
// that decompresses to more than its declared size, so a zip bomb is
// refused before it is inflated.
func readNPZ(r io.ReaderAt, size int64, limit int64) (map[string]*tensor.Dense, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a valid .npz (zip) archive: %w", err)
	}
	if limit > 0 {
		var total uint64
		for _, f := range zr.File {
			total += f.UncompressedSize64
			if total > uint64(limit) || f.UncompressedSize64 > uint64(limit) {
				return nil, &LimitError{What: plural(len(zr.File), "the member of the archive", "the %d members of the archive"), Need: sumSizes(zr.File), Limit: limit}
			}
		}
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
		t, err := readNPZMember(f, size, limit)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", f.Name, err)
		}
		out[name] = t
	}
	return out, nil
}

// readNPZMember reads one member of an archive of the given size.
func readNPZMember(f *zip.File, size, limit int64) (*tensor.Dense, error) {
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
	t, err := readNPY(rc, avail, prealloc, limit)
	if err != nil {
		return nil, err
	}
	if err := expectEOF(rc); err != nil {
		return nil, err
	}
	return t, nil
}

// plural returns one when n is 1, else many with n in it.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf(many, n)
}

// sumSizes is the total of the sizes the members declare, saturated at
// the largest int64.
func sumSizes(files []*zip.File) int64 {
	var total uint64
	for _, f := range files {
		if total += f.UncompressedSize64; total > 1<<63-1 || f.UncompressedSize64 > 1<<63-1 {
			return 1<<63 - 1
		}
	}
	return int64(total)
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
func WriteNPZ(w io.Writer, ts map[string]*tensor.Dense) error { return WriteNPZMeta(w, ts, nil) }

// WriteNPZMeta is WriteNPZ with metadata: meta, when not empty, is the
// archive's comment, a JSON object of its keys and values (ReadNPZMeta),
// which NumPy ignores.
func WriteNPZMeta(w io.Writer, ts map[string]*tensor.Dense, meta map[string]string) error {
	names, err := sortedNames(ts)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	if len(meta) > 0 {
		c, err := json.Marshal(meta) // sorted keys
		if err != nil {
			return err
		}
		if len(c) > 0xffff {
			return fmt.Errorf("metadata of %d bytes: a zip comment holds at most 65535", len(c))
		}
		if err := zw.SetComment(string(c)); err != nil {
			return err
		}
	}
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
