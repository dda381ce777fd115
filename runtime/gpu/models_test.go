//go:build cgo

package gpu

import (
	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime/gpu/gputest"
)

// replicateOn returns replicate options for n GPUs merging on merge.
func replicateOn(n int, merge graph.Device) replicate.Options {
	return replicate.Options{GPUs: gputest.GPUs(n), Merge: merge}
}
