package tensorio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"

	"gorgonia.org/tensor"
)

// kind is an element type this package can read and write.
type kind int

const (
	kindF32 kind = iota
	kindF64
	kindI32
	kindI64
	kindBool
)

// size is the number of bytes of one element in a file.
func (k kind) size() int {
	switch k {
	case kindF32, kindI32:
		return 4
	case kindF64, kindI64:
		return 8
	default:
		return 1
	}
}

// String names the kind as gorgonia.org/tensor does.
func (k kind) String() string {
	switch k {
	case kindF32:
		return "float32"
	case kindF64:
		return "float64"
	case kindI32:
		return "int32"
	case kindI64:
		return "int64"
	default:
		return "bool"
	}
}

// chunkBytes bounds the buffer used to convert between bytes and elements.
const chunkBytes = 64 << 10

// emptyMsg explains the refusal of shapes with a zero-length dimension.
const emptyMsg = "gorgonia.org/tensor cannot represent arrays with a zero-length dimension"

// formatShape prints a shape the way NumPy does: (), (3,), (2, 3).
func formatShape(shape []int64) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, d)
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// checkShape validates a declared shape for elements of elemSize bytes and
// returns it as ints with the element count and the byte size. It refuses
// negative and zero-length dimensions and sizes that overflow, so callers
// can compare the byte size with the data at hand before allocating.
func checkShape(shape []int64, elemSize int) (dims []int, n int, nbytes int64, err error) {
	dims = make([]int, len(shape))
	count := uint64(1)
	for i, d := range shape {
		if d < 0 {
			return nil, 0, 0, fmt.Errorf("shape %s has a negative dimension", formatShape(shape))
		}
		if d == 0 {
			return nil, 0, 0, fmt.Errorf("shape %s: %s", formatShape(shape), emptyMsg)
		}
		hi, lo := bits.Mul64(count, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return nil, 0, 0, fmt.Errorf("shape %s has more than 2^63 elements", formatShape(shape))
		}
		count = lo
		dims[i] = int(d)
	}
	hi, lo := bits.Mul64(count, uint64(elemSize))
	if hi != 0 || lo > math.MaxInt64 || count > uint64(math.MaxInt) {
		return nil, 0, 0, fmt.Errorf("shape %s of %d-byte elements overflows a 63-bit size", formatShape(shape), elemSize)
	}
	return dims, int(count), int64(lo), nil
}

// readData reads n elements of kind k stored in the given byte order.
// When prealloc is false the caller does not know how much data r holds,
// and the result grows as data arrives, so that a large declared n with
// little data fails at the end of the data instead of allocating n
// elements up front. A short read is reported with io.ErrUnexpectedEOF and
// the number of bytes found.
func readData(r io.Reader, k kind, order binary.ByteOrder, n int, prealloc bool) (any, error) {
	switch k {
	case kindF32:
		return readSlice(r, n, 4, prealloc, func(b []byte) float32 { return math.Float32frombits(order.Uint32(b)) })
	case kindF64:
		return readSlice(r, n, 8, prealloc, func(b []byte) float64 { return math.Float64frombits(order.Uint64(b)) })
	case kindI32:
		return readSlice(r, n, 4, prealloc, func(b []byte) int32 { return int32(order.Uint32(b)) })
	case kindI64:
		return readSlice(r, n, 8, prealloc, func(b []byte) int64 { return int64(order.Uint64(b)) })
	default:
		return readSlice(r, n, 1, prealloc, func(b []byte) bool { return b[0] != 0 })
	}
}

// shortDataError reports data that ended early.
type shortDataError struct {
	want, got int64
}

func (e *shortDataError) Error() string {
	return fmt.Sprintf("truncated data: want %d bytes, found %d", e.want, e.got)
}

func (e *shortDataError) Unwrap() error { return io.ErrUnexpectedEOF }

func readSlice[T any](r io.Reader, n, size int, prealloc bool, get func([]byte) T) ([]T, error) {
	perChunk := chunkBytes / size
	c := min(n, perChunk)
	if prealloc {
		c = n
	}
	out := make([]T, 0, c)
	buf := make([]byte, min(n, perChunk)*size)
	for len(out) < n {
		m := min(n-len(out), perChunk)
		b := buf[:m*size]
		got, err := io.ReadFull(r, b)
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, &shortDataError{want: int64(n) * int64(size), got: int64(len(out))*int64(size) + int64(got)}
			}
			return nil, err
		}
		for i := 0; i < m; i++ {
			out = append(out, get(b[i*size:]))
		}
	}
	return out, nil
}

