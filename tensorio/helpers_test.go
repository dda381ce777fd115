package tensorio

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorgonia.org/tensor"
)

// kinds lists every element kind with a constructor of test data.
var testKinds = []struct {
	name string
	make func(n int) any
}{
	{"float32", func(n int) any {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(i)*1.5 - 3.25
		}
		return s
	}},
	{"float64", func(n int) any {
		s := make([]float64, n)
		for i := range s {
			s[i] = float64(i)*0.1 - 1e10
		}
		return s
	}},
	{"int32", func(n int) any {
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(i*7919) - 1<<30
		}
		return s
	}},
	{"int64", func(n int) any {
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(i)*(1<<40) - 1<<62
		}
		return s
	}},
	{"bool", func(n int) any {
		s := make([]bool, n)
		for i := range s {
			s[i] = i%3 == 0
		}
		return s
	}},
}

// testShapes are the shapes round trips cover; () is a scalar.
var testShapes = [][]int{{}, {1}, {5}, {1, 1}, {2, 3}, {2, 3, 4}, {3, 1, 2, 1}, {70000}}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// dense builds a tensor of the given shape from a slice.
func dense(shape []int, data any) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// sameTensor reports how got differs from want, or "" when they have the
// same dtype, shape and elements.
func sameTensor(want, got *tensor.Dense) string {
	if got == nil {
		return "got nil tensor"
	}
	if want.Dtype() != got.Dtype() {
		return fmt.Sprintf("dtype: want %v, got %v", want.Dtype(), got.Dtype())
	}
	if !slices.Equal(want.Shape(), got.Shape()) {
		return fmt.Sprintf("shape: want %v, got %v", want.Shape(), got.Shape())
	}
	if reflect.DeepEqual(want.Data(), got.Data()) {
		return ""
	}
	if d := cmp.Diff(want.Data(), got.Data()); d != "" {
		return "data (-want +got):\n" + d
	}
	return ""
}

// wantErr fails unless err is an error whose message holds every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// allocatedDuring reports the bytes allocated while f runs.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
