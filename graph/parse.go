package graph

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// maxErrors is how many errors Parse reports before it gives up.
const maxErrors = 10

// Parse reads a graph in the text format. file names the source in error
// messages. On failure it returns an ErrorList of positioned errors (at most
// ten, sorted by position) and no graph. The graph it returns has been
// verified.
func Parse(file string, src []byte) (*Graph, error) {
	p := &parser{file: file, lx: lexer{src: string(src), line: 1, col: 1}, poisoned: map[string]bool{}, undefined: map[string][]*Error{}}
	p.advance()
	g := p.parseFile()
	if len(p.errs) > 0 {
		p.errs.Sort()
		return nil, p.errs
	}
	if err := Verify(g); err != nil {
		return nil, err
	}
	return g, nil
}

// parser reads one file: it keeps the current token, the graph built so
// far and the errors found.
type parser struct {
	file     string
	lx       lexer
	tok      token
	errs     ErrorList
	g        *Graph
	poisoned map[string]bool // names whose definition failed: uses are not reported again
	// undefined holds the errors about uses of names not yet defined, so
	// that a later definition can say the use came before it.
	undefined map[string][]*Error
	bsym      string
	bound     int64
	shape     []Dim // parseType's scratch space
}

// bail stops the parse of one statement.
var errBail = errors.New("bail")

// advance moves to the next token.
func (p *parser) advance() { p.tok = p.lx.next() }

// errorf records an error at pos and returns it, or nil when the list is full.
func (p *parser) errorf(pos Pos, format string, args ...any) *Error {
	if len(p.errs) >= maxErrors {
		return nil
	}
	e := &Error{File: p.file, Pos: pos, Msg: fmt.Sprintf(format, args...)}
	p.errs = append(p.errs, e)
	return e
}

// useUndefined reports the use of a name that is not (yet) defined.
func (p *parser) useUndefined(t token) {
	if e := p.errorf(t.pos, "undefined value %%%s", t.text); e != nil {
		p.undefined[t.text] = append(p.undefined[t.text], e)
	}
}

// fail records an error at the current token and abandons the statement.
func (p *parser) fail(want string) error {
	p.errorf(p.tok.pos, "expected %s, found %s", want, p.tok.describe())
	return errBail
}

// isPunct reports whether the current token is the punctuation s.
func (p *parser) isPunct(s string) bool { return p.tok.kind == tPunct && p.tok.text == s }

// expectPunct consumes the punctuation s, or fails the statement.
func (p *parser) expectPunct(s string) error {
	if !p.isPunct(s) {
		return p.fail(fmt.Sprintf("%q", s))
	}
	p.advance()
	return nil
}

// skipNewlines consumes blank lines.
func (p *parser) skipNewlines() {
	for p.tok.kind == tNewline {
		p.advance()
	}
}

// skipLine drops tokens up to and including the next newline.
func (p *parser) skipLine() {
	for p.tok.kind != tNewline && p.tok.kind != tEOF {
		p.advance()
	}
	if p.tok.kind == tNewline {
		p.advance()
	}
}

// parseFile parses "graph NAME {" ... "}": statements one per line, errors
// in one statement reported and the parse resumed at the next line.
func (p *parser) parseFile() *Graph {
	p.skipNewlines()
	if p.tok.kind != tIdent || p.tok.text != "graph" {
		p.fail(`"graph"`)
		return nil
	}
	p.advance()
	if p.tok.kind != tIdent {
		p.fail("a graph name")
		return nil
	}
	p.g = New(strings.Clone(p.tok.text))
	// Size the node list and name index for one node a line, so that a big
	// graph does not grow them step by step.
	if hint := min(strings.Count(p.lx.src, "\n"), len(p.lx.src)/8); hint > 64 {
		p.g.Grow(hint)
	}
	p.g.File = p.file
	p.advance()
	if p.expectPunct("{") != nil {
		return nil
	}
	if p.tok.kind != tNewline {
		p.fail("end of line after \"{\"")
		return nil
	}
	var closePos Pos
	for {
		p.skipNewlines()
		if p.tok.kind == tEOF {
			p.errorf(p.tok.pos, "expected \"}\" to close graph %s, found end of file", p.g.Name)
			return nil
		}
		if p.isPunct("}") {
			closePos = p.tok.pos
			p.advance()
			break
		}
		if len(p.errs) >= maxErrors {
			return nil
		}
		// A statement fills one line. One that fails before its end of
		// line leaves the rest of it to skip; one that fails after (a type
		// or shape error) must not take the next statement with it.
		line := p.tok.pos.Line
		if err := p.statement(); err != nil && p.tok.pos.Line == line {
			p.skipLine()
		}
	}
	p.skipNewlines()
	if p.tok.kind != tEOF {
		p.fail("end of file after the graph")
	}
	if p.g.OutputPos == (Pos{}) && len(p.errs) == 0 {
		p.errorf(closePos, "expected an output statement before \"}\" in graph %s, found none", p.g.Name)
	}
	return p.g
}

