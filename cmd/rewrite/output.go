package main

import (
	"bytes"
	"fmt"
	"io"
	"multigpu/tensorio"
	"os"

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
// old file or the whole new one (tensorio.AtomicWrite: a temporary file
// beside it, synced, renamed over it; a symbolic link at path is followed
// and stays). On failure path is left as it was. Stale temporary files
// of dead processes beside it are removed first.
func writeFileAtomic(path string, data []byte) error {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	tensorio.RemoveStaleTemps(tensorio.ResolveLinks(path), tensorio.StaleAge)
	if err := tensorio.AtomicWrite(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}); err != nil {
		return fmt.Errorf("cannot write %w", err)
	}
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
