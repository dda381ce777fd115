//go:build cgo

package gpu

import (
	"context"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/gpu/gputest"
)

// TestCollectives runs every testdata model rewritten with every combine
// on the GPU backend over the host emulation, on two physical GPUs whose
// streams run with random delays (allreduce groups gather their partials
// by peer copies, combine them on the first member's GPU and copy the
// result to the others) and with the merge device one of three GPUs:
// the outputs are the bits --combine merge computes in the same layout.
func TestCollectives(t *testing.T) {
	layouts := []gputest.Layout{
		{Name: "3_on_2_jitter", Options: replicateOn(3, graph.HostCPU), Devices: func(t *testing.T) gputest.Devices {
			a, b := newHostDriver("host GPU 0"), newHostDriver("host GPU 1")
			a.jitter, b.jitter = true, true
			return newHostDevices(t, a, b).device
		}},
		{Name: "merge_gpu0", Options: replicateOn(3, graph.GPUDevice(0)), Devices: func(t *testing.T) gputest.Devices {
			return newHostDevices(t, newHostDriver("host GPU 0")).device
		}},
	}
	modes := []replicate.CombineMode{replicate.CombineMerge, replicate.CombineAuto, replicate.CombineAllreduce}
	gputest.EachModel(t, "../../testdata", func(t *testing.T, g *graph.Graph) {
		params := runtime.RandomParams(g, 1)
		bs := []int64{2, 9}
		if _, bound := g.Batch(); bound > 0 {
			bs = []int64{bound}
		}
		for _, l := range layouts {
			execs := make([]*runtime.Executor, len(modes))
			for i, m := range modes {
				opts := l.Options
				opts.BatchNorm, opts.Combine = replicate.BatchNormSync, m
				rg, _, err := replicate.Rewrite(g, opts)
				if err != nil {
					t.Fatalf("%s: %v", l.Name, err)
				}
				if execs[i], err = runtime.New(rg, runtime.Options{Seed: 11, Devices: l.Devices(t)}); err != nil {
					t.Fatal(err)
				}
				if err := execs[i].SetParams(params); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range bs {
				in, err := runtime.RandomInputs(g, b, uint64(b))
				if err != nil {
					t.Fatal(err)
				}
				want, err := execs[0].Run(context.Background(), in)
				if err != nil {
					t.Fatalf("%s batch=%d merge: %v", l.Name, b, err)
				}
				for i, e := range execs[1:] {
					got, err := e.Run(context.Background(), in)
					if err != nil {
						t.Fatalf("%s batch=%d %s: %v", l.Name, b, modes[i+1], err)
					}
					for _, o := range g.Outputs {
						if err := gputest.Compare(want[o.Name], got[o.Name], gputest.Bits); err != nil {
							t.Errorf("%s batch=%d --combine %s: output %%%s against merge: %v", l.Name, b, modes[i+1], o.Name, err)
						}
					}
				}
			}
		}
	})
}