// flat returns the elements of t in C order as a []float32, []float64,
// []int32, []int64 or []bool, with its shape and kind. Views and
// transposed tensors are materialised first; masks are ignored.
func flat(t *tensor.Dense) (data any, shape []int, k kind, err error) {
	if t == nil {
		return nil, nil, 0, errors.New("nil tensor")
	}
	if !t.IsNativelyAccessible() {
		return nil, nil, 0, errors.New("tensor memory is not accessible from Go (copy it to the host first)")
	}
	if t.IsMaterializable() {
		m, ok := t.Materialize().(*tensor.Dense)
		if !ok {
			return nil, nil, 0, fmt.Errorf("materialising a %v view did not give a *tensor.Dense", t.Shape())
		}
		t = m
	}
	shape = []int(t.Shape().Clone())
	want := 1
	for _, d := range shape {
		if d <= 0 {
			return nil, nil, 0, fmt.Errorf("shape %v: %s", t.Shape(), emptyMsg)
		}
		want *= d
	}
	switch d := t.Data().(type) {
	case []float32:
		data, k = d, kindF32
	case []float64:
		data, k = d, kindF64
	case []int32:
		data, k = d, kindI32
	case []int64:
		data, k = d, kindI64
	case []bool:
		data, k = d, kindBool
	case float32:
		data, k = []float32{d}, kindF32
	case float64:
		data, k = []float64{d}, kindF64
	case int32:
		data, k = []int32{d}, kindI32
	case int64:
		data, k = []int64{d}, kindI64
	case bool:
		data, k = []bool{d}, kindBool
	default:
		return nil, nil, 0, fmt.Errorf("unsupported dtype %v (want float32, float64, int32, int64 or bool)", t.Dtype())
	}
	if got := dataLen(data); got != want {
		return nil, nil, 0, fmt.Errorf("tensor of shape %v holds %d elements, want %d", t.Shape(), got, want)
	}
	return data, shape, k, nil
}

// dataLen is the length of a slice returned by flat or readData.
func dataLen(data any) int {
	switch d := data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []int32:
		return len(d)
	case []int64:
		return len(d)
	case []bool:
		return len(d)
	}
	return -1
}

// writeData writes a slice returned by flat in little-endian order.
func writeData(w io.Writer, data any) error {
	le := binary.LittleEndian
	switch d := data.(type) {
	case []float32:
		return writeSlice(w, d, 4, func(b []byte, v float32) { le.PutUint32(b, math.Float32bits(v)) })
	case []float64:
		return writeSlice(w, d, 8, func(b []byte, v float64) { le.PutUint64(b, math.Float64bits(v)) })
	case []int32:
		return writeSlice(w, d, 4, func(b []byte, v int32) { le.PutUint32(b, uint32(v)) })
	case []int64:
		return writeSlice(w, d, 8, func(b []byte, v int64) { le.PutUint64(b, uint64(v)) })
	case []bool:
		return writeSlice(w, d, 1, func(b []byte, v bool) {
			b[0] = 0
			if v {
				b[0] = 1
			}
		})
	}
	return fmt.Errorf("internal error: writeData of %T", data)
}

func writeSlice[T any](w io.Writer, s []T, size int, put func([]byte, T)) error {
	perChunk := chunkBytes / size
	buf := make([]byte, min(len(s), perChunk)*size)
	for len(s) > 0 {
		m := min(len(s), perChunk)
		for i, v := range s[:m] {
			put(buf[i*size:], v)
		}
		if _, err := w.Write(buf[:m*size]); err != nil {
			return err
		}
		s = s[m:]
	}
	return nil
}

// newDense wraps data (a slice from readData) in a Dense of the given
// shape; an empty shape gives a scalar.
func newDense(shape []int, data any) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// fromFortran reorders data stored in Fortran order (first axis fastest)
// into C order (last axis fastest).
func fromFortran(data any, shape []int) any {
	if len(shape) < 2 {
		return data
	}
	switch d := data.(type) {
	case []float32:
		return transposeF(d, shape)
	case []float64:
		return transposeF(d, shape)
	case []int32:
		return transposeF(d, shape)
	case []int64:
		return transposeF(d, shape)
	case []bool:
		return transposeF(d, shape)
	}
	return data
}

func transposeF[T any](src []T, shape []int) []T {
	strides := make([]int, len(shape)) // Fortran-order strides
	s := 1
	for i, d := range shape {
		strides[i] = s
		s *= d
	}
	dst := make([]T, len(src))
	idx := make([]int, len(shape))
	off := 0
	for i := range dst {
		dst[i] = src[off]
		for a := len(shape) - 1; a >= 0; a-- {
			idx[a]++
			off += strides[a]
			if idx[a] < shape[a] {
				break
			}
			off -= idx[a] * strides[a]
			idx[a] = 0
		}
	}
	return dst
}
