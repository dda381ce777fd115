package train

import "multigpu/graph"

// Training across processes (MPI ranks): with Config.Ranks P and
// Config.Runtime.Comm, the replicate pass places P x len(GPUs) replicas,
// replica k on rank k / len(GPUs) (passes/replicate), and the runtime
// runs this rank's and joins the collectives of the others
// (runtime/ranks.go). Every rank makes the same calls with the same
// data: SetWeights and SetState with the same values (rank 0's,
// broadcast by the caller), Fit with the same dataset, epochs and batch
// size, so that every rank draws the same shuffles (by seed and epoch)
// and feeds the same batches, of which each replica computes the share
// it computes in one process of P x len(GPUs) replicas; the gradients'
// allreduce sums every replica's partials in replica order on every
// rank, so the weights are those bits whatever P. A rank whose replicas
// get no sample of a batch (a last batch smaller than the replica count)
// still joins every collective. Only the rank that writes checkpoints
// (rank 0) reads the weights back: Fit on the other ranks is given no
// Checkpoint.

// localHolder returns the first node that holds param name across steps
// on a device of this process: with ranks, one on this rank's devices
// or on a device of every rank.
func (t *Trainer) localHolder(name string) string {
	hs := t.holders[name]
	for _, h := range hs {
		if t.onRank(t.graph.Lookup(h).Device) {
			return h
		}
	}
	return hs[0]
}

// onRank reports whether device d is this process's: always without
// ranks.
func (t *Trainer) onRank(d graph.Device) bool {
	c := t.cfg.Runtime.Comm
	r, ok := d.Rank()
	return c == nil || !ok || r == c.Rank()
}
