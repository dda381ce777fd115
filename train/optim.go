package train

import (
	"fmt"
	"math"
)

// Optimizer says how gradients update the weights. The rules are
// PyTorch's, applied on the devices as graph ops (step.go), in the
// params' own element type.
type Optimizer struct {
	// Kind is "sgd" (w -= lr*g), "momentum" (v = mu*v + g; w -= lr*v) or
	// "adam" (bias-corrected moments; w -= lr*m̂/(sqrt(v̂)+eps)). Empty
	// means sgd.
	Kind string
	// LR is the learning rate; 0 means 0.01 for sgd and momentum and
	// 0.001 for adam.
	LR float64
	// Momentum is mu of "momentum"; 0 means 0.9.
	Momentum float64
	// Beta1, Beta2 and Epsilon are Adam's; 0 means 0.9, 0.999 and 1e-8.
	Beta1, Beta2, Epsilon float64
}

// The optimizer kinds.
const (
	SGD      = "sgd"
	Momentum = "momentum"
	Adam     = "adam"
)

// withDefaults checks o and fills in its defaults.
func (o Optimizer) withDefaults() (Optimizer, error) {
	if o.Kind == "" {
		o.Kind = SGD
	}
	switch o.Kind {
	case SGD, Momentum:
		if o.LR == 0 {
			o.LR = 0.01
		}
	case Adam:
		if o.LR == 0 {
			o.LR = 0.001
		}
	default:
		return o, fmt.Errorf("optimizer: expected sgd, momentum or adam, found %q", o.Kind)
	}
	if o.Momentum == 0 {
		o.Momentum = 0.9
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Epsilon == 0 {
		o.Epsilon = 1e-8
	}
	for _, v := range []struct {
		name string
		v    float64
		open bool // (0, 1) rather than (0, inf)
	}{{"learning rate", o.LR, false}, {"momentum", o.Momentum, true}, {"beta1", o.Beta1, true}, {"beta2", o.Beta2, true}, {"epsilon", o.Epsilon, false}} {
		if !(v.v > 0) || math.IsInf(v.v, 0) || (v.open && v.v >= 1) {
			want := "a positive number"
			if v.open {
				want = "a number in (0, 1)"
			}
			return o, fmt.Errorf("optimizer: expected %s as the %s, found %g", want, v.name, v.v)
		}
	}
	return o, nil
}
