package devmap

import "fmt"

// ForLocalRank returns the device map of local rank l (an MPI rank's rank
// among the ranks on its node, OMPI_COMM_WORLD_LOCAL_RANK) on a node
// whose ranks drive per logical GPUs each: the rank's gpu:K, for K in
// [0, per), is the node's gpu:l*per+K, which m (the node's map, the same
// on every rank; empty: the identity) sends to a physical GPU. With 2
// ranks per node and --gpus 2, local rank 1's gpu:0 and gpu:1 run on the
// node's GPUs 2 and 3; with --device-map gpu:0-3=0 every rank of the node
// runs on GPU 0. The result names the rank's own GPUs only (never empty):
// a map that names none of them is an error.
func (m Map) ForLocalRank(l, per int) (Map, error) {
	if l < 0 || per < 1 || l*per+per > maxIndex {
		return Map{}, fmt.Errorf("local rank %d with %d GPUs per rank: expected a local rank of 0 or more and 1 to %d GPUs per rank in all", l, per, maxIndex)
	}
	lo := l * per
	var out Map
	for k := range per {
		p, ok := m.Physical(lo + k)
		if !ok {
			continue
		}
		out.logical = append(out.logical, k)
		out.physical = append(out.physical, p)
	}
	if out.IsEmpty() {
		return Map{}, fmt.Errorf("local rank %d drives the node's gpu:%s (its gpu:%s), but the device map %s maps none of them", l, span(lo, lo+per-1), span(0, per-1), m)
	}
	return out, nil
}

// span writes the range lo-hi of GPU indices ("2-3", or "2").
func span(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}
