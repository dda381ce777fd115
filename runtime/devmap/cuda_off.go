//go:build !cudart

package devmap

func discover() ([]GPU, error) { return nil, ErrNoCUDA }

func openPhysical(int, Options) (physical, error) { return nil, ErrNoCUDA }
