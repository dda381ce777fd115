package gpu

import (
	"fmt"

	"multigpu/graph"
	"multigpu/runtime/host"
)

// typeSuffix names the kernel variant of an element type for the kernels
// that run on every type (cmp, cast): bools are bytes.
func typeSuffix(dt graph.DType) string {
	switch dt {
	case graph.F32:
		return "_f32"
	case graph.F64:
		return "_f64"
	case graph.I32:
		return "_i32"
	case graph.I64:
		return "_i64"
	}
	return "_u8"
}

// logicOps are kernels.cu's logic op codes.
var logicOps = map[string]int{"and": 0, "or": 1, "xor": 2, "not": 3}

// comparisons maps the comparison ops to kernels.cu's binary op codes.
var comparisons = map[string]string{"equal": "cmp_eq", "less": "cmp_lt", "greater": "cmp_gt",
	"less_equal": "cmp_le", "greater_equal": "cmp_ge"}

// broadcastMeta adds the metadata of a broadcast over the result shape
// out of operands of shapes ins: rank, the collapsed shape, then each
// operand's strides along it.
func (p *planner) broadcastMeta(out []int, ins ...[]int) arg {
	strs := make([][]int, len(ins))
	for i, in := range ins {
		strs[i] = host.BroadcastStrides(in, out)
	}
	shape, str := host.Collapse(out, strs...)
	words := append([]int64{int64(len(shape))}, ints64(shape)...)
	for _, s := range str {
		words = append(words, ints64(s)...)
	}
	return p.addMeta(words...)
}

// planLogic plans where, the comparisons, the logic ops and cast, which
// run on every element type the op table allows them.
func (p *planner) planLogic(s *nodeSpec, np *nodePlan, launch func(string, int, ...arg)) (*nodePlan, error) {
	n := s.n
	total := numel(s.out)
	switch n.Op {
	case "where":
		m := p.broadcastMeta(s.out, s.in[0], s.in[1], s.in[2])
		launch("where"+widthSuffix(s.dt.Size()), total, result(), operand(0), operand(1), operand(2), i64(total), m)
	case "equal", "less", "greater", "less_equal", "greater_equal":
		dt := n.Args[0].Type.DType
		if dt == graph.Bool && n.Op != "equal" {
			return nil, fmt.Errorf("no gpu kernel for %s on bool", n.Op)
		}
		m := p.broadcastMeta(s.out, s.in[0], s.in[1])
		launch("cmp"+typeSuffix(dt), total, result(), operand(0), operand(1), i64(total), m, i64(must(opCode(comparisons[n.Op]))))
	case "not":
		m := p.broadcastMeta(s.out, s.in[0], s.in[0])
		launch("logic_u8", total, result(), operand(0), operand(0), i64(total), m, i64(logicOps[n.Op]))
	case "and", "or", "xor":
		m := p.broadcastMeta(s.out, s.in[0], s.in[1])
		launch("logic_u8", total, result(), operand(0), operand(1), i64(total), m, i64(logicOps[n.Op]))
	case "cast":
		from := n.Args[0].Type.DType
		if from == s.dt {
			np.viewOf = 0
			return np, nil
		}
		launch("cast"+typeSuffix(from), total, result(), operand(0), i64(total), i64(int(s.dt)))
	default:
		return nil, fmt.Errorf("no gpu kernel for op %s", n.Op)
	}
	return np, nil
}
