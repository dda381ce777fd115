package main

import (
	"context"
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/onnx"
	"multigpu/passes/replicate"
	"multigpu/runtime"
	"multigpu/runtime/host"
)

// checkRebatched guards a re-batched fixed-batch export (--batch-axis
// with --batch) against a wrong reading of the shapes the exporter baked
// in: the file's model, at its own batch b, runs on two random groups of b
// samples one group at a time, and the re-batched model on both groups at
// once; every output must hold the two groups' results, each where its
// samples are. The readings that type-check but mix samples fail here.
func checkRebatched(src []byte, opts onnx.Options, re *onnx.Model) error {
	opts.Rebatch = false
	fixed, err := onnx.Import(src, opts)
	if err != nil {
		return fmt.Errorf("the model at its file's batch does not import: %v", err)
	}
	_, b := fixed.Graph.Batch()
	if b <= 0 {
		return nil
	}
	an, err := replicate.Analyze(re.Graph, replicate.BatchNormPerReplica)
	if err != nil {
		return err
	}
	executor := func(g *graph.Graph) (*runtime.Executor, error) {
		ex, err := runtime.New(g, runtime.Options{})
		if err != nil {
			return nil, err
		}
		return ex, ex.SetParams(re.ParamsOf(g))
	}
	ex, err := executor(fixed.Graph)
	if err != nil {
		return fmt.Errorf("the model at its file's batch: %v", err)
	}
	var groups [2]map[string]*tensor.Dense
	var outs [2]map[string]*tensor.Dense
	for k := range groups {
		if groups[k], err = runtime.RandomInputs(fixed.Graph, b, uint64(17+k)); err != nil {
			return err
		}
		if outs[k], err = ex.Run(context.Background(), groups[k]); err != nil {
			return fmt.Errorf("the model at its file's batch: %v", err)
		}
	}
	both := map[string]*tensor.Dense{}
	for _, in := range re.Graph.Inputs() {
		ax := in.Type.BatchAxis()
		if ax < 0 {
			both[in.Name] = groups[0][in.Name]
			continue
		}
		if both[in.Name], err = host.Concat(ax, groups[0][in.Name], groups[1][in.Name]); err != nil {
			return err
		}
	}
	if ex, err = executor(re.Graph); err != nil {
		return fmt.Errorf("at batch %d: %v", 2*b, err)
	}
	got, err := ex.Run(context.Background(), both)
	if err != nil {
		return fmt.Errorf("at batch %d: %v", 2*b, err)
	}
	for _, o := range re.Graph.Outputs {
		v := an.Of(o)
		whole := host.Float64s(got[o.Name])
		for k := range outs {
			part := host.Float64s(outs[k][o.Name])
			if v.Placement != replicate.Replicated {
				if !sameFloats(whole, part) {
					return fmt.Errorf("output %%%s does not carry the batch, and it differs between a batch of %d and one of %d", o.Name, b, 2*b)
				}
				continue
			}
			if !sameFloats(samplesOf(whole, o.Type, v, 2*b, k*int(b), int(b)), part) {
				return fmt.Errorf("output %%%s at batch %d does not hold, for samples %d to %d, what the file's model computes for them at batch %d: a shape the exporter baked in from the batch size was read wrongly", o.Name, 2*b, k*int(b), (k+1)*int(b)-1, b)
			}
		}
	}
	return nil
}

// samplesOf picks samples [lo, lo+n) of data, a value of type t (batch
// size batch) whose batch axis and outer factor v gives: viewed as
// [P, O, batch*I, R], the elements [.., .., lo*I:(lo+n)*I, ..].
func samplesOf(data []float64, t graph.Type, v replicate.Value, batch int64, lo, n int) []float64 {
	p, r := 1, 1
	for i, d := range t.Shape {
		if i == v.Axis {
			continue
		}
		size, _ := d.Value()
		if i < v.Axis {
			p *= int(size)
		} else {
			r *= int(size)
		}
	}
	o := int(max(v.Outer, 1))
	inner := int(t.Shape[v.Axis].Mul) / o
	axis := int(batch) * inner
	var out []float64
	for i := 0; i < p*o; i++ {
		base := i * axis * r
		out = append(out, data[base+lo*inner*r:base+(lo+n)*inner*r]...)
	}
	return out
}

// sameFloats reports whether a and b agree within f32 rounding of
// products summed in another order (1e-5 relative plus 1e-6), NaN
// matching NaN.
func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.IsNaN(a[i]) && math.IsNaN(b[i]) {
			continue
		}
		if !(math.Abs(a[i]-b[i]) <= 1e-5*math.Abs(b[i])+1e-6) {
			return false
		}
	}
	return true
}
