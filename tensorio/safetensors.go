package tensorio

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gorgonia.org/tensor"
)

// The safetensors format (github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON mapping each tensor name
// to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
// the byte buffer after the header), an optional "__metadata__" entry of
// strings, then the buffer of little-endian, C-order tensor data.

// maxSafetensorsHeader is the header limit of the reference implementation.
const maxSafetensorsHeader = 100_000_000

const safetensorsMetadata = "__metadata__"

// safetensorsDtype maps a safetensors dtype name to a kind.
func safetensorsDtype(s string) (kind, bool) {
	switch s {
	case "F32":
		return kindF32, true
	case "F64":
		return kindF64, true
	case "I32":
		return kindI32, true
	case "I64":
		return kindI64, true
	case "BOOL":
		return kindBool, true
	}
	return 0, false
}

// safetensorsName is the safetensors dtype name of a kind.
func safetensorsName(k kind) string {
	return [...]string{kindF32: "F32", kindF64: "F64", kindI32: "I32", kindI64: "I64", kindBool: "BOOL"}[k]
}

// stEntry is one tensor's entry in a safetensors header.
type stEntry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// stTensor is a validated entry.
type stTensor struct {
	name       string
	kind       kind
	dims       []int
	n          int
	begin, end int64
}

// ReadSafetensors reads a safetensors file of the given size from r. The
// "__metadata__" entry is ignored. Each tensor's data must lie inside the
// data buffer, not overlap another's and have exactly the size its shape
// and dtype give; unlike the reference implementation, gaps between
// tensors are allowed. Supported dtypes are F32, F64, I32, I64 and BOOL.
func ReadSafetensors(r io.ReaderAt, size int64) (map[string]*tensor.Dense, error) {
	if size < 8 {
		return nil, fmt.Errorf("file is %d bytes: want at least the 8-byte header length", size)
	}
	var lb [8]byte
	if _, err := r.ReadAt(lb[:], 0); err != nil {
		return nil, fmt.Errorf("reading the header length: %w", err)
	}
	hlen := binary.LittleEndian.Uint64(lb[:])
	if hlen > maxSafetensorsHeader {
		return nil, fmt.Errorf("header length %d is over the limit of %d bytes", hlen, maxSafetensorsHeader)
	}
	if hlen > uint64(size-8) {
		return nil, fmt.Errorf("truncated header: header length says %d bytes, found %d", hlen, size-8)
	}
	if hlen == 0 {
		return nil, errors.New("header length is 0: want a JSON object")
	}
	header := make([]byte, hlen)
	if n, err := r.ReadAt(header, 8); n < len(header) {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	bufStart := 8 + int64(hlen)
	tensors, err := parseSafetensorsHeader(header, size-bufStart)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*tensor.Dense, len(tensors))
	for _, st := range tensors {
		sr := io.NewSectionReader(r, bufStart+st.begin, st.end-st.begin)
		data, err := readData(sr, st.kind, binary.LittleEndian, st.n, true)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", st.name, err)
		}
		out[st.name] = newDense(st.dims, data)
	}
	return out, nil
}

// parseSafetensorsHeader decodes and validates the JSON header against a
// data buffer of bufLen bytes, returning the tensors in offset order.
func parseSafetensorsHeader(header []byte, bufLen int64) ([]stTensor, error) {
	bad := func(err error) error {
		return fmt.Errorf("malformed JSON header %q: %w", clip(header), err)
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(err)
	}
	if tok != json.Delim('{') {
		return nil, bad(fmt.Errorf("want an object, found %v", tok))
	}
	seen := map[string]bool{}
	var tensors []stTensor
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		name := tok.(string) // object keys are always strings
		if seen[name] {
			return nil, fmt.Errorf("header names %q twice", name)
		}
		seen[name] = true
		if name == safetensorsMetadata {
			var meta json.RawMessage
			if err := dec.Decode(&meta); err != nil {
				return nil, bad(err)
			}
			continue
		}
		var e stEntry
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("tensor %q: malformed entry: %w", name, err)
		}
		st, err := checkSafetensorsEntry(name, e, bufLen)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		tensors = append(tensors, st)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the header object")
		}
		return nil, bad(err)
	}
	slices.SortFunc(tensors, func(a, b stTensor) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	for i := 1; i < len(tensors); i++ {
		if a, b := tensors[i-1], tensors[i]; b.begin < a.end {
			return nil, fmt.Errorf("tensors %q (bytes %d to %d) and %q (bytes %d to %d) overlap",
				a.name, a.begin, a.end, b.name, b.begin, b.end)
		}
	}
	return tensors, nil
}

