package graph

import "testing"

// FuzzParse checks that Parse never panics, and that whatever it accepts
// verifies, prints, parses back and prints the same bytes, and clones to
// the same print. Seeds: every model of ../testdata and every malformed
// input of the parse error table; crashers found are kept in
// testdata/fuzz/FuzzParse as regression inputs.
//
//	go test ./graph -run '^$' -fuzz FuzzParse -fuzztime 5m
func FuzzParse(f *testing.F) {
	for _, m := range testModels(f) {
		f.Add(m.src)
	}
	for _, tc := range parseErrors {
		f.Add([]byte(tc.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkParse(t, src)
	})
}
