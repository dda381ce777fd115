// Package heappeak measures the peak of the live heap while code runs, for
// the benchmarks that report peak memory (runtime, train).
package heappeak

import (
	goruntime "runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// Sampler records the peak of live heap objects while it runs.
type Sampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
	base uint64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Start collects garbage, then samples the live heap every 200µs until
// PeakMB is called.
func Start() *Sampler {
	goruntime.GC()
	h := &Sampler{stop: make(chan struct{}), base: heapObjects()}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			h.peak = max(h.peak, heapObjects())
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// PeakMB stops the sampler and returns the peak growth of the heap over
// its start, in MB.
func (h *Sampler) PeakMB() float64 {
	close(h.stop)
	h.done.Wait()
	return float64(h.peak-min(h.base, h.peak)) / 1e6
}
