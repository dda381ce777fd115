//go:build cudart

package devmap

import "multigpu/runtime/cuda"

func discover() ([]GPU, error) {
	infos, err := cuda.Discover()
	if err != nil {
		return nil, err
	}
	out := make([]GPU, len(infos))
	for i, in := range infos {
		out[i] = GPU{Ordinal: in.Ordinal, Name: in.Name, Memory: in.Memory, Major: in.Major, Minor: in.Minor}
	}
	return out, nil
}

func openPhysical(ordinal int, opts Options) (physical, error) {
	return cuda.OpenWith(ordinal, cuda.Options{TF32: opts.TF32})
}
