//go:build cudart

package devmap

import (
	"testing"

	"multigpu/graph"
)

// Built with -tags cudart, Discover lists the GPUs the driver finds, and a
// Set opens gpu:K on them.
func TestDiscoverCUDA(t *testing.T) {
	found, err := Discover()
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Skip("no GPU: the CUDA driver finds no device")
	}
	for _, g := range found {
		t.Log(g)
	}
	m, err := Parse("gpu:0-3=0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(len(found), m.Available(len(found))); err != nil {
		t.Fatal(err)
	}
	s := Open(m)
	for k := range 4 {
		d, err := s.Devices(graph.GPUDevice(k))
		if err != nil {
			t.Fatal(err)
		}
		if d.Place() != graph.GPUDevice(k) {
			t.Errorf("Devices(gpu:%d).Place() = %s", k, d.Place())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