// checkSafetensorsEntry validates one entry against a data buffer of
// bufLen bytes.
func checkSafetensorsEntry(name string, e stEntry, bufLen int64) (stTensor, error) {
	st := stTensor{name: name}
	var ok bool
	if st.kind, ok = safetensorsDtype(e.Dtype); !ok {
		if e.Dtype == "" {
			return st, errors.New("entry has no dtype")
		}
		return st, fmt.Errorf("unsupported dtype %q: want F32, F64, I32, I64 or BOOL", e.Dtype)
	}
	if e.Shape == nil {
		return st, errors.New("entry has no shape")
	}
	if len(e.DataOffsets) != 2 {
		return st, fmt.Errorf("data_offsets has %d values: want [begin, end]", len(e.DataOffsets))
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin > end || end > uint64(bufLen) {
		return st, fmt.Errorf("data_offsets [%d, %d] outside the %d-byte data buffer", begin, end, bufLen)
	}
	st.begin, st.end = int64(begin), int64(end)
	var nbytes int64
	var err error
	if st.dims, st.n, nbytes, err = checkShape(e.Shape, st.kind.size()); err != nil {
		return st, err
	}
	if nbytes != st.end-st.begin {
		return st, fmt.Errorf("shape %s of %s needs %d bytes, data_offsets [%d, %d] hold %d",
			shapeJSON(e.Shape), e.Dtype, nbytes, begin, end, end-begin)
	}
	return st, nil
}

// shapeJSON prints a shape as safetensors does: [2, 3].
func shapeJSON(shape []int64) string {
	s := fmt.Sprint(shape)
	return strings.ReplaceAll(s, " ", ", ")
}

// WriteSafetensors writes ts to w in the safetensors format. The header
// lists the tensors by name (JSON objects are written with sorted keys)
// and is padded with spaces to a multiple of 8 bytes, as the reference
// implementation does; the data is laid out by descending element size,
// then by name, so that every tensor is aligned to its element size.
func WriteSafetensors(w io.Writer, ts map[string]*tensor.Dense) error {
	return WriteSafetensorsMeta(w, ts, nil)
}

// WriteSafetensorsMeta is WriteSafetensors with metadata: meta, when not
// empty, is the header's "__metadata__" object.
func WriteSafetensorsMeta(w io.Writer, ts map[string]*tensor.Dense, meta map[string]string) error {
	names, err := sortedNames(ts)
	if err != nil {
		return err
	}
	type item struct {
		name  string
		data  any
		shape []int
		kind  kind
	}
	items := make([]item, 0, len(names))
	for _, name := range names {
		if name == safetensorsMetadata {
			return fmt.Errorf("tensor name %q is reserved for metadata", name)
		}
		data, shape, k, err := flat(ts[name])
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		items = append(items, item{name, data, shape, k})
	}
	slices.SortStableFunc(items, func(a, b item) int { return b.kind.size() - a.kind.size() })
	header := make(map[string]any, len(items)+1)
	if len(meta) > 0 {
		header[safetensorsMetadata] = meta
	}
	var off uint64
	for _, it := range items {
		shape := make([]int64, len(it.shape))
		for i, d := range it.shape {
			shape[i] = int64(d)
		}
		n := uint64(dataLen(it.data)) * uint64(it.kind.size())
		header[it.name] = stEntry{Dtype: safetensorsName(it.kind), Shape: shape, DataOffsets: []uint64{off, off + n}}
		off += n
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header); err != nil {
		return err
	}
	js := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if pad := len(js) % 8; pad != 0 {
		js = append(js, bytes.Repeat([]byte{' '}, 8-pad)...)
	}
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(len(js)))
	if _, err := w.Write(lb[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	for _, it := range items {
		if err := writeData(w, it.data); err != nil {
			return err
		}
	}
	return nil
}
