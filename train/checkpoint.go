package train

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"multigpu/tensorio"
)

// A checkpoint is two files, the weights (NAME.npz or NAME.safetensors,
// the model's params and nothing else, so that the single-device model
// loads it) and the training state beside it (StatePath: NAME.state.npz).
// Each is replaced atomically, and the two are bound as one unit: both
// carry, as archive metadata outside their tensors (a .npz file's comment,
// a .safetensors file's "__metadata__"), the checkpoint's generation (the
// epochs done) and the SHA-256 digest of the weights (WeightsDigest). A
// pair whose digests differ is torn: an interrupted write left one file of
// one generation and the other of another.
//
// WriteCheckpoint keeps the previous complete pair as NAME.prev.EXT and
// NAME.prev.state.npz (hard links, so no data is copied) before it
// replaces the state and then the weights, so that at every moment one of
// the two pairs is complete; LoadCheckpoint falls back on the previous
// pair when the current one is torn, and says so.
const (
	metaGeneration = "multigpu.checkpoint.generation"
	metaDigest     = "multigpu.checkpoint.weights-sha256"
)

// PrevPath returns where WriteCheckpoint keeps the previous checkpoint of
// the one at path: NAME.prev.EXT, with its state at StatePath(PrevPath).
func PrevPath(path string) string {
	e := filepath.Ext(path)
	return strings.TrimSuffix(path, e) + ".prev" + e
}

// CheckpointPaths returns every file a checkpoint at path writes: the
// weights, the state, and the previous pair.
func CheckpointPaths(path string) []string {
	return []string{path, StatePath(path), PrevPath(path), StatePath(PrevPath(path))}
}

