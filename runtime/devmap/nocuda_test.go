//go:build !cudart

package devmap

import (
	"errors"
	"strings"
	"testing"

	"multigpu/graph"
)

func TestNoCUDA(t *testing.T) {
	if !strings.Contains(ErrNoCUDA.Error(), "go build -tags cudart ./cmd/rewrite") {
		t.Errorf("ErrNoCUDA does not say how to build with CUDA: %v", ErrNoCUDA)
	}
	gpusFound, err := Discover()
	if !errors.Is(err, ErrNoCUDA) || gpusFound != nil {
		t.Fatalf("Discover() = %v, %v; want ErrNoCUDA (this test runs without -tags cudart)", gpusFound, err)
	}
	s := Open(Identity(2))
	defer s.Close()
	if _, err := s.Devices(graph.HostCPU); err != nil {
		t.Errorf("Devices(cpu): %v", err)
	}
	_, err = s.Devices(graph.GPUDevice(1))
	if !errors.Is(err, ErrNoCUDA) || !strings.HasPrefix(err.Error(), "gpu:1 (physical GPU 1): no GPUs: built without -tags cudart") {
		t.Errorf("Devices(gpu:1) error = %v", err)
	}
}
