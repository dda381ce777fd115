package runtime

import "multigpu/graph"

// scratchBytes is the least temporary memory the kernel of n (with
// concrete types) needs besides its result, which the memory limit
// counts with the values of a run: a convolution's im2col patches of one
// sample, [C/groups*KH*KW, OH*OW] (every backend's im2col needs at least
// these). It saturates at 2^60 and is 0 for other ops.
func scratchBytes(n *graph.Node) int64 {
	var w, spatial graph.Type // the filter's shape, and the output's
	switch n.Op {
	case "conv2d":
		if len(n.Args) < 2 {
			return 0
		}
		w, spatial = n.Args[1].Type, n.Type
	case "conv2d_grad_input":
		if len(n.Args) < 2 {
			return 0
		}
		w, spatial = n.Args[1].Type, n.Args[0].Type
	case "conv2d_grad_weight":
		if len(n.Args) < 2 {
			return 0
		}
		w, spatial = n.Type, n.Args[1].Type
	default:
		return 0
	}
	if len(w.Shape) != 4 || len(spatial.Shape) != 4 {
		return 0
	}
	const most = 1 << 60
	b := int64(n.Type.DType.Size())
	for _, d := range []graph.Dim{w.Shape[1], w.Shape[2], w.Shape[3], spatial.Shape[2], spatial.Shape[3]} {
		v, ok := d.Value()
		if !ok || v < 0 {
			return 0
		}
		if v > 0 && b > most/v {
			return most
		}
		b *= v
	}
	return b
}
