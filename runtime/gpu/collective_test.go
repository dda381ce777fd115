//go:build cgo

package gpu

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/gpu/gputest"
	"multigpu/runtime/host"
)

// TestCollectives runs every testdata model rewritten with every combine
// on the GPU backend over the host emulation, on two physical GPUs whose
// streams run with random delays (allreduce groups gather their partials
// by peer copies, combine them on the first member's GPU and copy the
// result to the others) and with the merge device one of three GPUs:
// the outputs are the bits --combine merge computes in the same layout.
func TestCollectives(t *testing.T) {
	paths, err := filepath.Glob("../../testdata/*.graph")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no models: %v", err)
	}
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
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".graph")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			g, err := graph.Parse(path, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Devices()) > 0 {
				t.Skip("already placed")
			}
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
							w, gv := host.Float64s(want[o.Name]), host.Float64s(got[o.Name])
							for j := range w {
								if math.Float64bits(w[j]) != math.Float64bits(gv[j]) && !(math.IsNaN(w[j]) && math.IsNaN(gv[j])) {
									t.Errorf("%s batch=%d --combine %s: output %%%s element %d: %v, merge %v", l.Name, b, modes[i+1], o.Name, j, gv[j], w[j])
									break
								}
							}
						}
					}
				}
			}
		})
	}
}
