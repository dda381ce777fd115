package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestLinePrefix: every line a rank writes on stderr starts with its
// rank, however the writes cut the lines.
func TestLinePrefix(t *testing.T) {
	var b bytes.Buffer
	w := &linePrefix{w: &b, prefix: "rank 1 of 3: "}
	for _, s := range []string{"rewrite: a", "b\nsecond\n", "", "third", "\n\n"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	want := "rank 1 of 3: rewrite: ab\nrank 1 of 3: second\nrank 1 of 3: third\nrank 1 of 3: \n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestRankTimeoutFlag: --rank-timeout sets the job's watchdog; a negative
// one is refused.
func TestRankTimeoutFlag(t *testing.T) {
	for _, tc := range []struct {
		arg, want string
	}{{"--rank-timeout=3s", "3s"}, {"--rank-timeout=0", "0s"}, {"", "10m0s"}} {
		args := []string{"m.graph"}
		if tc.arg != "" {
			args = append(args, tc.arg)
		}
		o, err := parseArgs(args)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		job := &rankJob{size: 2, setTimeout: func(d time.Duration) { got = fmt.Sprint(d) }}
		if err := o.joinRanks(job); err != nil || got != tc.want {
			t.Errorf("%q: timeout %q, %v; want %s", tc.arg, got, err, tc.want)
		}
	}
	o, err := parseArgs([]string{"m.graph", "--rank-timeout=-1s"})
	if err == nil {
		err = o.joinRanks(&rankJob{size: 2})
	}
	if err == nil {
		t.Error("--rank-timeout=-1s accepted")
	}
}
