package graph

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

// Print writes g in the canonical text format: one statement per line,
// types and devices always written, attributes in the op's order with
// defaults left out. Parsing the result and printing it again gives the
// same bytes.
func Print(w io.Writer, g *Graph) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	buf = append(buf, "graph "...)
	buf = append(buf, g.Name...)
	buf = append(buf, " {\n"...)
	for _, n := range g.Nodes {
		buf = appendNode(buf, n)
		if len(buf) > 32<<10 {
			if _, err := bw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(g.Outputs) > 0 {
		buf = append(buf, "  output "...)
		for i, o := range g.Outputs {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = append(buf, '%')
			buf = append(buf, o.Name...)
		}
		buf = append(buf, '\n')
	}
	buf = append(buf, "}\n"...)
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}

// Format returns g in the canonical text format.
func Format(g *Graph) string {
	var b bytes.Buffer
	Print(&b, g) // a bytes.Buffer never fails
	return b.String()
}

// appendNode appends n's statement, with its end of line.
func appendNode(buf []byte, n *Node) []byte {
	buf = append(buf, "  "...)
	if n.IsLeaf() {
		buf = append(buf, n.Op...)
		buf = append(buf, " %"...)
		buf = append(buf, n.Name...)
		buf = append(buf, ": "...)
		buf = appendType(buf, n.Type)
		if n.Op == OpConst {
			buf = append(buf, " = "...)
			buf = appendLiteral(buf, n.Type, n.Data)
		}
	} else {
		buf = append(buf, '%')
		buf = append(buf, n.Name...)
		buf = append(buf, " = "...)
		buf = append(buf, n.Op...)
		for i, a := range n.Args {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, " %"...)
			buf = append(buf, a.Name...)
		}
		if len(n.Attrs) > 0 {
			buf = append(buf, " {"...)
			for i, a := range n.Attrs {
				if i > 0 {
					buf = append(buf, ", "...)
				}
				buf = append(buf, a.Name...)
				buf = append(buf, '=')
				buf = append(buf, a.Value.String()...)
			}
			buf = append(buf, '}')
		}
		buf = append(buf, " : "...)
		buf = appendType(buf, n.Type)
	}
	if n.Device.IsSet() {
		buf = append(buf, " @"...)
		buf = append(buf, n.Device.String()...)
	}
	return append(buf, '\n')
}

// appendType appends t as the text format spells it: f32[N,784].
func appendType(buf []byte, t Type) []byte {
	buf = append(buf, t.DType.String()...)
	buf = append(buf, '[')
	for i, d := range t.Shape {
		if i > 0 {
			buf = append(buf, ',')
		}
		if d.Sym == "" {
			buf = strconv.AppendInt(buf, d.Size, 10)
		} else {
			buf = append(buf, d.String()...)
		}
	}
	return append(buf, ']')
}

// appendLiteral appends a const's value: a scalar, or a list in row-major
// order.
func appendLiteral(buf []byte, t Type, data []float64) []byte {
	elem := func(v float64) {
		switch {
		case t.DType == Bool:
			buf = strconv.AppendBool(buf, v != 0)
		case t.DType.IsFloat():
			buf = append(buf, formatFloat(v)...)
		default:
			buf = strconv.AppendInt(buf, int64(v), 10)
		}
	}
	if t.Rank() == 0 && len(data) == 1 {
		elem(data[0])
		return buf
	}
	buf = append(buf, '[')
	for i, v := range data {
		if i > 0 {
			buf = append(buf, ',')
		}
		elem(v)
	}
	return append(buf, ']')
}
