package main

import (
	"bytes"
	"strings"
	"testing"
)

// A run with a pass, a failure, a skip for missing software and a skip by
// design gives the counts, the reasons and the install command.
func TestSummarize(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p/graph","Test":"TestA"}`,
		`{"Action":"pass","Package":"p/graph","Test":"TestA","Elapsed":0.1}`,
		`{"Action":"run","Package":"p/graph","Test":"TestDOT"}`,
		`{"Action":"output","Package":"p/graph","Test":"TestDOT","Output":"=== RUN   TestDOT\n"}`,
		`{"Action":"output","Package":"p/graph","Test":"TestDOT","Output":"    dot_test.go:145: Graphviz's dot is not installed (apt-get install graphviz)\n"}`,
		`{"Action":"output","Package":"p/graph","Test":"TestDOT","Output":"--- SKIP: TestDOT (0.00s)\n"}`,
		`{"Action":"skip","Package":"p/graph","Test":"TestDOT"}`,
		`{"Action":"run","Package":"p/graph","Test":"TestB/placed"}`,
		`{"Action":"output","Package":"p/graph","Test":"TestB/placed","Output":"    x_test.go:9: already placed\n"}`,
		`{"Action":"skip","Package":"p/graph","Test":"TestB/placed"}`,
		`{"Action":"output","Package":"p/graph","Output":"ok  \tp/graph\t0.2s\n"}`,
		`{"Action":"pass","Package":"p/graph","Elapsed":0.2}`,
		`{"Action":"skip","Package":"p/empty","Elapsed":0}`,
		`{"ImportPath":"p/broken","Action":"build-output","Output":"p/broken/x.go:3:1: syntax error\n"}`,
		`{"ImportPath":"p/broken","Action":"build-fail"}`,
		`{"Action":"output","Package":"p/broken","Output":"FAIL\tp/broken [build failed]\n"}`,
		`{"Action":"fail","Package":"p/broken","Elapsed":0,"FailedBuild":"p/broken"}`,
		`{"Action":"run","Package":"p/digits","Test":"TestTrain"}`,
		`{"Action":"output","Package":"p/digits","Test":"TestTrain","Output":"    d_test.go:39: digits.csv.gz not found: run examples/digits/fetch.sh\n"}`,
		`{"Action":"skip","Package":"p/digits","Test":"TestTrain"}`,
		`{"Action":"run","Package":"p/digits","Test":"TestBad"}`,
		`{"Action":"output","Package":"p/digits","Test":"TestBad","Output":"    d_test.go:50: wrong answer\n"}`,
		`{"Action":"fail","Package":"p/digits","Test":"TestBad"}`,
		`{"Action":"output","Package":"p/digits","Output":"FAIL\n"}`,
		`{"Action":"fail","Package":"p/digits","Elapsed":0.3}`,
	}, "\n")
	var out bytes.Buffer
	failed, err := summarize(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("a failed test did not fail the summary")
	}
	got := out.String()
	for _, want := range []string{
		"ok  \tp/graph\t0.2s\n",
		"?   \tp/empty\t[no test files]\n",
		"d_test.go:50: wrong answer",
		"skipped (3):\n",
		"  p/graph TestDOT: Graphviz's dot is not installed (apt-get install graphviz)\n",
		"  p/graph TestB/placed: already placed\n",
		"the skipped tests lack Graphviz's dot, the digits data; to run them, install (as root): apt-get install -y graphviz && examples/digits/fetch.sh\n",
		"FAIL p/digits\n",
		"p/broken/x.go:3:1: syntax error\n",
		"FAIL p/broken\n",
		"1 passed, 1 failed, 3 skipped\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the summary lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasSuffix(got, "1 passed, 1 failed, 3 skipped\n") {
		t.Errorf("the summary does not end with the counts:\n%s", got)
	}
}
