package graph

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"
)

// WriteDOT writes g for Graphviz's dot: one subgraph cluster per device,
// labelled "cpu", "gpu:0", ... (cpu first, then GPUs by index), with the
// nodes placed there in graph order; unplaced nodes stand outside any
// cluster. Each node is labelled with its name, op (and attributes) and
// type; edges run from operand to user, labelled with the operand index
// when the user has several, dashed where they cross devices;
// outputs have a double border and their place in the output list. The
// output is deterministic: the same graph always gives the same bytes.
func WriteDOT(w io.Writer, g *Graph) error {
	bw := bufio.NewWriter(w)
	id := make(map[*Node]int, len(g.Nodes))
	for i, n := range g.Nodes {
		id[n] = i
	}
	outIdx := make(map[*Node][]int, len(g.Outputs))
	for i, o := range g.Outputs {
		outIdx[o] = append(outIdx[o], i)
	}

	bw.WriteString("digraph ")
	bw.WriteString(dotQuote(g.Name))
	bw.WriteString(" {\n")
	bw.WriteString("  graph [rankdir=TB, fontname=\"Helvetica\"];\n")
	bw.WriteString("  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n")
	bw.WriteString("  edge [fontname=\"Helvetica\", fontsize=9];\n")

	byDev := map[Device][]*Node{}
	for _, n := range g.Nodes {
		byDev[n.Device] = append(byDev[n.Device], n)
	}
	devs := make([]Device, 0, len(byDev))
	for d := range byDev {
		if d.IsSet() {
			devs = append(devs, d)
		}
	}
	slices.SortFunc(devs, CompareDevices)
	var buf []byte
	for _, d := range devs {
		buf = append(buf[:0], "  subgraph "...)
		buf = append(buf, dotClusterName(d)...)
		buf = append(buf, " {\n    label="...)
		buf = append(buf, dotQuote(d.String())...)
		buf = append(buf, ";\n    style=rounded;\n    color=gray50;\n"...)
		bw.Write(buf)
		for _, n := range byDev[d] {
			bw.Write(appendDOTNode(buf[:0], "    ", id[n], n, outIdx[n]))
		}
		bw.WriteString("  }\n")
	}
	for _, n := range byDev[Device{}] {
		bw.Write(appendDOTNode(buf[:0], "  ", id[n], n, outIdx[n]))
	}
	for _, n := range g.Nodes {
		for i, a := range n.Args {
			buf = append(buf[:0], "  n"...)
			buf = strconv.AppendInt(buf, int64(id[a]), 10)
			buf = append(buf, " -> n"...)
			buf = strconv.AppendInt(buf, int64(id[n]), 10)
			switch multi, cross := len(n.Args) > 1, a.Device != n.Device; {
			case multi:
				buf = append(buf, ` [headlabel="`...)
				buf = strconv.AppendInt(buf, int64(i), 10)
				buf = append(buf, '"')
				if cross {
					buf = append(buf, ", style=dashed"...)
				}
				buf = append(buf, ']')
			case cross:
				buf = append(buf, " [style=dashed]"...)
			}
			buf = append(buf, ";\n"...)
			bw.Write(buf)
		}
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// dotClusterName returns the subgraph name for device d: cluster_cpu,
// cluster_gpu_0 (Graphviz draws subgraphs named cluster* as boxes).
func dotClusterName(d Device) string {
	return "cluster_" + strings.NewReplacer(":", "_", "/", "_").Replace(d.String())
}

// appendDOTNode appends one node statement: "n3 [label=..., ...];".
func appendDOTNode(buf []byte, indent string, id int, n *Node, outs []int) []byte {
	buf = append(buf, indent...)
	buf = append(buf, 'n')
	buf = strconv.AppendInt(buf, int64(id), 10)
	buf = append(buf, ` [label="%`...)
	buf = appendDOTEscaped(buf, n.Name)
	buf = append(buf, `\n`...)
	buf = appendDOTEscaped(buf, n.Op)
	if n.Op == OpConst && len(n.Data) == 1 {
		buf = append(buf, " = "...)
		buf = appendLiteral(buf, n.Type, n.Data)
	}
	if len(n.Attrs) > 0 {
		buf = append(buf, " {"...)
		for i, a := range n.Attrs {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = appendDOTEscaped(buf, a.Name)
			buf = append(buf, '=')
			buf = appendDOTEscaped(buf, a.Value.String())
		}
		buf = append(buf, '}')
	}
	buf = append(buf, `\n`...)
	buf = appendType(buf, n.Type)
	for _, o := range outs {
		buf = append(buf, `\noutput `...)
		buf = strconv.AppendInt(buf, int64(o), 10)
	}
	buf = append(buf, '"')
	switch n.Op {
	case OpInput:
		buf = append(buf, ", shape=invhouse, style=\"\""...)
	case OpParam:
		buf = append(buf, ", shape=note, style=\"\""...)
	case OpConst:
		buf = append(buf, ", shape=plain"...)
	}
	if len(outs) > 0 {
		buf = append(buf, ", peripheries=2"...)
	}
	return append(buf, "];\n"...)
}

// dotQuote returns s as a DOT double-quoted string; newlines become the
// \n escape, which dot draws as a centred line break.
func dotQuote(s string) string {
	buf := append([]byte{'"'}, appendDOTEscaped(nil, s)...)
	return string(append(buf, '"'))
}

// appendDOTEscaped appends s escaped for the inside of a DOT string.
func appendDOTEscaped(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, `\n`...)
		case '\r':
		default:
			buf = append(buf, c)
		}
	}
	return buf
}