// endStatement consumes the end of line a statement ends with.
func (p *parser) endStatement() error {
	if p.tok.kind != tNewline {
		if p.isPunct("}") {
			// Report it, but leave the "}" to close the graph rather than
			// drop it with the rest of the line.
			p.fail("end of line before \"}\"")
			return nil
		}
		return p.fail("end of line")
	}
	p.advance()
	return nil
}

// statement parses one statement, by its first token.
func (p *parser) statement() error {
	switch {
	case p.tok.kind == tValue:
		return p.opStatement()
	case p.tok.kind == tIdent && (p.tok.text == OpInput || p.tok.text == OpParam || p.tok.text == OpConst):
		return p.leafStatement()
	case p.tok.kind == tIdent && p.tok.text == "output":
		return p.outputStatement()
	}
	return p.fail("a statement (input, param, const, output or %name = op ...)")
}

// defName parses the %name being defined and checks it is new.
func (p *parser) defName() (token, error) {
	if p.tok.kind != tValue {
		return p.tok, p.fail("a value name (%name)")
	}
	t := p.tok
	if t.text == "" {
		return t, p.fail("a value name after %")
	}
	if old := p.g.Lookup(t.text); old != nil {
		p.errorf(t.pos, "expected a new name, found %%%s (already defined at %s)", t.text, old.Pos)
		return t, errBail
	}
	for _, e := range p.undefined[t.text] {
		e.Msg = fmt.Sprintf("%%%s is used before its definition at %s (values must be defined before their uses)", t.text, t.pos)
	}
	delete(p.undefined, t.text)
	if p.poisoned[t.text] {
		return t, errBail
	}
	p.advance()
	return t, nil
}

// poison marks the name a failed statement defines: later uses of it are
// not reported again.
func (p *parser) poison(name token) {
	if name.kind == tValue && name.text != "" {
		p.poisoned[name.text] = true
	}
}

// leafStatement parses "input|param|const %name: TYPE [= literal] [@device]".
func (p *parser) leafStatement() error {
	kind := p.tok.text
	p.advance()
	name, err := p.defName()
	if err == nil {
		err = p.leaf(kind, name)
	}
	if err != nil {
		p.poison(name)
	}
	return err
}

// leaf parses the rest of an input, param or const statement after its name.
func (p *parser) leaf(kind string, name token) error {
	if err := p.expectPunct(":"); err != nil {
		return err
	}
	tpos := p.tok.pos
	t, err := p.parseType()
	if err != nil {
		return err
	}
	for i := range t.Shape { // keep the symbol, not the whole source
		t.Shape[i].Sym = strings.Clone(t.Shape[i].Sym)
	}
	var data []float64
	var dataPos Pos
	if kind == OpConst {
		if err := p.expectPunct("="); err != nil {
			return err
		}
		dataPos = p.tok.pos
		if data, err = p.literal(t.DType); err != nil {
			return err
		}
	}
	dev, err := p.optDevice()
	if err != nil {
		return err
	}
	if err := p.endStatement(); err != nil {
		return err
	}
	var n *Node
	nm := strings.Clone(name.text)
	switch kind {
	case OpInput:
		if err := p.declareBatch(&t, tpos); err != nil {
			return err
		}
		n, err = p.g.Input(nm, t)
	case OpParam:
		if err := checkLeafType(t); err != nil {
			p.errorf(tpos, "%v", err)
			return errBail
		}
		if t.HasSymbol() {
			p.errorf(tpos, "expected a batch-free type for param %%%s, found %s (only inputs carry the batch)", name.text, t)
			return errBail
		}
		n, err = p.g.Param(nm, t)
	case OpConst:
		if err := checkConstData(t, data); err != nil {
			p.errorf(dataPos, "const %%%s: %v", name.text, err)
			return errBail
		}
		n, err = p.g.Const(nm, t, data)
	}
	if err != nil { // checked above: only API-level errors, already prefixed
		p.errorf(tpos, "%v", err)
		return errBail
	}
	n.Pos, n.Device = name.pos, dev
	return nil
}

