package tensorio

import (
	"archive/zip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
		return fmt.Errorf("%s: unknown archive extension %q: want .npz or .safetensors", path, filepath.Ext(path))
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
	switch ext(path) {
	case ".npz":
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil {
			return nil, fmt.Errorf("%s: not a valid .npz (zip) archive: %w", path, err)
		}
		var meta map[string]string
		if zr.Comment == "" || json.Unmarshal([]byte(zr.Comment), &meta) != nil {
			return nil, nil
		}
		return meta, nil
	case ".safetensors":
		var lb [8]byte
		if _, err := f.ReadAt(lb[:], 0); err != nil {
			return nil, fmt.Errorf("%s: reading the header length: %w", path, err)
		}
		hlen := binary.LittleEndian.Uint64(lb[:])
		if hlen > maxSafetensorsHeader || hlen > uint64(max(fi.Size()-8, 0)) {
			return nil, fmt.Errorf("%s: header length %d: the file holds %d bytes", path, hlen, fi.Size())
		}
		header := make([]byte, hlen)
		if _, err := f.ReadAt(header, 8); err != nil {
			return nil, fmt.Errorf("%s: reading the header: %w", path, err)
		}
		var h struct {
			Meta map[string]string `json:"__metadata__"`
		}
		if err := json.Unmarshal(header, &h); err != nil {
			return nil, fmt.Errorf("%s: malformed JSON header: %w", path, err)
		}
		return h.Meta, nil
	}
	return nil, fmt.Errorf("%s: unknown archive extension %q: want .npz or .safetensors", path, filepath.Ext(path))
}
