package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"time"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/mpi"
)

// refuseUnderMPI reports, on stderr, a binary built without MPI that
// mpirun started as one of several ranks: each rank would run the whole
// job by itself. The caller exits 2.
func refuseUnderMPI(stderr io.Writer) bool {
	job, ok := mpi.Launched()
	if mpi.Enabled || !ok || !job.Several() {
		return false
	}
	size := "several"
	if job.Size > 0 {
		size = fmt.Sprint(job.Size)
	}
	fmt.Fprintf(stderr, "rewrite: started by mpirun as rank %d of %s, but built without MPI, so every rank would run the whole job by itself; "+
		"build with `go build -tags mpi ./cmd/rewrite` (needs Debian's libopenmpi-dev), or run without mpirun\n", job.Rank, size)
	return true
}

// rankJob is this process's part in a job across ranks (mpirun with a
// binary built with -tags mpi; ranks_mpi.go): the replicas are placed on
// every rank's GPUs (--gpus on each), each rank runs its own, and rank 0
// alone writes what the command writes (the graph, -o, --run's outputs,
// --check's report).
type rankJob struct {
	comm       runtime.Comm
	rank, size int
	localRank  int
	// setTimeout sets the watchdog of the job's collectives
	// (--rank-timeout; nil: none).
	setTimeout func(time.Duration)
	// end finishes MPI: with exit status 0 after every rank is done
	// (MPI_Finalize), else by ending every rank (MPI_Abort), so that a
	// rank that failed never leaves the others waiting in a collective.
	end func(code int)
}

// writer returns w on rank 0 and a writer that drops everything on the
// others.
func (j *rankJob) writer(w io.Writer) io.Writer {
	if j == nil || j.rank == 0 {
		return w
	}
	return io.Discard
}

// writes reports whether this process writes the command's files: rank 0,
// or a process that is not one of several.
func (j *rankJob) writes() bool { return j == nil || j.rank == 0 }

// commFor returns the Comm of g's executor: the job's, when g is placed
// on the devices of ranks.
func (j *rankJob) commFor(g *graph.Graph) runtime.Comm {
	if j == nil {
		return nil
	}
	for _, d := range g.Devices() {
		if _, ok := d.Rank(); ok {
			return j.comm
		}
	}
	return nil
}

// joinRanks makes o one rank's part of job: the replicas on every rank
// (--gpus on each).
func (o *options) joinRanks(job *rankJob) error {
	o.job = job
	if job == nil {
		return nil
	}
	if o.rankTimeout < 0 {
		return fmt.Errorf("--rank-timeout: expected a duration of 0 (no watchdog) or more, found %s", o.rankTimeout)
	}
	if job.setTimeout != nil {
		job.setTimeout(o.rankTimeout)
	}
	if o.ranks != 0 && o.ranks != job.size {
		return fmt.Errorf("--ranks %d under mpirun with %d ranks: expected the job's size, or no --ranks", o.ranks, job.size)
	}
	if o.replicate != nil {
		o.replicate.Ranks = job.size
	}
	return nil
}

// replicas returns the number of replicas --gpus asks for, on every rank.
func (o *options) replicas() int {
	if o.replicate == nil {
		return 1
	}
	return len(o.replicate.GPUs) * max(o.replicate.Ranks, 1)
}

// parseGPUs reads --gpus: two or more GPUs, or one per rank when the
// replicas span several ranks (--ranks P, or under mpirun with several).
func parseGPUs(s string, ranks int) ([]int, error) {
	ids, err := replicate.ParseGPUs(s)
	if err == nil {
		return ids, nil
	}
	several := ranks > 1
	if job, ok := mpi.Launched(); ok && mpi.Enabled && job.Several() {
		several = true
	}
	if several && s == "1" {
		return []int{0}, nil
	}
	return nil, err
}

// onRank makes b the backend of this rank's GPUs under mpirun: its
// device map becomes the local rank's part of --device-map's
// (devmap.Map.ForLocalRank: local rank L's gpu:K is the node's gpu:L*S+K,
// S the GPUs a rank drives: the highest --gpus index plus one, or for a
// graph g placed already, the highest GPU index it names plus one), and
// so --available's default the rank's GPUs that the node has. A nil b
// (CPU workers) or a process that is not one of several ranks is left as
// it is.
func (b *gpuBackend) onRank(o *options, g *graph.Graph) error {
	if b == nil || o.job == nil {
		return nil
	}
	per := 1
	if o.replicate != nil {
		per = slices.Max(o.replicate.GPUs) + 1
	} else {
		for _, d := range g.Devices() {
			if d.Kind == graph.GPU {
				per = max(per, d.Index+1)
			}
		}
	}
	m, err := b.m.ForLocalRank(o.job.localRank, per)
	if err != nil {
		return fmt.Errorf("rank %d: --device-map: %w", o.job.rank, err)
	}
	b.m = m
	return nil
}

// defaultRankTimeout is --rank-timeout's default: how long a collective
// across ranks waits for the other ranks before the job ends. It must
// outlast the longest a rank computes between two collectives (a step of
// the slowest rank, rank 0 reading the files and writing a checkpoint),
// on a slow CI machine too.
const defaultRankTimeout = 10 * time.Minute

// linePrefix writes to w with prefix at the start of every line, so that
// a rank's messages say which rank wrote them.
type linePrefix struct {
	w      io.Writer
	prefix string
	mid    bool // within a line
}

// Write writes p, prefixing every line it starts.
func (l *linePrefix) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if !l.mid {
			if _, err := io.WriteString(l.w, l.prefix); err != nil {
				return n, err
			}
			l.mid = true
		}
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line = p[:i+1]
			l.mid = false
		}
		m, err := l.w.Write(line)
		n += m
		if err != nil {
			return n, err
		}
		p = p[len(line):]
	}
	return n, nil
}