// declareBatch checks the batch symbol of an input against earlier inputs
// and binds an unbound occurrence to the graph's bound size.
func (p *parser) declareBatch(t *Type, pos Pos) error {
	if err := checkLeafType(*t); err != nil {
		p.errorf(pos, "%v", err)
		return errBail
	}
	ax := t.BatchAxis()
	if ax < 0 {
		return nil
	}
	d := &t.Shape[ax]
	if p.bsym == "" {
		p.bsym, p.bound = d.Sym, d.Bound
		return nil
	}
	if d.Sym != p.bsym {
		p.errorf(pos, "expected the graph's batch symbol %s, found %s (a graph has one batch symbol)", p.bsym, d.Sym)
		return errBail
	}
	switch {
	case d.Bound == 0:
		d.Bound = p.bound
	case p.bound == 0:
		// An earlier input left the batch unbound: bind them all, and
		// infer again the types of the nodes already computed from them.
		p.bound = d.Bound
		for _, n := range p.g.Nodes {
			switch {
			case n.Op == OpInput:
				if ax := n.Type.BatchAxis(); ax >= 0 {
					n.Type.Shape[ax].Bound = d.Bound
				}
			case !n.IsLeaf():
				t, err := Infer(n)
				if err != nil {
					p.errorf(n.Pos, "%%%s: %v (once %s binds the batch to %s=%d)", n.Name, err, "this input", d.Sym, d.Bound)
					continue
				}
				n.Type = t
			}
		}
	case d.Bound != p.bound:
		p.errorf(pos, "expected the batch bound as before (%s=%d), found %s=%d", p.bsym, p.bound, d.Sym, d.Bound)
		return errBail
	}
	return nil
}

// opStatement parses "%name = op operands {attrs} [: TYPE] [@device]".
func (p *parser) opStatement() error {
	name, err := p.defName()
	if err == nil {
		err = p.op(name)
	}
	if err != nil {
		p.poison(name)
	}
	return err
}

// op parses the rest of "%name = op operands {attrs} : type @device".
func (p *parser) op(name token) error {
	if err := p.expectPunct("="); err != nil {
		return err
	}
	if p.tok.kind != tIdent {
		return p.fail("an op name")
	}
	opTok := p.tok
	info := LookupOp(opTok.text)
	if info == nil {
		p.errorf(opTok.pos, "unknown op %q; known ops: %s", opTok.text, strings.Join(OpNames(), ", "))
		return errBail
	}
	p.advance()
	var argBuf [8]*Node
	args := argBuf[:0]
	poisoned := false
	for {
		if p.tok.kind != tValue {
			return p.fail("an operand (%name)")
		}
		a := p.g.Lookup(p.tok.text)
		switch {
		case a != nil:
		case p.tok.text == name.text:
			p.errorf(p.tok.pos, "%%%s is used in its own definition (values must be defined before their uses)", name.text)
			return errBail
		case p.poisoned[p.tok.text]:
			poisoned = true
		default:
			p.useUndefined(p.tok)
			return errBail
		}
		args = append(args, a)
		p.advance()
		if !p.isPunct(",") {
			break
		}
		p.advance()
	}
	var attrs Attrs
	var attrPos []Pos // where each attribute's value is
	if p.isPunct("{") {
		var err error
		if attrs, attrPos, err = p.attrs(info); err != nil {
			return err
		}
	}
	var given *Type
	var typePos Pos
	if p.isPunct(":") {
		p.advance()
		typePos = p.tok.pos
		t, err := p.parseType()
		if err != nil {
			return err
		}
		given = &t
	}
	dev, err := p.optDevice()
	if err != nil {
		return err
	}
	if err := p.endStatement(); err != nil {
		return err
	}
	if poisoned {
		return errBail // already reported where the operand failed
	}
	n := &Node{Name: strings.Clone(name.text), Op: info.Name, Args: slices.Clone(args), Attrs: attrs, Pos: name.pos, Device: dev}
	t, err := Infer(n)
	if err != nil {
		pos := opTok.pos
		if len(args) >= info.MinArgs && (info.MaxArgs < 0 || len(args) <= info.MaxArgs) {
			// Point at the attribute the message names first.
			msg, first := err.Error(), -1
			for k, a := range attrs {
				i := strings.Index(msg, " "+a.Name+"=")
				if j := strings.Index(msg, "attribute "+a.Name); i < 0 || (j >= 0 && j < i) {
					i = j
				}
				if i >= 0 && (first < 0 || i < first) {
					first, pos = i, attrPos[k]
				}
			}
		}
		p.errorf(pos, "%%%s: %v", name.text, err)
		return errBail
	}
	if given != nil && !annotationMatches(*given, t) {
		p.errorf(typePos, "%%%s: %s infers type %s, found annotation %s", name.text, opTok.text, t, given)
		return errBail
	}
	n.Type = t
	n.Attrs, _ = info.normalize(attrs)
	if _, err := p.g.add(n); err != nil {
		p.errorf(name.pos, "%v", err)
		return errBail
	}
	return nil
}

