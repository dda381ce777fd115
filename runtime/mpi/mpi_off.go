//go:build !mpi

package mpi

import (
	"errors"
	"time"
)

// Enabled reports whether the binary was built with MPI (-tags mpi).
const Enabled = false

// ErrNotBuilt is what Init returns in a binary built without the mpi tag.
var ErrNotBuilt = errors.New("built without MPI: build with `go build -tags mpi` (needs Debian's libopenmpi-dev)")

// Comm is the world communicator of an MPI job; without the mpi tag there
// is none.
type Comm struct{ noCopy struct{} }

// Init fails: the binary was built without MPI.
func Init() (*Comm, error) { return nil, ErrNotBuilt }

// Rank returns 0: there is no MPI job.
func (c *Comm) Rank() int { return 0 }

// Size returns 1: there is no MPI job.
func (c *Comm) Size() int { return 1 }

// Barrier fails: the binary was built without MPI.
func (c *Comm) Barrier() error { return ErrNotBuilt }

// Finalize fails: the binary was built without MPI.
func (c *Comm) Finalize() error { return ErrNotBuilt }

// Abort does nothing: there is no MPI job to end.
func (c *Comm) Abort(code int) {}

// Bcast fails: the binary was built without MPI.
func (c *Comm) Bcast(buf []byte, root int) error { return ErrNotBuilt }

// AllgatherBytes fails: the binary was built without MPI.
func (c *Comm) AllgatherBytes(b []byte) ([][]byte, error) { return nil, ErrNotBuilt }

// SetTimeout does nothing: there is no MPI job.
func (c *Comm) SetTimeout(d time.Duration) {}
