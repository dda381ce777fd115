package cpu

import (
	"fmt"

	"multigpu/graph"
	"multigpu/lower"
	"multigpu/runtime/backend"
	"multigpu/runtime/host"
)

// Transfer performs transfer node n of kind (a slice of a share, a copy,
// a concat of shares) from buffers of host devices onto dst, a host
// device, on the buffers' data itself: the result of a copy, and of a
// slice of a prefix, shares its operand's memory, as a download and an
// upload through host tensors would. ok is false, and nothing is done,
// when dst or an operand is not of this backend.
func Transfer(dst backend.Device, kind lower.TransferKind, n *graph.Node, args []backend.Buffer) (_ backend.Buffer, ok bool, err error) {
	d, isCPU := dst.(*Device)
	if !isCPU {
		return nil, false, nil
	}
	bufs := make([]*Buffer, len(args))
	for i, a := range args {
		if bufs[i], isCPU = a.(*Buffer); !isCPU {
			return nil, false, nil
		}
	}
	if len(bufs) == 0 {
		return nil, true, fmt.Errorf("transfer without operands")
	}
	src := bufs[0]
	switch kind {
	case lower.Copy:
		return &Buffer{dev: d.place, dt: src.dt, shape: src.shape, data: src.data}, true, nil
	case lower.Slice:
		ax, err := n.NormAxis("axis", len(src.shape))
		if err != nil {
			return nil, true, err
		}
		start, end, err := lower.SliceBounds(n, int64(src.shape[ax]))
		if err != nil {
			return nil, true, err
		}
		outer, size, inner := split3(src.shape, ax)
		shape := append([]int(nil), src.shape...)
		shape[ax] = int(end - start)
		var data any
		if outer == 1 {
			data = host.Subslice(src.data, int(start)*inner, int(end)*inner)
		} else {
			data = host.SliceData(src.data, outer, size, inner, int(start), int(end))
		}
		return &Buffer{dev: d.place, dt: src.dt, shape: shape, data: data}, true, nil
	case lower.Concat:
		ax, err := n.NormAxis("axis", len(n.Type.Shape))
		if err != nil {
			return nil, true, err
		}
		shape := append([]int(nil), src.shape...)
		datas := make([]any, len(bufs))
		sizes := make([]int, len(bufs))
		shape[ax] = 0
		for i, b := range bufs {
			if len(b.shape) != len(shape) || b.dt != src.dt {
				return nil, true, fmt.Errorf("concat of %s%v and %s%v", src.dt, src.shape, b.dt, b.shape)
			}
			datas[i], sizes[i] = b.data, b.shape[ax]
			shape[ax] += b.shape[ax]
		}
		outer, _, inner := split3(shape, ax)
		return &Buffer{dev: d.place, dt: src.dt, shape: shape, data: host.ConcatData(datas, sizes, outer, inner)}, true, nil
	}
	return nil, true, fmt.Errorf("unknown transfer kind %d", kind)
}