// WeightsDigest returns the SHA-256 digest, in hex, of weights: of their
// .npz serialisation (names sorted, fixed timestamps), which depends only
// on their names, types, shapes and values.
func WeightsDigest(weights map[string]*tensor.Dense) (string, error) {
	h := sha256.New()
	if err := tensorio.WriteNPZ(h, weights); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// binding is the metadata that ties a checkpoint's two files together.
type binding struct {
	generation int64
	digest     string
}

func (b binding) meta() map[string]string {
	return map[string]string{metaGeneration: strconv.FormatInt(b.generation, 10), metaDigest: b.digest}
}

// readBinding reads the binding of the file at path; ok is false when the
// file has none (it was not written by WriteCheckpoint).
func readBinding(path string) (b binding, ok bool, err error) {
	meta, err := tensorio.ReadArchiveMeta(path)
	if err != nil {
		return binding{}, false, err
	}
	gen, err := strconv.ParseInt(meta[metaGeneration], 10, 64)
	if err != nil || gen < 0 || len(meta[metaDigest]) != 2*sha256.Size {
		return binding{}, false, nil
	}
	return binding{gen, meta[metaDigest]}, true, nil
}

// bound reports whether the files at weights and state exist and carry
// the same binding.
func bound(weights, state string) bool {
	w, ok1, err1 := readBinding(weights)
	s, ok2, err2 := readBinding(state)
	return err1 == nil && err2 == nil && ok1 && ok2 && w == s
}

// WriteCheckpoint writes the checkpoint at path (.npz or .safetensors):
// weights there and state at StatePath(path), bound by generation and the
// weights' digest. When the checkpoint there is a complete pair, it is
// kept first as the previous pair (PrevPath). The state is written before
// the weights; when writing the weights fails, the state is put back as
// it was, so that a failed write leaves the last checkpoint complete.
// Stale temporary files of dead processes beside these files are removed
// (tensorio.RemoveStaleTemps).
func WriteCheckpoint(path string, weights, state map[string]*tensor.Dense, generation int64) error {
	digest, err := WeightsDigest(weights)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	statePath, prev := StatePath(path), PrevPath(path)
	for _, p := range CheckpointPaths(path) {
		tensorio.RemoveStaleTemps(p, tensorio.StaleAge)
	}
	kept := false
	if bound(path, statePath) {
		if err := linkReplace(path, prev); err != nil {
			return err
		}
		if err := linkReplace(statePath, StatePath(prev)); err != nil {
			return err
		}
		kept = true
	}
	meta := binding{generation, digest}.meta()
	if err := tensorio.WriteArchiveMeta(statePath, state, meta); err != nil {
		return err
	}
	if err := tensorio.WriteArchiveMeta(path, weights, meta); err != nil {
		// Put the state back with the weights it belongs to.
		if kept {
			if rerr := linkReplace(StatePath(prev), statePath); rerr != nil {
				return fmt.Errorf("%w; putting %s back failed too: %v (the previous checkpoint is complete at %s)", err, statePath, rerr, prev)
			}
		} else {
			os.Remove(statePath)
		}
		return err
	}
	return nil
}

// linkReplace makes dst a hard link to src's file, replacing dst
// atomically (a link beside it, renamed over it); where the file system
// has no hard links, it copies src atomically instead.
func linkReplace(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp"+strconv.Itoa(os.Getpid())+"-link")
	os.Remove(tmp)
	if err := os.Link(src, tmp); err == nil {
		err := os.Rename(tmp, dst)
		// When dst is already a link to src's file, rename does nothing
		// and leaves tmp: remove it in any case.
		os.Remove(tmp)
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return tensorio.AtomicWrite(dst, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

// Checkpoint is a checkpoint LoadCheckpoint read.
type Checkpoint struct {
	// Weights are the params, by name.
	Weights map[string]*tensor.Dense
	// State is the training state (Trainer.SetState); nil when the
	// weights have none beside them.
	State map[string]*tensor.Dense
	// Path is the weights file read: the one asked for, or PrevPath of
	// it when that pair was torn.
	Path string
	// Generation is the checkpoint's generation (the epochs done), -1
	// when the weights have no state.
	Generation int64
	// Note, when not empty, says why the previous pair was read instead.
	Note string
}

// LoadCheckpoint reads the checkpoint at path: its weights, and its
// state when there is one beside it. Reading stops before the tensors
// exceed limit bytes (none when limit <= 0; see tensorio.LimitError).
// Weights without a state are a checkpoint too (the optimizer starts
// afresh). A state whose binding does not match the weights (a torn
// pair, or a state written for other weights) is not used: the previous
// pair (PrevPath) is read instead when it is complete, with a Note saying
// so; otherwise it is an error naming both files and their generations.
func LoadCheckpoint(path string, limit int64) (*Checkpoint, error) {
	statePath := StatePath(path)
	if _, err := os.Stat(statePath); errors.Is(err, fs.ErrNotExist) {
		w, err := tensorio.ReadArchiveLimit(path, limit)
		if err != nil {
			return nil, err
		}
		return &Checkpoint{Weights: w, Path: path, Generation: -1}, nil
	}
	c, err := loadPair(path, limit)
	if err == nil {
		return c, nil
	}
	var torn *tornError
	if !errors.As(err, &torn) {
		return nil, err
	}
	prev := PrevPath(path)
	p, perr := loadPair(prev, limit)
	if perr != nil {
		why := "there is no previous checkpoint " + prev
		if !errors.Is(perr, fs.ErrNotExist) {
			why = "the previous checkpoint " + prev + " is not complete either (" + perr.Error() + ")"
		}
		return nil, fmt.Errorf("%w; %s: remove %s to start the optimizer afresh from the weights of %s", err, why, statePath, path)
	}
	p.Note = fmt.Sprintf("%v: resuming from the previous checkpoint %s (generation %d) instead", err, prev, p.Generation)
	return p, nil
}

// tornError is a pair whose files do not belong together.
type tornError struct{ msg string }

func (e *tornError) Error() string { return e.msg }

// loadPair reads the weights at path and the state beside it and checks
// that they are bound: the state's digest is the weights'.
func loadPair(path string, limit int64) (*Checkpoint, error) {
	statePath := StatePath(path)
	sb, sok, err := readBinding(statePath)
	if err != nil {
		return nil, err
	}
	wb, wok, err := readBinding(path)
	if err != nil {
		return nil, err
	}
	gen := func(b binding, ok bool) string {
		if !ok {
			return "no generation"
		}
		return "generation " + strconv.FormatInt(b.generation, 10)
	}
	if !sok {
		return nil, &tornError{fmt.Sprintf("%s (%s) was not written with %s (%s): a training state without a checkpoint binding", statePath, gen(sb, sok), path, gen(wb, wok))}
	}
	w, err := tensorio.ReadArchiveLimit(path, limit)
	if err != nil {
		return nil, err
	}
	d, err := WeightsDigest(w)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if d != sb.digest {
		return nil, &tornError{fmt.Sprintf("%s (%s) and %s (%s) are not one checkpoint: the state is for other weights (a checkpoint interrupted between its two writes?)",
			path, gen(wb, wok), statePath, gen(sb, sok))}
	}
	st, err := tensorio.ReadArchiveLimit(statePath, limit)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{Weights: w, State: st, Path: path, Generation: sb.generation}, nil
}
