package main

import (
	"fmt"
	"strconv"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/tensorio"
	"multigpu/train"
)

// --train across ranks: rank 0 reads --data and the weights to start
// from (a checkpoint to resume, or seeded random ones) and broadcasts
// them (share.go); every rank trains its replicas of the same batches
// (train/ranks.go); rank 0 alone writes the checkpoints.

// trainData returns --data's arrays, read on rank 0.
func trainData(o *options) (map[string]*tensor.Dense, error) {
	arrays, err := o.job.shareTensors("--data", func() (map[string]*tensor.Dense, error) {
		return tensorio.ReadArchiveLimit(o.data, int64(o.memoryLimit))
	})
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	return arrays, nil
}

// trainWeights returns the weights training starts from, read on rank 0:
// the checkpoint --weights names (nil without --weights; its training
// state, when beside it, resumes the optimizer exactly), or seeded random
// ones.
func trainWeights(g *graph.Graph, o *options) (map[string]*tensor.Dense, *train.Checkpoint, error) {
	b, err := o.job.share("--weights", func() (bundle, error) {
		if o.weights == "" {
			w, err := randomParams(g, o)
			return bundle{sets: []map[string]*tensor.Dense{w}}, err
		}
		ck, err := train.LoadCheckpoint(o.weights, int64(o.memoryLimit))
		if err != nil {
			return bundle{}, fmt.Errorf("--weights: %w", err)
		}
		text := map[string]string{"path": ck.Path, "note": ck.Note, "generation": strconv.FormatInt(ck.Generation, 10)}
		return bundle{text: text, sets: []map[string]*tensor.Dense{ck.Weights, ck.State}}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if o.weights == "" {
		if len(b.sets) != 1 {
			return nil, nil, fmt.Errorf("--weights: expected the weights from rank 0, found %d sets", len(b.sets))
		}
		return b.sets[0], nil, nil
	}
	gen, err := strconv.ParseInt(b.text["generation"], 10, 64)
	if err != nil || len(b.sets) != 2 {
		return nil, nil, fmt.Errorf("--weights: expected a checkpoint from rank 0, found %d sets and generation %q", len(b.sets), b.text["generation"])
	}
	ck := &train.Checkpoint{Weights: b.sets[0], State: b.sets[1], Path: b.text["path"], Generation: gen, Note: b.text["note"]}
	return ck.Weights, ck, nil
}

// trainAcross sets cfg to train across the job's ranks, and returns what
// the start message says of the devices.
func (o *options) trainAcross(cfg *train.Config, g *graph.Graph) string {
	r := o.replicate
	if o.job == nil || r == nil || r.Ranks <= 1 {
		return ""
	}
	cfg.Ranks = r.Ranks
	cfg.Runtime.Comm = o.job.commFor(g)
	if cfg.Runtime.Comm == nil {
		cfg.Runtime.Comm = o.job.comm
	}
	return fmt.Sprintf("%d ranks x %d GPUs", r.Ranks, len(r.GPUs))
}

// checkpointPath returns where this rank writes checkpoints: rank 0 at
// --save-weights, the others nowhere.
func (o *options) checkpointPath() string {
	if !o.job.writes() {
		return ""
	}
	return o.saveWeights
}
