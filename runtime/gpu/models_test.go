//go:build cgo

package gpu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/passes/replicate"
	"multigpu/runtime"
)

func gpuIDs(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// TestModels runs every testdata model rewritten for several GPUs on the
// GPU backend over the host emulation, and compares its outputs with the
// original model on the CPU backend (within 1e-5 relative plus 1e-7
// absolute, as for matrix products). Layouts: four logical GPUs on one
// physical GPU (as --device-map gpu:0-3=0 runs them), two GPUs on two
// physical GPUs whose streams run with random delays, and the merge
// device one of the GPUs (so that slices and concats run in GPU
// programs).
func TestModels(t *testing.T) {
	paths, err := filepath.Glob("../../testdata/*.graph")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no models in ../../testdata: %v", err)
	}
	layouts := []struct {
		name    string
		opts    replicate.Options
		drivers func() []*hostDriver
	}{
		{"4_on_1", replicate.Options{GPUs: gpuIDs(4)}, func() []*hostDriver {
			return []*hostDriver{newHostDriver("host GPU 0")}
		}},
		{"2_on_2_jitter", replicate.Options{GPUs: gpuIDs(2)}, func() []*hostDriver {
			a, b := newHostDriver("host GPU 0"), newHostDriver("host GPU 1")
			a.jitter, b.jitter = true, true
			return []*hostDriver{a, b}
		}},
		{"merge_gpu0", replicate.Options{GPUs: gpuIDs(3), Merge: graph.GPUDevice(0)}, func() []*hostDriver {
			return []*hostDriver{newHostDriver("host GPU 0")}
		}},
	}
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
			_, bound := g.Batch()
			bs := []int64{1, 3, 9, 37}
			if testing.Short() {
				bs = []int64{1, 9}
			}
			if bound > 0 {
				bs = []int64{bound}
			}
			want := map[int64]map[string]*tensor.Dense{}
			inputs := map[int64]map[string]*tensor.Dense{}
			for _, b := range bs {
				if inputs[b], err = runtime.RandomInputs(g, b, uint64(b)); err != nil {
					t.Fatal(err)
				}
				want[b] = execute(t, g, nil, params, inputs[b])
			}
			for _, l := range layouts {
				opts := l.opts
				opts.BatchNorm = replicate.BatchNormSync
				rg, _, err := replicate.Rewrite(g, opts)
				if err != nil {
					t.Fatalf("%s: %v", l.name, err)
				}
				hd := newHostDevices(t, l.drivers()...)
				e, err := runtime.New(rg, runtime.Options{Seed: 11, Devices: hd.device})
				if err != nil {
					t.Fatal(err)
				}
				if err := e.SetParams(params); err != nil {
					t.Fatal(err)
				}
				for _, b := range bs {
					got, err := e.Run(t.Context(), inputs[b])
					if err != nil {
						t.Fatalf("%s batch=%d: %v", l.name, b, err)
					}
					for _, o := range g.Outputs {
						if err := compare(want[b][o.Name], got[o.Name], products); err != nil {
							t.Errorf("%s batch=%d: output %%%s: %v", l.name, b, o.Name, err)
						}
					}
				}
			}
		})
	}
}
