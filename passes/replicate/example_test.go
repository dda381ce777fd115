package replicate_test

import (
	"fmt"
	"log"
	"os"

	"multigpu/graph"
	"multigpu/passes"
	"multigpu/passes/replicate"
)

// Other graph tooling imports the pass and runs it on its own graph, in a
// pipeline that verifies the result.
func Example() {
	src := `graph tiny {
  input %x: f32[N,3]
  param %w: f32[3,2]
  %y = matmul %x, %w
  output %y
}
`
	g, err := graph.Parse("tiny.graph", []byte(src))
	if err != nil {
		log.Fatal(err)
	}
	p := passes.Pipeline{
		Passes:     []*passes.Pass{replicate.New(replicate.Options{GPUs: []int{0, 1}, Batch: 5})},
		VerifyEach: true,
	}
	out, warnings, err := p.Run(g)
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range warnings {
		fmt.Println("warning:", w)
	}
	graph.Print(os.Stdout, out)
	// Output:
	// graph tiny {
	//   input %x: f32[N=5,3] @cpu
	//   param %w: f32[3,2] @cpu
	//   %x.r0 = slice %x {axis=0, part=0, parts=2, start=0, end=3} : f32[N.0=3,3] @gpu:0
	//   %x.r1 = slice %x {axis=0, part=1, parts=2, start=3, end=5} : f32[N.1=2,3] @gpu:1
	//   %w.r0 = copy %w : f32[3,2] @gpu:0
	//   %w.r1 = copy %w : f32[3,2] @gpu:1
	//   %y.r0 = matmul %x.r0, %w.r0 : f32[N.0=3,2] @gpu:0
	//   %y.r1 = matmul %x.r1, %w.r1 : f32[N.1=2,2] @gpu:1
	//   %y = concat %y.r0, %y.r1 {axis=0} : f32[N=5,2] @cpu
	//   output %y
	// }
}
