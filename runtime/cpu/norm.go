package cpu

import (
	"hash/fnv"
	"math"

	"multigpu/runtime/backend"
)

// batchnormKernel normalises x per channel on axis:
// (x - mean) / sqrt(var + epsilon) * scale + bias. In training mode mean
// and var are the batch's own: the mean over every axis but axis, then the
// mean of squared deviations from it (biased); the mean and var operands
// are not read.
func batchnormKernel(s *spec) (kernelFn, error) {
	n := s.node
	ax, err := n.NormAxis("axis", len(s.in[0]))
	if err != nil {
		return nil, err
	}
	outer, c, inner := split3(s.in[0], ax)
	eps := n.FloatAttr("epsilon", 1e-5)
	training := n.BoolAttr("training")
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return batchnormT[float32](outer, c, inner, eps, training), batchnormT[float64](outer, c, inner, eps, training)
	})
}

func batchnormT[T float](outer, c, inner int, eps float64, training bool) kernelFn {
	e := T(eps)
	return func(ins []any, _ *runState) (any, error) {
		x, scale, bias := ins[0].([]T), ins[1].([]T), ins[2].([]T)
		mean, vari := ins[3].([]T), ins[4].([]T)
		if training {
			mean, vari = batchStats(x, outer, c, inner)
		}
		sd := make([]T, c)
		for k := range sd {
			sd[k] = T(math.Sqrt(float64(vari[k] + e)))
		}
		out := make([]T, len(x))
		for o := 0; o < outer; o++ {
			for k := 0; k < c; k++ {
				off := (o*c + k) * inner
				src, dst := x[off:off+inner], out[off:off+inner]
				m, d, g, b := mean[k], sd[k], scale[k], bias[k]
				for i, v := range src {
					dst[i] = (v-m)/d*g + b
				}
			}
		}
		return out, nil
	}
}

// batchStats returns, per channel of x[outer, c, inner], the mean and the
// biased variance (two passes), summing in row-major order.
func batchStats[T float](x []T, outer, c, inner int) (mean, vari []T) {
	mean, vari = make([]T, c), make([]T, c)
	count := T(outer * inner)
	for k := range mean {
		mean[k] = T(math.Copysign(0, -1))
		vari[k] = T(math.Copysign(0, -1))
	}
	for o := 0; o < outer; o++ {
		for k := 0; k < c; k++ {
			for _, v := range x[(o*c+k)*inner : (o*c+k+1)*inner] {
				mean[k] += v
			}
		}
	}
	for k := range mean {
		mean[k] /= count
	}
	for o := 0; o < outer; o++ {
		for k := 0; k < c; k++ {
			m := mean[k]
			for _, v := range x[(o*c+k)*inner : (o*c+k+1)*inner] {
				d := v - m
				vari[k] += d * d
			}
		}
	}
	for k := range vari {
		vari[k] /= count
	}
	return mean, vari
}

// dropoutKernel is the identity unless training. In training, element e
// is kept with probability 1-rate and scaled by 1/(1-rate), else zeroed;
// whether it is kept depends only on (seed, the node's key, the global
// index of e's sample, e's index within its sample), so a sample gets the
// same mask however the batch is split.
func dropoutKernel(s *spec) (kernelFn, error) {
	n := s.node
	if !n.BoolAttr("training") {
		s.view = true
		return func(ins []any, _ *runState) (any, error) { return ins[0], nil }, nil
	}
	rate := n.FloatAttr("rate", 0.5)
	m := newMasker(s.in[0], s.info, rate)
	return floatKernel(s.dt, func() (kernelFn, kernelFn) {
		return dropoutT[float32](m, rate), dropoutT[float64](m, rate)
	})
}

// masker decides which elements dropout keeps.
type masker struct {
	key                int64 // hash of the node's key
	outer, size, inner int   // the operand as [outer, batch axis, inner]
	mul                int64 // samples per batch index: the axis holds mul rows per sample
	offset             int64 // global index of the first sample
	threshold          uint64
	batched            bool
}

func newMasker(shape []int, info backend.NodeInfo, rate float64) *masker {
	h := fnv.New64a()
	h.Write([]byte(info.Key))
	m := &masker{key: int64(h.Sum64()), mul: max(info.BatchMul, 1), offset: info.Offset}
	// keep when the uniform draw u in [0,1) is >= rate: u = bits>>11 / 2^53
	m.threshold = uint64(math.Ceil(rate * (1 << 53)))
	if info.BatchAxis >= 0 && info.BatchAxis < len(shape) {
		m.batched = true
		m.outer, m.size, m.inner = split3(shape, info.BatchAxis)
	} else {
		m.outer, m.size, m.inner = 1, 1, numel(shape)
	}
	return m
}

// keep reports whether flat element e of the operand survives.
func (m *masker) keep(seed uint64, e int) bool {
	sample, within := int64(0), int64(e)
	if m.batched {
		r := e % m.inner
		t := (e / m.inner) % m.size
		o := e / (m.inner * m.size)
		sample = m.offset + int64(t)/m.mul
		within = ((int64(o)*m.mul+int64(t)%m.mul)*int64(m.inner) + int64(r))
	}
	return mix(seed, uint64(m.key), uint64(sample), uint64(within))>>11 >= m.threshold
}

// mix is a counter-based hash of four words (splitmix64 finalisers).
func mix(words ...uint64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, w := range words {
		h ^= w
		h = splitmix(h)
	}
	return h
}

func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func dropoutT[T float](m *masker, rate float64) kernelFn {
	keepScale := T(1 - rate)
	return func(ins []any, rs *runState) (any, error) {
		x := ins[0].([]T)
		out := make([]T, len(x))
		seed := rs.opts.Seed
		for i, v := range x {
			if m.keep(seed, i) {
				out[i] = v / keepScale
			}
		}
		return out, nil
	}
}
