package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"multigpu/graph"
)

// writers maps each output format to the function that writes it.
var writers = map[format]func(io.Writer, *graph.Graph) error{
	formatText: graph.Print,
	formatDOT:  graph.WriteDOT,
}

// render returns g in format f. Rendering into memory first means a failure
// never leaves half a graph on standard output or in a file.
func render(g *graph.Graph, f format) ([]byte, error) {
	write, ok := writers[f]
	if !ok {
		return nil, fmt.Errorf("unknown format %q", f)
	}
	var buf bytes.Buffer
	if err := write(&buf, g); err != nil {
		return nil, fmt.Errorf("writing %s: %w", f, err)
	}
	return buf.Bytes(), nil
}

// writeOutput writes data to o.output, or to stdout when it is empty.
func writeOutput(o *options, stdout io.Writer, data []byte) error {
	if o.output == "" {
		_, err := stdout.Write(data)
		return err
	}
	return writeFileAtomic(o.output, data)
}

// writeFileAtomic replaces path with data so that a reader sees either the
// old file or the whole new one: it writes a temporary file in the same
// directory, syncs it, and renames it over path. On failure path is left as
// it was and the temporary file is removed. A new file gets mode 0644; an
// existing one keeps its mode.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		// Name path, not the temporary file the user never asked for.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("cannot write %s: %w", path, err)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable. Some file systems cannot sync a
// directory; the file itself is already written, so errors are ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
