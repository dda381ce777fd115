package tensorio

import (
	"fmt"
	"math"
)

// This file parses the Python literal in a .npy header, such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }. It accepts
// the subset NumPy writes and its safe_eval reads: dicts, tuples, lists,
// strings, integers (with Python 2's L suffix), True, False and None.

// pyTuple and pyList are parsed tuples and lists; pyDict keeps its keys in
// order. Strings are string, integers int64, booleans bool, None nil.
type (
	pyTuple []any
	pyList  []any
	pyDict  struct {
		keys []string
		vals map[string]any
	}
)

// pyNone is the parsed value of None.
type pyNone struct{}

const maxPyDepth = 32

type pyParser struct {
	s   []byte
	pos int
}

// parsePyLiteral parses one literal, allowing surrounding whitespace.
func parsePyLiteral(s []byte) (any, error) {
	p := &pyParser{s: s}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.s) {
		return nil, p.errorf("unexpected %q after the literal", p.rest())
	}
	return v, nil
}

func (p *pyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("header offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

// rest quotes a little of what follows for error messages.
func (p *pyParser) rest() string {
	r := p.s[p.pos:]
	if len(r) > 16 {
		return string(r[:16]) + "..."
	}
	return string(r)
}

func (p *pyParser) space() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.pos++
		default:
			return
		}
	}
}

func (p *pyParser) value(depth int) (any, error) {
	if depth > maxPyDepth {
		return nil, p.errorf("literal nested more than %d deep", maxPyDepth)
	}
	p.space()
	if p.pos >= len(p.s) {
		return nil, p.errorf("want a value, found the end of the header")
	}
	c := p.s[p.pos]
	switch {
	case c == '{':
		return p.dict(depth)
	case c == '(':
		p.pos++
		items, trailingComma, err := p.items(')', depth)
		if err != nil {
			return nil, err
		}
		if len(items) == 1 && !trailingComma {
			return items[0], nil // (x) is x, not a tuple
		}
		return pyTuple(items), nil
	case c == '[':
		p.pos++
		items, _, err := p.items(']', depth)
		return pyList(items), err
	case c == '\'' || c == '"':
		return p.str()
	case c == '-' || c == '+' || ('0' <= c && c <= '9'):
		return p.int()
	case isIdentByte(c):
		start := p.pos
		for p.pos < len(p.s) && isIdentByte(p.s[p.pos]) {
			p.pos++
		}
		switch word := string(p.s[start:p.pos]); word {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return pyNone{}, nil
		default:
			p.pos = start
			return nil, p.errorf("want a literal, found name %q", word)
		}
	}
	return nil, p.errorf("want a literal, found %q", p.rest())
}

func isIdentByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// items parses comma-separated values up to the closing byte, which it
// consumes, and reports whether the last value had a trailing comma.
func (p *pyParser) items(close byte, depth int) ([]any, bool, error) {
	var items []any
	trailing := false
	for {
		p.space()
		if p.pos < len(p.s) && p.s[p.pos] == close {
			p.pos++
			return items, trailing, nil
		}
		if len(items) > 0 && !trailing {
			return nil, false, p.errorf("want ',' or %q, found %q", close, p.rest())
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, false, err
		}
		items = append(items, v)
		p.space()
		trailing = p.pos < len(p.s) && p.s[p.pos] == ','
		if trailing {
			p.pos++
		}
	}
}

func (p *pyParser) dict(depth int) (any, error) {
	p.pos++ // {
	d := pyDict{vals: map[string]any{}}
	for {
		p.space()
		if p.pos < len(p.s) && p.s[p.pos] == '}' {
			p.pos++
			return d, nil
		}
		if p.pos >= len(p.s) || p.s[p.pos] != '\'' && p.s[p.pos] != '"' {
			return nil, p.errorf("want a string key or '}', found %q", p.rest())
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != ':' {
			return nil, p.errorf("want ':' after key %q, found %q", k, p.rest())
		}
		p.pos++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, dup := d.vals[k]; dup {
			return nil, p.errorf("key %q appears twice", k)
		}
		d.keys = append(d.keys, k)
		d.vals[k] = v
		p.space()
		if p.pos < len(p.s) && p.s[p.pos] == ',' {
			p.pos++
			continue
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != '}' {
			return nil, p.errorf("want ',' or '}', found %q", p.rest())
		}
	}
}

func (p *pyParser) str() (string, error) {
	quote := p.s[p.pos]
	start := p.pos
	p.pos++
	var out []byte
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch {
		case c == quote:
			return string(out), nil
		case c == '\n':
			p.pos = start
			return "", p.errorf("string literal runs past the end of the line")
		case c == '\\':
			if p.pos >= len(p.s) {
				break
			}
			e := p.s[p.pos]
			p.pos++
			switch e {
			case '\\', '\'', '"':
				out = append(out, e)
			default:
				p.pos -= 2
				return "", p.errorf("unsupported escape \\%c in string literal", e)
			}
		default:
			out = append(out, c)
		}
	}
	p.pos = start
	return "", p.errorf("unterminated string literal")
}

func (p *pyParser) int() (int64, error) {
	start := p.pos
	neg := false
	if c := p.s[p.pos]; c == '-' || c == '+' {
		neg = c == '-'
		p.pos++
		p.space()
	}
	digits := p.pos
	var v uint64
	for p.pos < len(p.s) && '0' <= p.s[p.pos] && p.s[p.pos] <= '9' {
		if v > (math.MaxUint64-9)/10 {
			p.pos = start
			return 0, p.errorf("integer too large")
		}
		v = v*10 + uint64(p.s[p.pos]-'0')
		p.pos++
	}
	if p.pos == digits {
		p.pos = start
		return 0, p.errorf("want digits, found %q", p.rest())
	}
	if p.pos < len(p.s) && (p.s[p.pos] == 'L' || p.s[p.pos] == 'l') {
		p.pos++ // Python 2 long
	}
	if p.pos < len(p.s) && isIdentByte(p.s[p.pos]) {
		p.pos = start
		return 0, p.errorf("malformed integer %q", p.rest())
	}
	switch {
	case neg && v <= 1<<63:
		return -int64(v), nil
	case !neg && v <= math.MaxInt64:
		return int64(v), nil
	}
	p.pos = start
	return 0, p.errorf("integer out of the 64-bit range")
}
