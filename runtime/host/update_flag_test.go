package host

import "flag"

// update is declared in every test package so that "go test ./... -update"
// (which regenerates the golden files of passes/replicate) runs everywhere.
var _ = flag.Bool("update", false, "rewrite golden files (none in this package)")