// annotationMatches reports whether a written type agrees with the inferred
// one; a written symbol may leave out its bound.
func annotationMatches(given, inferred Type) bool {
	if given.DType != inferred.DType || given.Rank() != inferred.Rank() {
		return false
	}
	for i, g := range given.Shape {
		d := inferred.Shape[i]
		if g.Sym == "" || d.Sym == "" {
			if g.Sym != d.Sym || g.Size != d.Size {
				return false
			}
			continue
		}
		if g.Sym != d.Sym || g.Part != d.Part || g.Mul != d.Mul || (g.Bound != 0 && g.Bound != d.Bound) {
			return false
		}
	}
	return true
}

// attrs parses "{name=value, ...}", checking each name and value against
// the op; it returns the attributes in the order written and where each
// value stands.
func (p *parser) attrs(info *OpInfo) (Attrs, []Pos, error) {
	p.advance() // {
	var out Attrs
	var pos []Pos
	for !p.isPunct("}") {
		if p.tok.kind != tIdent {
			return nil, nil, p.fail("an attribute name")
		}
		name := p.tok
		spec := info.attr(name.text)
		if spec == nil {
			p.errorf(name.pos, "unknown attribute %q for %s (it takes %s)", name.text, info.Name, info.attrList())
			return nil, nil, errBail
		}
		for i, a := range out {
			if a.Name == spec.Name {
				p.errorf(name.pos, "attribute %s given twice (first value at %s)", name.text, pos[i])
				return nil, nil, errBail
			}
		}
		p.advance()
		if err := p.expectPunct("="); err != nil {
			return nil, nil, err
		}
		vpos := p.tok.pos
		v, err := p.attrValue()
		if err != nil {
			return nil, nil, err
		}
		if v, err = spec.check(v); err != nil {
			p.errorf(vpos, "attribute %s: %v", name.text, err)
			return nil, nil, errBail
		}
		out = append(out, Attr{spec.Name, v})
		pos = append(pos, vpos)
		if p.isPunct(",") {
			p.advance()
			continue
		}
		if !p.isPunct("}") {
			return nil, nil, p.fail(`"," or "}"`)
		}
	}
	p.advance()
	return out, pos, nil
}

