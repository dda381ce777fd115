package tensorio

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// stFile assembles a safetensors file from a JSON header and data.
func stFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestWriteSafetensorsBytes(t *testing.T) {
	tests := []struct {
		name string
		ts   map[string]*tensor.Dense
		want []byte
	}{
		{
			name: "one",
			ts:   map[string]*tensor.Dense{"a": dense([]int{2}, []float32{1, 2})},
			want: stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`+"  ", // 54 bytes, padded to 56
				[]byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}),
		},
		{
			// The 8-byte float goes first so that it stays aligned.
			name: "aligned",
			ts: map[string]*tensor.Dense{
				"a": dense([]int{3}, []bool{true, false, true}),
				"b": tensor.New(tensor.FromScalar(3.25)),
			},
			want: stFile(`{"a":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]},"b":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`+"    ",
				[]byte{0, 0, 0, 0, 0, 0, 0x0a, 0x40, 1, 0, 1}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteSafetensors(&buf, tt.ts); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), tt.want) {
				t.Errorf("wrote\n%q\nwant\n%q", buf.Bytes(), tt.want)
			}
			got, err := ReadSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			sameArchive(t, tt.ts, got)
		})
	}
}

// TestReadSafetensorsReference reads a file laid out as the reference
// implementation writes it, with metadata.
func TestReadSafetensorsReference(t *testing.T) {
	h := `{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"I64","shape":[],"data_offsets":[16,24]},` +
		`"i":{"dtype":"I32","shape":[1],"data_offsets":[24,28]}}`
	h += strings.Repeat(" ", (8-len(h)%8)%8)
	data := []byte{
		0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, // 1 2 3 4
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // -2
		5, 0, 0, 0,
	}
	in := stFile(h, data)
	got, err := ReadSafetensors(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	sameArchive(t, map[string]*tensor.Dense{
		"w": dense([]int{2, 2}, []float32{1, 2, 3, 4}),
		"b": tensor.New(tensor.FromScalar(int64(-2))),
		"i": dense([]int{1}, []int32{5}),
	}, got)
}

func TestReadSafetensorsMalformed(t *testing.T) {
	f32 := func(name, shape, offsets string) string {
		return `"` + name + `":{"dtype":"F32","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	data := make([]byte, 16)
	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"empty", nil, []string{"file is 0 bytes: want at least the 8-byte header length"}},
		{"short", []byte{1, 0, 0}, []string{"file is 3 bytes"}},
		{"header past end", stFile("{}", nil)[:9], []string{"truncated header: header length says 2 bytes, found 1"}},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), []string{"header length 1099511627776 is over the limit of 100000000 bytes"}},
		{"not json", stFile("hello", nil), []string{`malformed JSON header "hello"`}},
		{"not object", stFile("[1]", nil), []string{"want an object, found ["}},
		{"empty header", stFile("", nil), []string{"header length is 0: want a JSON object"}},
		{"trailing", stFile("{} {}", nil), []string{"data after the header object"}},
		{"unclosed", stFile(`{"a":`, nil), []string{`tensor "a": malformed entry`}},
		{"unclosed object", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}`, data), []string{"malformed JSON header"}},
		{"duplicate", stFile("{"+f32("a", "[2]", "[0,8]")+","+f32("a", "[2]", "[8,16]")+"}", data), []string{`header names "a" twice`}},
		{"f16", stFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, data), []string{`tensor "a": unsupported dtype "F16": want F32, F64, I32, I64 or BOOL`}},
		{"no dtype", stFile(`{"a":{"shape":[2],"data_offsets":[0,4]}}`, data), []string{`tensor "a": entry has no dtype`}},
		{"no shape", stFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, data), []string{`tensor "a": entry has no shape`}},
		{"entry not object", stFile(`{"a":7}`, data), []string{`tensor "a": malformed entry`}},
		{"negative shape", stFile("{"+f32("a", "[-2]", "[0,8]")+"}", data), []string{`tensor "a": shape (-2,) has a negative dimension`}},
		{"fractional shape", stFile("{"+f32("a", "[2.5]", "[0,8]")+"}", data), []string{`tensor "a": malformed entry`}},
		{"one offset", stFile("{"+f32("a", "[2]", "[8]")+"}", data), []string{`data_offsets has 1 values: want [begin, end]`}},
		{"reversed", stFile("{"+f32("a", "[2]", "[8,0]")+"}", data), []string{`data_offsets [8, 0] outside the 16-byte data buffer`}},
		{"past end", stFile("{"+f32("a", "[4]", "[4,20]")+"}", data), []string{`tensor "a": data_offsets [4, 20] outside the 16-byte data buffer`}},
		{"size mismatch", stFile("{"+f32("a", "[2, 3]", "[0,16]")+"}", data), []string{`tensor "a": shape [2, 3] of F32 needs 24 bytes, data_offsets [0, 16] hold 16`}},
		{"overlap", stFile("{"+f32("a", "[2]", "[0,8]")+","+f32("b", "[2]", "[4,12]")+"}", data), []string{`tensors "a" (bytes 0 to 8) and "b" (bytes 4 to 12) overlap`}},
		{"zero dim", stFile("{"+f32("a", "[0, 2]", "[0,0]")+"}", data), []string{`tensor "a": shape (0, 2)`, "zero-length dimension"}},
		{"overflow", stFile("{"+f32("a", "[4294967296, 4294967296]", "[0,16]")+"}", data), []string{`has more than 2^63 elements`}},
		{"huge shape", stFile("{"+f32("a", "[1099511627776]", "[0,16]")+"}", data), []string{`needs 4398046511104 bytes, data_offsets [0, 16] hold 16`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSafetensors(bytes.NewReader(tt.in), int64(len(tt.in)))
			if err == nil {
				t.Fatalf("got %v, want an error", got)
			}
			wantErr(t, err, tt.want...)
		})
	}
}

func TestReadSafetensorsGapsAllowed(t *testing.T) {
	h := `{"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}`
	in := stFile(h, []byte{1, 0, 0, 0, 9, 9, 9, 9, 2, 0, 0, 0, 9})
	got, err := ReadSafetensors(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	sameArchive(t, map[string]*tensor.Dense{"a": dense([]int{1}, []int32{1}), "b": dense([]int{1}, []int32{2})}, got)
}

func TestWriteSafetensorsRefuses(t *testing.T) {
	var buf bytes.Buffer
	err := WriteSafetensors(&buf, map[string]*tensor.Dense{"__metadata__": dense([]int{1}, []int32{1})})
	wantErr(t, err, `tensor name "__metadata__" is reserved`)
	err = WriteSafetensors(&buf, map[string]*tensor.Dense{"u": tensor.New(tensor.WithShape(1), tensor.WithBacking([]uint16{1}))})
	wantErr(t, err, `tensor "u": unsupported dtype uint16`)
}
