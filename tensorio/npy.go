package tensorio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gorgonia.org/tensor"
)

// The .npy format is specified in numpy/lib/format.py: the magic
// "\x93NUMPY", a major and a minor version byte, the header length
// (uint16 in version 1.0, uint32 in 2.0 and 3.0, little-endian), then the
// header, a Python dict literal in Latin-1 (UTF-8 in 3.0) padded with
// spaces and a newline so that the data starts on a 64-byte boundary.

const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header we are willing to read. NumPy itself
// refuses headers over 10000 bytes unless asked; one MiB leaves room for
// any shape gorgonia can hold.
const maxNPYHeader = 1 << 20

// growthAxisMaxDigits is NumPy's GROWTH_AXIS_MAX_DIGITS: recent versions
// pad the header so the first axis can grow to this many digits in place.
const growthAxisMaxDigits = 21

// npyHeader is a decoded .npy header.
type npyHeader struct {
	kind    kind
	order   binary.ByteOrder
	fortran bool
	shape   []int64
	size    int64 // bytes before the data: magic, version, length, header
}

// ReadNPY reads one array in NumPy's .npy format from r and stops right
// after its data, so that arrays saved one after another into a stream can
// be read in turn; use ReadFile to read a file and check that nothing
// follows. The error for a malformed header or short data says what was
// expected and what was found.
func ReadNPY(r io.Reader) (*tensor.Dense, error) {
	avail := int64(-1)
	if l, ok := r.(interface{ Len() int }); ok {
		avail = int64(l.Len()) // bytes.Reader, bytes.Buffer, strings.Reader
	}
	t, err := readNPY(r, avail, avail >= 0, 0)
	if err != nil {
		return nil, fmt.Errorf("read .npy: %w", err)
	}
	return t, nil
}

// readNPY reads an array from r, which holds avail bytes (-1 when
// unknown). When avail is known the declared data size is checked against
// it before anything is allocated. With prealloc the data is allocated in
// one piece, which the caller allows only when avail is known to be true.
// A limit above zero refuses, before allocating, data of more bytes.
func readNPY(r io.Reader, avail int64, prealloc bool, limit int64) (*tensor.Dense, error) {
	h, err := readNPYHeader(r)
	if err != nil {
		return nil, err
	}
	dims, n, nbytes, err := checkShape(h.shape, h.kind.size())
	if err != nil {
		return nil, err
	}
	if limit > 0 && nbytes > limit {
		return nil, &LimitError{What: fmt.Sprintf("an array of shape %s of '%s'", formatShape(h.shape), npyDescr(h.kind, h.order)), Need: nbytes, Limit: limit}
	}
	if avail >= 0 && avail-h.size < nbytes {
		return nil, fmt.Errorf("truncated data: shape %s of '%s' needs %d bytes, found %d",
			formatShape(h.shape), npyDescr(h.kind, h.order), nbytes, max(avail-h.size, 0))
	}
	data, err := readData(r, h.kind, h.order, n, prealloc)
	if err != nil {
		var short *shortDataError
		if errors.As(err, &short) {
			return nil, fmt.Errorf("truncated data: shape %s of '%s' needs %d bytes, found %d",
				formatShape(h.shape), npyDescr(h.kind, h.order), short.want, short.got)
		}
		return nil, fmt.Errorf("reading data: %w", err)
	}
	if h.fortran {
		data = fromFortran(data, dims)
	}
	return newDense(dims, data), nil
}

func readNPYHeader(r io.Reader) (*npyHeader, error) {
	var pre [10]byte
	n, err := io.ReadFull(r, pre[:8])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	if m := min(n, len(npyMagic)); n == 0 || string(pre[:m]) != npyMagic[:m] {
		return nil, fmt.Errorf("bad magic: want %q, found %q", npyMagic, pre[:m])
	}
	if n < 8 {
		return nil, fmt.Errorf("truncated header: want at least 10 bytes, found %d", n)
	}
	major, minor := pre[6], pre[7]
	if major < 1 || major > 3 || minor != 0 {
		return nil, fmt.Errorf("unsupported format version %d.%d: want 1.0, 2.0 or 3.0", major, minor)
	}
	var hlen uint64
	size := int64(10)
	if major == 1 {
		if n, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, fmt.Errorf("truncated header: want at least 10 bytes, found %d", 8+n)
		}
		hlen = uint64(binary.LittleEndian.Uint16(pre[8:10]))
	} else {
		var l [4]byte
		if n, err := io.ReadFull(r, l[:]); err != nil {
			return nil, fmt.Errorf("truncated header: want at least 12 bytes, found %d", 8+n)
		}
		hlen = uint64(binary.LittleEndian.Uint32(l[:]))
		size = 12
	}
	if hlen > maxNPYHeader {
		return nil, fmt.Errorf("header length %d is over the limit of %d bytes", hlen, maxNPYHeader)
	}
	text, err := io.ReadAll(io.LimitReader(r, int64(hlen)))
	if err != nil {
		return nil, err
	}
	if uint64(len(text)) < hlen {
		return nil, fmt.Errorf("truncated header: header length says %d bytes, found %d", hlen, len(text))
	}
	h, err := parseNPYHeader(text)
	if err != nil {
		return nil, err
	}
	h.size = size + int64(hlen)
	return h, nil
}

