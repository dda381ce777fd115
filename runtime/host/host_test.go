package host

import (
	"fmt"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/graph"
)

func TestSliceConcat(t *testing.T) {
	data := make([]float32, 600*3)
	for i := range data {
		data[i] = float32(i)
	}
	x := New([]int{600, 3}, data)
	// A share of the batch at an offset past 256 is a view of x.
	s := Slice(x, 0, 300, 600)
	if got := Data(s).([]float32); got[0] != 900 || len(got) != 900 {
		t.Fatalf("slice [300:600): first %v, len %d", got[0], len(got))
	}
	if &Data(s).([]float32)[0] != &data[900] {
		t.Errorf("slice on axis 0 copied")
	}
	j, err := Concat(0, Slice(x, 0, 0, 300), s)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(Data(j)) != fmt.Sprint(data) {
		t.Errorf("concat of the two halves differs from the whole")
	}
	// Along axis 1 (a copy).
	c := Slice(x, 1, 1, 3)
	if got := Data(c).([]float32); got[0] != 1 || got[1] != 2 || got[2] != 4 || Shape(c)[1] != 2 {
		t.Errorf("slice of axis 1: %v", got[:3])
	}
	j, err = Concat(1, Slice(x, 1, 0, 1), c)
	if err != nil || fmt.Sprint(Data(j)) != fmt.Sprint(data) {
		t.Errorf("concat on axis 1: %v", err)
	}
	if _, err := Concat(0, x, New([]int{2, 4}, make([]float32, 8))); err == nil {
		t.Errorf("concat of [600,3] and [2,4] on axis 0: no error")
	}
}

func TestScalarsAndTypes(t *testing.T) {
	s := New([]int{}, []float64{2.5})
	if !s.IsScalar() || fmt.Sprint(Data(s)) != "[2.5]" || Elems(s) != 1 || Bytes(s) != 8 {
		t.Errorf("scalar: %v %v", s.Shape(), Data(s))
	}
	for _, dt := range []graph.DType{graph.F32, graph.F64, graph.I32, graph.I64, graph.Bool} {
		z := Zeros(dt, []int{2, 2})
		got, ok := DTypeOf(z)
		if !ok || got != dt {
			t.Errorf("DTypeOf(Zeros(%s)) = %s", dt, got)
		}
		if c := Clone(z); Len(Data(c)) != 4 {
			t.Errorf("Clone(%s): %d elements", dt, Len(Data(c)))
		}
	}
	// A strided view is materialised.
	x := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{0, 1, 2, 3, 4, 5}))
	v, err := x.Slice(nil, tensor.S(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if got := Data(v.(*tensor.Dense)); fmt.Sprint(got) != "[1 2 4 5]" {
		t.Errorf("strided view: %v", got)
	}
}
