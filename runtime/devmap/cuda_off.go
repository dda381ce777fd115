//go:build !cudart

package devmap

func discover() ([]GPU, error) { return nil, ErrNoCUDA }

func openPhysical(int) (physical, error) { return nil, ErrNoCUDA }
