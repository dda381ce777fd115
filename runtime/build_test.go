package runtime_test

import (
	"sync"
	"testing"

	"multigpu/passes/replicate"
	"multigpu/runtime"
)

// Executors of different graphs build and run concurrently (each holds its
// own build lock; the ops of runtime/cpu share no state in gorgonia).
func TestConcurrentExecutors(t *testing.T) {
	var wg sync.WaitGroup
	for _, path := range models(t) {
		g := loadModel(t, path)
		if len(g.Devices()) > 0 {
			continue
		}
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rg, _, err := replicate.Rewrite(g, replicate.Options{GPUs: gpus(2 + k), BatchNorm: replicate.BatchNormSync})
				if err != nil {
					t.Error(err)
					return
				}
				e, err := runtime.New(rg, runtime.Options{})
				if err != nil {
					t.Error(err)
					return
				}
				e.SetParams(runtime.RandomParams(g, 1))
				for b := int64(1); b < 6; b++ {
					in, _ := runtime.RandomInputs(g, b, 1)
					run(t, e, in)
				}
			}()
		}
	}
	wg.Wait()
}