// parseNPYHeader decodes the dict literal of a header.
func parseNPYHeader(text []byte) (*npyHeader, error) {
	v, err := parsePyLiteral(text)
	if err != nil {
		return nil, fmt.Errorf("malformed header %q: %w", clip(text), err)
	}
	d, ok := v.(pyDict)
	if !ok {
		return nil, fmt.Errorf("header is not a dict: %q", clip(text))
	}
	for _, k := range d.keys {
		if k != "descr" && k != "fortran_order" && k != "shape" {
			return nil, fmt.Errorf("header has key %q: want only 'descr', 'fortran_order' and 'shape'", k)
		}
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if _, ok := d.vals[k]; !ok {
			return nil, fmt.Errorf("header lacks key %q: found %q", k, clip(text))
		}
	}
	h := &npyHeader{}
	descr, ok := d.vals["descr"].(string)
	if !ok {
		return nil, fmt.Errorf("unsupported dtype %s: want one of '<f4', '<f8', '<i4', '<i8', '|b1' (or big-endian '>f4', ...)", pyRepr(d.vals["descr"]))
	}
	if h.kind, h.order, err = parseDescr(descr); err != nil {
		return nil, err
	}
	if h.fortran, ok = d.vals["fortran_order"].(bool); !ok {
		return nil, fmt.Errorf("header 'fortran_order' is %s: want True or False", pyRepr(d.vals["fortran_order"]))
	}
	shape, ok := d.vals["shape"].(pyTuple)
	if !ok {
		return nil, fmt.Errorf("header 'shape' is %s: want a tuple of integers", pyRepr(d.vals["shape"]))
	}
	h.shape = make([]int64, len(shape))
	for i, s := range shape {
		if h.shape[i], ok = s.(int64); !ok {
			return nil, fmt.Errorf("header 'shape' is %s: want a tuple of integers", pyRepr(shape))
		}
	}
	return h, nil
}

// parseDescr maps a NumPy dtype string to a kind and byte order.
func parseDescr(descr string) (kind, binary.ByteOrder, error) {
	bad := func() (kind, binary.ByteOrder, error) {
		return 0, nil, fmt.Errorf("unsupported dtype %q: want one of '<f4', '<f8', '<i4', '<i8', '|b1' (or big-endian '>f4', ...)", descr)
	}
	if len(descr) != 3 {
		return bad()
	}
	var order binary.ByteOrder
	switch descr[0] {
	case '<':
		order = binary.LittleEndian
	case '>':
		order = binary.BigEndian
	case '|', '=':
		if descr[1:] != "b1" {
			return bad()
		}
		order = binary.LittleEndian
	default:
		return bad()
	}
	switch descr[1:] {
	case "f4":
		return kindF32, order, nil
	case "f8":
		return kindF64, order, nil
	case "i4":
		return kindI32, order, nil
	case "i8":
		return kindI64, order, nil
	case "b1":
		return kindBool, order, nil
	}
	return bad()
}

// npyDescr is the dtype string NumPy writes for a kind in a byte order.
func npyDescr(k kind, order binary.ByteOrder) string {
	if k == kindBool {
		return "|b1"
	}
	c := "<"
	if order == binary.BigEndian {
		c = ">"
	}
	switch k {
	case kindF32:
		return c + "f4"
	case kindF64:
		return c + "f8"
	case kindI32:
		return c + "i4"
	}
	return c + "i8"
}

// pyRepr prints a parsed literal back, roughly as Python would.
func pyRepr(v any) string {
	switch v := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", `\'`) + "'"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(v, 10)
	case pyNone:
		return "None"
	case pyTuple:
		var b strings.Builder
		b.WriteByte('(')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyRepr(x))
		}
		if len(v) == 1 {
			b.WriteByte(',')
		}
		b.WriteByte(')')
		return b.String()
	case pyList:
		var b strings.Builder
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyRepr(x))
		}
		b.WriteByte(']')
		return b.String()
	case pyDict:
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyRepr(k) + ": " + pyRepr(v.vals[k]))
		}
		b.WriteByte('}')
		return b.String()
	}
	return fmt.Sprint(v)
}

// clip shortens header text for error messages.
func clip(b []byte) string {
	b = bytes.TrimRight(b, " \n")
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}

// WriteNPY writes t to w in NumPy's .npy format: C order, little-endian,
// format version 1.0, or 2.0 when the header does not fit 1.0's 16-bit
// length. The file is byte for byte the one NumPy writes for the same
// array (checked against NumPy 1.24, whose header leaves room for the first
// dimension to grow).
func WriteNPY(w io.Writer, t *tensor.Dense) error {
	data, shape, k, err := flat(t)
	if err != nil {
		return fmt.Errorf("write .npy: %w", err)
	}
	if _, err := w.Write(npyHeaderBytes(k, shape)); err != nil {
		return err
	}
	return writeData(w, data)
}

// npyHeaderBytes builds the magic, version, length and header as NumPy's
// _write_array_header and _wrap_header do.
func npyHeaderBytes(k kind, shape []int) []byte {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
		npyDescr(k, binary.LittleEndian), formatShape(dims))
	if len(shape) > 0 {
		dict += strings.Repeat(" ", max(0, growthAxisMaxDigits-len(strconv.Itoa(shape[0]))))
	}
	wrap := func(major byte, lenBytes int) []byte {
		hlen := len(dict) + 1 // with the newline
		pad := 64 - (len(npyMagic)+2+lenBytes+hlen)%64
		out := make([]byte, 0, len(npyMagic)+2+lenBytes+hlen+pad)
		out = append(out, npyMagic...)
		out = append(out, major, 0)
		if lenBytes == 2 {
			out = binary.LittleEndian.AppendUint16(out, uint16(hlen+pad))
		} else {
			out = binary.LittleEndian.AppendUint32(out, uint32(hlen+pad))
		}
		out = append(out, dict...)
		out = append(out, bytes.Repeat([]byte{' '}, pad)...)
		return append(out, '\n')
	}
	if h := len(dict) + 1; h+64-(len(npyMagic)+4+h)%64 <= 0xffff {
		return wrap(1, 2)
	}
	return wrap(2, 4)
}