// attrValue parses an attribute value: an int, a float, a string, true or
// false, an identifier (N, N*20, balanced) or a flat list of those.
func (p *parser) attrValue() (AttrValue, error) {
	t := p.tok
	switch t.kind {
	case tInt:
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			p.errorf(t.pos, "expected an integer that fits in int64, found %s", t.text)
			return AttrValue{}, errBail
		}
		p.advance()
		return Int(v), nil
	case tFloat:
		v, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(v, 0) {
			p.errorf(t.pos, "expected a finite number, found %s", t.text)
			return AttrValue{}, errBail
		}
		p.advance()
		return Float(v), nil
	case tString:
		s, err := strconv.Unquote(`"` + t.text + `"`)
		if err != nil {
			p.errorf(t.pos, "expected a valid string literal, found %q", t.text)
			return AttrValue{}, errBail
		}
		p.advance()
		return AttrValue{Kind: AttrString, Str: s}, nil
	case tIdent:
		p.advance()
		if t.text == "true" || t.text == "false" {
			return BoolAttr(t.text == "true"), nil
		}
		v := Ident(strings.Clone(t.text))
		if p.isPunct("*") {
			p.advance()
			if p.tok.kind != tInt {
				return AttrValue{}, p.fail("an integer after \"*\"")
			}
			m, err := strconv.ParseInt(p.tok.text, 10, 64)
			if err != nil || m < 1 {
				p.errorf(p.tok.pos, "expected a positive multiplier, found %s", p.tok.text)
				return AttrValue{}, errBail
			}
			v.Int = m
			p.advance()
		}
		return v, nil
	case tPunct:
		if t.text == "[" {
			p.advance()
			l := AttrValue{Kind: AttrList, List: []AttrValue{}}
			for !p.isPunct("]") {
				if p.isPunct("[") { // refused before recursing: no depth limit needed
					p.errorf(p.tok.pos, "expected a flat list, found a nested list")
					return AttrValue{}, errBail
				}
				e, err := p.attrValue()
				if err != nil {
					return AttrValue{}, err
				}
				l.List = append(l.List, e)
				if p.isPunct(",") {
					p.advance()
				} else if !p.isPunct("]") {
					return AttrValue{}, p.fail(`"," or "]"`)
				}
			}
			p.advance()
			return l, nil
		}
	}
	return AttrValue{}, p.fail("an attribute value")
}

// outputStatement parses "output %a, %b", which may appear once.
func (p *parser) outputStatement() error {
	pos := p.tok.pos
	if p.g.OutputPos != (Pos{}) {
		p.errorf(pos, "expected one output statement, found a second (the first is at %s)", p.g.OutputPos)
		return errBail
	}
	p.advance()
	var outs []*Node
	listed := map[*Node]bool{} // a map, not a scan of outs: a million outputs stay linear
	poisoned := false
	for {
		if p.tok.kind != tValue {
			return p.fail("an output value (%name)")
		}
		n := p.g.Lookup(p.tok.text)
		switch {
		case n != nil:
			if listed[n] {
				p.errorf(p.tok.pos, "%%%s is listed twice as an output", n.Name)
				return errBail
			}
			listed[n] = true
			outs = append(outs, n)
		case p.poisoned[p.tok.text]:
			poisoned = true
		default:
			p.useUndefined(p.tok)
			return errBail
		}
		p.advance()
		if !p.isPunct(",") {
			break
		}
		p.advance()
	}
	if err := p.endStatement(); err != nil {
		return err
	}
	p.g.OutputPos = pos
	if !poisoned {
		p.g.Outputs = outs
	}
	return nil
}

// optDevice parses an optional "@cpu" or "@gpu:K", either of them
// possibly after "rankR/".
func (p *parser) optDevice() (Device, error) {
	if !p.isPunct("@") {
		return Device{}, nil
	}
	at := p.tok.pos
	p.advance()
	if p.tok.kind != tIdent {
		return Device{}, p.fail("a device (cpu or gpu:K)")
	}
	s := p.tok.text
	p.advance()
	if strings.HasPrefix(s, "rank") && p.isPunct("/") {
		p.advance()
		if p.tok.kind != tIdent {
			return Device{}, p.fail("a device (cpu or gpu:K) after " + s + "/")
		}
		s += "/" + p.tok.text
		p.advance()
	}
	if strings.HasSuffix(s, "gpu") && p.isPunct(":") {
		p.advance()
		if p.tok.kind != tInt {
			return Device{}, p.fail("a GPU index")
		}
		s += ":" + p.tok.text
		p.advance()
	}
	d, err := ParseDevice(s)
	if err != nil {
		p.errorf(at, "%v", err)
		return Device{}, errBail
	}
	return d, nil
}

// parseType parses "f32[N,784]". The shape it returns is the parser's
// scratch space, valid until the next call: callers that keep a type
// clone it (Graph.Input, Param and Const do).
func (p *parser) parseType() (Type, error) {
	if p.tok.kind != tIdent {
		return Type{}, p.fail("a type (f32, f64, i32, i64 or bool)")
	}
	dt, ok := ParseDType(p.tok.text)
	if !ok {
		p.errorf(p.tok.pos, "expected an element type (f32, f64, i32, i64 or bool), found %q", p.tok.text)
		return Type{}, errBail
	}
	p.advance()
	if err := p.expectPunct("["); err != nil {
		return Type{}, err
	}
	t := Type{DType: dt, Shape: p.shape[:0]}
	for !p.isPunct("]") {
		d, err := p.dim()
		if err != nil {
			return Type{}, err
		}
		t.Shape = append(t.Shape, d)
		p.shape = t.Shape
		if p.isPunct(",") {
			p.advance()
		} else if !p.isPunct("]") {
			return Type{}, p.fail(`"," or "]"`)
		}
	}
	p.advance()
	return t, nil
}

