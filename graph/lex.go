package graph

import "fmt"

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF tokKind = iota
	tNewline
	tIdent  // graph, f32, N, N.0, gpu
	tValue  // %name (text without the %)
	tInt    // 12, -1
	tFloat  // 0.5, 1e-5
	tString // "text" (text unquoted)
	tPunct  // one of { } [ ] ( ) , : = * @
	tBad    // a character that starts no token
)

// tokNames name token kinds in messages.
var tokNames = [...]string{tEOF: "end of file", tNewline: "end of line", tIdent: "identifier",
	tValue: "value name", tInt: "integer", tFloat: "number", tString: "string", tPunct: "punctuation", tBad: "character"}

// token is one lexical token and where it starts.
type token struct {
	kind tokKind
	text string
	pos  Pos
}

// describe says what the token is, for "found ..." in messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF, tNewline:
		return tokNames[t.kind]
	case tValue:
		return "%" + t.text
	case tString:
		return fmt.Sprintf("%q", t.text)
	case tBad:
		if t.text == "\"" {
			return "an unterminated string"
		}
		return fmt.Sprintf("unexpected character %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// lexer splits the source into tokens. It holds the source as a string so
// that token texts are substrings of it, not copies: the parser copies the
// few it keeps (names, symbols) with strings.Clone.
type lexer struct {
	src  string
	off  int
	line int
	col  int // 1-based column of src[off]
}

// next returns the next token, skipping blanks and comments. A newline is
// a token: statements end at one.
func (l *lexer) next() token {
	for l.off < len(l.src) {
		c := l.src[l.off]
		if c == ' ' || c == '\t' || c == '\r' {
			l.adv(1)
			continue
		}
		if c == '#' {
			for l.off < len(l.src) && l.src[l.off] != '\n' {
				l.adv(1)
			}
			continue
		}
		break
	}
	pos := Pos{l.line, l.col}
	if l.off >= len(l.src) {
		return token{kind: tEOF, pos: pos}
	}
	c := l.src[l.off]
	start := l.off
	switch {
	case c == '\n':
		l.off++
		l.line++
		l.col = 1
		return token{kind: tNewline, pos: pos}
	case c == '%':
		l.adv(1)
		for l.off < len(l.src) && isIdentByte(l.src[l.off], false) {
			l.adv(1)
		}
		return token{kind: tValue, text: l.src[start+1 : l.off], pos: pos}
	case isIdentByte(c, true):
		for l.off < len(l.src) && isIdentByte(l.src[l.off], false) {
			l.adv(1)
		}
		return token{kind: tIdent, text: l.src[start:l.off], pos: pos}
	case c >= '0' && c <= '9' || (c == '-' || c == '+' || c == '.') && l.off+1 < len(l.src) && (isDigit(l.src[l.off+1]) || l.src[l.off+1] == '.'):
		return l.number(pos)
	case c == '"':
		return l.str(pos)
	case c < 0x80 && isPunct(c):
		l.adv(1)
		return token{kind: tPunct, text: l.src[start : start+1], pos: pos}
	}
	// One UTF-8 sequence (or one invalid byte) as a bad token.
	n := 1
	for n < 4 && l.off+n < len(l.src) && l.src[l.off+n]&0xC0 == 0x80 && c >= 0xC0 {
		n++
	}
	l.adv(n)
	return token{kind: tBad, text: l.src[start:l.off], pos: pos}
}

// adv moves n bytes forward on the current line.
func (l *lexer) adv(n int) { l.off += n; l.col += n }

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isPunct reports whether c is a one-byte punctuation token.
func isPunct(c byte) bool {
	switch c {
	case '{', '}', '[', ']', '(', ')', ',', ':', '=', '*', '@', '/':
		return true
	}
	return false
}

// number lexes an integer or a float: an optional sign, digits, a dot,
// an exponent. Malformed ones (1e, 1.2.3) are left for the parser to refuse.
func (l *lexer) number(pos Pos) token {
	start := l.off
	if c := l.src[l.off]; c == '-' || c == '+' {
		l.adv(1)
	}
	kind := tInt
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case isDigit(c):
		case c == '.':
			kind = tFloat
		case c == 'e' || c == 'E':
			kind = tFloat
			if l.off+1 < len(l.src) && (l.src[l.off+1] == '-' || l.src[l.off+1] == '+') {
				l.adv(1)
			}
		default:
			return token{kind: kind, text: l.src[start:l.off], pos: pos}
		}
		l.adv(1)
	}
	return token{kind: kind, text: l.src[start:l.off], pos: pos}
}

// str lexes a double-quoted string on one line; an unterminated one is a
// tBad token with text "\"".
func (l *lexer) str(pos Pos) token {
	l.adv(1)
	start := l.off
	for l.off < len(l.src) && l.src[l.off] != '"' && l.src[l.off] != '\n' {
		if l.src[l.off] == '\\' && l.off+1 < len(l.src) && l.src[l.off+1] != '\n' {
			l.adv(1)
		}
		l.adv(1)
	}
	if l.off >= len(l.src) || l.src[l.off] != '"' {
		return token{kind: tBad, text: "\"", pos: pos}
	}
	text := l.src[start:l.off]
	l.adv(1)
	return token{kind: tString, text: text, pos: pos}
}
