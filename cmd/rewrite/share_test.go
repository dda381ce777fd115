package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"multigpu/internal/rankhub"
	"multigpu/runtime/host"
)

// TestShare: what rank 0 reads, every rank gets, bit for bit (every
// element type, a nil set, strings); the others never call read; a read
// that fails on rank 0 fails every rank.
func TestShare(t *testing.T) {
	sets := []map[string]*tensor.Dense{
		{
			"w":    host.New([]int{2, 3}, []float32{1, -2, 3.5, float32(0.1), 5, 6}),
			"b":    host.New([]int{3}, []float64{1e-300, -0.0, 7}),
			"ids":  host.New([]int{2}, []int64{1 << 40, -3}),
			"i":    host.New([]int{}, []int32{9}),
			"mask": host.New([]int{2}, []bool{true, false}),
		},
		nil,
		{},
	}
	h := rankhub.New(3)
	got := make([]bundle, 3)
	errs := h.Run(func(c *rankhub.Comm) error {
		j := &rankJob{comm: c, rank: c.Rank(), size: c.Size()}
		var err error
		got[c.Rank()], err = j.share("test", func() (bundle, error) {
			if c.Rank() != 0 {
				return bundle{}, fmt.Errorf("rank %d read", c.Rank())
			}
			return bundle{text: map[string]string{"path": "w.npz", "": "x\x00y"}, sets: sets}, nil
		})
		return err
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	for r := 1; r < 3; r++ {
		b := got[r]
		if b.text["path"] != "w.npz" || b.text[""] != "x\x00y" || len(b.text) != 2 {
			t.Errorf("rank %d: text %q", r, b.text)
		}
		if len(b.sets) != 3 || b.sets[1] != nil || b.sets[2] == nil || len(b.sets[2]) != 0 {
			t.Fatalf("rank %d: sets %v", r, b.sets)
		}
		for name, want := range sets[0] {
			g := b.sets[0][name]
			if g == nil || fmt.Sprint(host.Shape(g)) != fmt.Sprint(host.Shape(want)) || fmt.Sprintf("%v", host.Data(g)) != fmt.Sprintf("%v", host.Data(want)) || g.Dtype() != want.Dtype() {
				t.Errorf("rank %d: %s = %v, want %v", r, name, g, want)
			}
		}
	}
	// A failed read on rank 0: rank 0 returns its error, the others say
	// that rank 0 could not read it.
	h = rankhub.New(2)
	errs = h.Run(func(c *rankhub.Comm) error {
		j := &rankJob{comm: c, rank: c.Rank(), size: c.Size()}
		_, err := j.shareTensors("--input x", func() (map[string]*tensor.Dense, error) { return nil, errors.New("x.npy: no such file") })
		return err
	})
	if errs[0] == nil || errs[0].Error() != "x.npy: no such file" || errs[1] == nil || !strings.Contains(errs[1].Error(), "--input x: rank 0 could not read it") {
		t.Errorf("a failed read: %v", errs)
	}
	// Without a job, share reads.
	b, err := (*rankJob)(nil).shareBytes("MODEL", func() ([]byte, error) { return []byte("graph"), nil })
	if err != nil || string(b) != "graph" {
		t.Errorf("without a job: %q, %v", b, err)
	}
}

// TestDecodeBundleCorrupt: cut or padded payloads are errors, never
// panics.
func TestDecodeBundleCorrupt(t *testing.T) {
	p, err := bundle{text: map[string]string{"a": "b"}, sets: []map[string]*tensor.Dense{{"w": host.New([]int{2}, []float32{1, 2})}}}.encode()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(p) {
		if _, err := decodeBundle(p[:n]); err == nil {
			t.Errorf("%d of %d bytes decoded", n, len(p))
		}
	}
	if _, err := decodeBundle(append(p, 0)); err == nil {
		t.Error("a trailing byte decoded")
	}
	if _, err := decodeBundle(p); err != nil {
		t.Error(err)
	}
}
