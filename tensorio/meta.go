package tensorio

import (
	"archive/zip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"gorgonia.org/tensor"
)

// WriteArchiveMeta is WriteArchive with metadata kept out of the tensors:
// a .npz file's archive comment, a .safetensors file's "__metadata__"
// header entry (see WriteNPZMeta, WriteSafetensorsMeta). ReadArchive
// ignores it, so the file loads as the tensors alone; ReadArchiveMeta
// reads it back.
func WriteArchiveMeta(path string, ts map[string]*tensor.Dense, meta map[string]string) error {
	var write func(io.Writer, map[string]*tensor.Dense, map[string]string) error
	switch ext(path) {
	case ".npz":
		write = WriteNPZMeta
	case ".safetensors":
		write = WriteSafetensorsMeta
	default:
		return archiveExtError(path)
	}
	return AtomicWrite(path, func(w io.Writer) error { return write(w, ts, meta) })
}

// ReadArchiveMeta reads the metadata WriteArchiveMeta wrote in a .npz or
// .safetensors file, without reading its tensors: nil when it has none.
// A .npz whose comment is not a JSON object of strings has none.
func ReadArchiveMeta(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var meta map[string]string
	switch ext(path) {
	case ".npz":
		meta, err = readNPZMeta(f, fi.Size())
	case ".safetensors":
		meta, err = readSafetensorsMeta(f, fi.Size())
	default:
		return nil, archiveExtError(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return meta, nil
}

// readNPZMeta reads the metadata of a .npz archive of the given size.
func readNPZMeta(r io.ReaderAt, size int64) (map[string]string, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a valid .npz (zip) archive: %w", err)
	}
	var meta map[string]string
	if zr.Comment == "" || json.Unmarshal([]byte(zr.Comment), &meta) != nil {
		return nil, nil
	}
	return meta, nil
}

// readSafetensorsMeta reads the "__metadata__" of a safetensors file of
// the given size.
func readSafetensorsMeta(r io.ReaderAt, size int64) (map[string]string, error) {
	var lb [8]byte
	if _, err := r.ReadAt(lb[:], 0); err != nil {
		return nil, fmt.Errorf("reading the header length: %w", err)
	}
	hlen := binary.LittleEndian.Uint64(lb[:])
	if hlen > maxSafetensorsHeader || hlen > uint64(max(size-8, 0)) {
		return nil, fmt.Errorf("header length %d: the file holds %d bytes", hlen, size)
	}
	header := make([]byte, hlen)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	var h struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return nil, fmt.Errorf("malformed JSON header: %w", err)
	}
	return h.Meta, nil
}