// posInt parses a positive integer; what says what it is, in messages.
func (p *parser) posInt(what string) (int64, error) {
	t := p.tok
	if t.kind != tInt {
		return 0, p.fail(what)
	}
	v, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		p.errorf(t.pos, "expected %s that fits in int64, found %s", what, t.text)
		return 0, errBail
	}
	if v <= 0 {
		p.errorf(t.pos, "expected %s, found %d", what, v)
		return 0, errBail
	}
	p.advance()
	return v, nil
}

// dim parses one dimension: 784, N, N=64, N*20, N.0 or N.0=5.
func (p *parser) dim() (Dim, error) {
	switch p.tok.kind {
	case tInt:
		v, err := p.posInt("a positive dimension")
		return Const(v), err
	case tIdent:
	default:
		return Dim{}, p.fail("a dimension (an integer or the batch symbol)")
	}
	t := p.tok
	d := Sym(t.text, 0)
	if i := strings.LastIndexByte(t.text, '.'); i >= 0 {
		part, err := strconv.Atoi(t.text[i+1:])
		if err != nil || part < 0 || t.text[i+1:] != strconv.Itoa(part) || strings.IndexByte(t.text[:i], '.') >= 0 {
			p.errorf(t.pos, "expected a batch symbol (N) or a share of it (N.0), found %s", t.text)
			return Dim{}, errBail
		}
		d = Share(t.text[:i], part, 0, 0)
	}
	p.advance()
	if p.isPunct("*") {
		p.advance()
		m, err := p.posInt("a positive multiplier")
		if err != nil {
			return Dim{}, err
		}
		d.Mul = m
	}
	if p.isPunct("=") {
		p.advance()
		b, err := p.posInt("a positive batch size")
		if err != nil {
			return Dim{}, err
		}
		if d.Mul != 1 {
			p.errorf(t.pos, "expected a bound only on a plain symbol, found %s=%d", d, b)
			return Dim{}, errBail
		}
		d.Bound = b
	}
	return d, nil
}

// literal parses a const's value: a number, true or false, or a list of them.
func (p *parser) literal(dt DType) ([]float64, error) {
	if p.isPunct("[") {
		p.advance()
		out := []float64{}
		for !p.isPunct("]") {
			v, err := p.scalar(dt)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			if p.isPunct(",") {
				p.advance()
			} else if !p.isPunct("]") {
				return nil, p.fail(`"," or "]"`)
			}
		}
		p.advance()
		return out, nil
	}
	v, err := p.scalar(dt)
	return []float64{v}, err
}

// scalar parses one element of a const of dtype dt.
func (p *parser) scalar(dt DType) (float64, error) {
	t := p.tok
	var v float64
	switch {
	case t.kind == tIdent && (t.text == "true" || t.text == "false"):
		if dt != Bool {
			p.errorf(t.pos, "expected %s literal, found %s", article(dt), t.text)
			return 0, errBail
		}
		if t.text == "true" {
			v = 1
		}
	case (t.kind == tInt || t.kind == tFloat) && dt != Bool:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) {
			p.errorf(t.pos, "expected a finite number, found %s", t.text)
			return 0, errBail
		}
		if t.kind == tFloat && !dt.IsFloat() {
			p.errorf(t.pos, "expected an integer literal for %s, found %s", dt, t.text)
			return 0, errBail
		}
		if dt == F32 && math.Abs(f) > math.MaxFloat32 {
			p.errorf(t.pos, "expected a number within f32 range, found %s", t.text)
			return 0, errBail
		}
		v = f
	default:
		return 0, p.fail(article(dt) + " literal")
	}
	if err := checkElem(dt, v); err != nil {
		p.errorf(t.pos, "%v", err)
		return 0, errBail
	}
	p.advance()
	return v, nil
}

// article returns "an f32", "a bool": the dtype with its indefinite article.
func article(dt DType) string {
	if dt == Bool {
		return "a bool"
	}
	return "an " + dt.String()
}
