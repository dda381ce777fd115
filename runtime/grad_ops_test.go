package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"multigpu/graph"
)

// gradOpCases are the op tests of the ops backward graphs use (compare,
// broadcast_like and the gradients of conv2d and the pools), against
// references written from the definition: the adjoint of the forward op.
func gradOpCases() []opCase {
	r := rand.New(rand.NewPCG(3, 4))
	var cases []opCase
	tr := 1e-5
	cmps := map[string]func(x, y float64) bool{
		"eq": func(x, y float64) bool { return x == y }, "ne": func(x, y float64) bool { return x != y },
		"lt": func(x, y float64) bool { return x < y }, "le": func(x, y float64) bool { return x <= y },
		"gt": func(x, y float64) bool { return x > y }, "ge": func(x, y float64) bool { return x >= y },
	}
	specials := arr{shape: []int{2, 4}, data: []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), -1.5, 2.5, 1}}
	for name, f := range cmps {
		mask := func(x, y float64) float64 {
			if f(x, y) {
				return 1
			}
			return 0
		}
		// Integers in [-2, 2] so that equality happens.
		ints := func(shape ...int) arr {
			a := newArr(shape...)
			for i := range a.data {
				a.data[i] = float64(r.IntN(5) - 2)
			}
			return a
		}
		cases = append(cases, opCase{
			name:   "compare_" + name,
			src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,3,4]\n  input %%z: {T}[3,1]\n  %%y = compare %%x, %%z {cmp=%s}\n  output %%y\n}\n", name),
			inputs: map[string]arr{"x": ints(2, 3, 4), "z": ints(3, 1)},
			want:   func(in map[string]arr, dt graph.DType) arr { return broadcast(in["x"], in["z"], mask) },
		}, opCase{
			name:   "compare_" + name + "_specials",
			src:    fmt.Sprintf("graph g {\n  input %%x: {T}[2,4]\n  input %%z: {T}[4]\n  %%y = compare %%x, %%z {cmp=%s}\n  output %%y\n}\n", name),
			inputs: map[string]arr{"x": specials, "z": {shape: []int{4}, data: []float64{1, math.NaN(), math.Inf(-1), 0}}},
			want:   func(in map[string]arr, dt graph.DType) arr { return broadcast(in["x"], in["z"], mask) },
		})
	}
	for _, s := range []struct {
		name, dy string
		shape    []int
	}{
		{"column", "[3,1]", []int{3, 1}}, {"scalar", "[]", []int{}}, {"same", "[2,3,4]", []int{2, 3, 4}}, {"middle", "[2,1,4]", []int{2, 1, 4}},
	} {
		cases = append(cases, opCase{
			name:   "broadcast_like_" + s.name,
			src:    fmt.Sprintf("graph g {\n  input %%d: {T}%s\n  input %%x: {T}%s\n  %%y = broadcast_like %%d, %%x\n  output %%y\n}\n", s.dy, "[2,3,4]"),
			inputs: map[string]arr{"d": randArr(r, -2, 2, s.shape...), "x": randArr(r, -2, 2, 2, 3, 4)},
			want: func(in map[string]arr, dt graph.DType) arr {
				return broadcast(in["d"], in["x"], func(d, _ float64) float64 { return d })
			},
		})
	}
	convs := []struct {
		name          string
		c, o, h, w    int
		kh, kw        int
		stride, dil   []int
		pad           []int
		groups        int
		attrs         string
		oh, ow, cg, n int
	}{
		{name: "plain", c: 3, o: 4, h: 6, w: 5, kh: 3, kw: 3, stride: []int{1, 1}, dil: []int{1, 1}, pad: []int{1, 1, 1, 1}, groups: 1,
			attrs: "pad=[1,1]"},
		{name: "strided", c: 2, o: 3, h: 7, w: 6, kh: 3, kw: 2, stride: []int{2, 2}, dil: []int{1, 1}, pad: []int{1, 0, 1, 0}, groups: 1,
			attrs: "stride=[2,2], pad=[1,0]"},
		{name: "grouped_dilated", c: 4, o: 6, h: 8, w: 8, kh: 2, kw: 3, stride: []int{1, 2}, dil: []int{2, 1}, pad: []int{0, 1, 1, 0}, groups: 2,
			attrs: "stride=[1,2], pad=[0,1,1,0], dilation=[2,1], groups=2"},
	}
	for _, c := range convs {
		n := 3
		oh := (c.h+c.pad[0]+c.pad[2]-(c.dil[0]*(c.kh-1)+1))/c.stride[0] + 1
		ow := (c.w+c.pad[1]+c.pad[3]-(c.dil[1]*(c.kw-1)+1))/c.stride[1] + 1
		cg := c.c / c.groups
		cases = append(cases, opCase{
			name: "conv2d_grad_input_" + c.name, tol: tr,
			src: fmt.Sprintf("graph g {\n  input %%d: {T}[N,%d,%d,%d]\n  param %%w: {T}[%d,%d,%d,%d]\n  %%y = conv2d_grad_input %%d, %%w {%s, size=[%d,%d]}\n  output %%y\n}\n",
				c.o, oh, ow, c.o, cg, c.kh, c.kw, c.attrs, c.h, c.w),
			inputs: map[string]arr{"d": randArr(r, -1, 1, n, c.o, oh, ow), "w": randArr(r, -1, 1, c.o, cg, c.kh, c.kw)},
			want: func(in map[string]arr, dt graph.DType) arr {
				dx := newArr(n, c.c, c.h, c.w)
				convAdjoint(in["d"], c.stride, c.pad, c.dil, c.groups, cg, c.kh, c.kw, c.h, c.w, func(ni, o, ci, i, j, ih, iw int, g float64) {
					dx.data[dx.index([]int{ni, ci, ih, iw})] += g * in["w"].at(o, ci%cg, i, j)
				})
				return dx
			},
		}, opCase{
			name: "conv2d_grad_weight_" + c.name, tol: tr,
			src: fmt.Sprintf("graph g {\n  input %%x: {T}[N,%d,%d,%d]\n  input %%d: {T}[N,%d,%d,%d]\n  %%y = conv2d_grad_weight %%x, %%d {%s, kernel=[%d,%d]}\n  output %%y\n}\n",
				c.c, c.h, c.w, c.o, oh, ow, c.attrs, c.kh, c.kw),
			inputs: map[string]arr{"x": randArr(r, -1, 1, n, c.c, c.h, c.w), "d": randArr(r, -1, 1, n, c.o, oh, ow)},
			want: func(in map[string]arr, dt graph.DType) arr {
				dw := newArr(c.o, cg, c.kh, c.kw)
				convAdjoint(in["d"], c.stride, c.pad, c.dil, c.groups, cg, c.kh, c.kw, c.h, c.w, func(ni, o, ci, i, j, ih, iw int, g float64) {
					dw.data[dw.index([]int{o, ci % cg, i, j})] += g * in["x"].at(ni, ci, ih, iw)
				})
				return dw
			},
		})
	}
	pools := []struct {
		name                string
		h, w                int
		kernel, stride, pad []int
		attrs               string
	}{
		{"tiled", 6, 4, []int{2, 2}, []int{2, 2}, []int{0, 0, 0, 0}, "kernel=[2,2]"},
		{"overlapping_padded", 7, 6, []int{3, 3}, []int{2, 2}, []int{1, 1, 1, 1}, "kernel=[3,3], stride=[2,2], pad=[1,1]"},
		{"ragged", 5, 7, []int{2, 3}, []int{1, 2}, []int{1, 0, 0, 2}, "kernel=[2,3], stride=[1,2], pad=[1,0,0,2]"},
	}
	for _, p := range pools {
		oh := (p.h+p.pad[0]+p.pad[2]-p.kernel[0])/p.stride[0] + 1
		ow := (p.w+p.pad[1]+p.pad[3]-p.kernel[1])/p.stride[1] + 1
		window := func(idx []int, f func(ih, iw int)) {
			for i := 0; i < p.kernel[0]; i++ {
				for j := 0; j < p.kernel[1]; j++ {
					ih, iw := idx[2]*p.stride[0]-p.pad[0]+i, idx[3]*p.stride[1]-p.pad[1]+j
					if ih >= 0 && ih < p.h && iw >= 0 && iw < p.w {
						f(ih, iw)
					}
				}
			}
		}
		cases = append(cases, opCase{
			name: "maxpool2d_grad_" + p.name, tol: tr,
			src: fmt.Sprintf("graph g {\n  input %%x: {T}[N,2,%d,%d]\n  input %%d: {T}[N,2,%d,%d]\n  %%y = maxpool2d_grad %%x, %%d {%s}\n  output %%y\n}\n",
				p.h, p.w, oh, ow, p.attrs),
			inputs: map[string]arr{"x": randArr(r, -1, 1, 2, 2, p.h, p.w), "d": randArr(r, -1, 1, 2, 2, oh, ow)},
			want: func(in map[string]arr, dt graph.DType) arr {
				x, d := in["x"], in["d"]
				dx := newArr(x.shape...)
				each(d.shape, func(idx []int) {
					best, at := math.Inf(-1), -1
					window(idx, func(ih, iw int) {
						if v := x.at(idx[0], idx[1], ih, iw); at < 0 || v > best {
							best, at = v, x.index([]int{idx[0], idx[1], ih, iw})
						}
					})
					dx.data[at] += d.at(idx...)
				})
				return dx
			},
		}, opCase{
			name: "avgpool2d_grad_" + p.name, tol: tr,
			src: fmt.Sprintf("graph g {\n  input %%d: {T}[N,2,%d,%d]\n  %%y = avgpool2d_grad %%d {%s, size=[%d,%d]}\n  output %%y\n}\n",
				oh, ow, p.attrs, p.h, p.w),
			inputs: map[string]arr{"d": randArr(r, -1, 1, 2, 2, oh, ow)},
			want: func(in map[string]arr, dt graph.DType) arr {
				d := in["d"]
				dx := newArr(2, 2, p.h, p.w)
				each(d.shape, func(idx []int) {
					cnt := 0
					window(idx, func(int, int) { cnt++ })
					window(idx, func(ih, iw int) {
						dx.data[dx.index([]int{idx[0], idx[1], ih, iw})] += d.at(idx...) / float64(cnt)
					})
				})
				return dx
			},
		})
	}
	return cases
}

// convAdjoint calls f for every product of conv2d's sum: sample ni,
// output channel o, input channel ci (of all C), kernel position (i, j),
// input position (ih, iw) inside the image, with g the dy element of the
// output position.
func convAdjoint(dy arr, stride, pad, dil []int, groups, cg, kh, kw, h, w int, f func(ni, o, ci, i, j, ih, iw int, g float64)) {
	og := dy.shape[1] / groups
	each(dy.shape, func(idx []int) {
		g := dy.at(idx...)
		grp := idx[1] / og
		for c := 0; c < cg; c++ {
			for i := 0; i < kh; i++ {
				for j := 0; j < kw; j++ {
					ih := idx[2]*stride[0] - pad[0] + i*dil[0]
					iw := idx[3]*stride[1] - pad[1] + j*dil[1]
					if ih >= 0 && ih < h && iw >= 0 && iw < w {
						f(idx[0], idx[1], grp*cg+c, i, j, ih, iw, g)
					}
				}
			}
		}
	})
}
