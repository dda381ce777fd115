//go:build cudart

package cuda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"multigpu/graph"
	"multigpu/runtime"
	"multigpu/runtime/backend"
	"multigpu/runtime/cuda"
	"multigpu/runtime/host"
	"multigpu/tensorio"
	"multigpu/train"
)

// The GPU side of .ci/gpu-proof's comparison with PyTorch (TestProof) is
// configured by these environment variables; without MULTIGPU_PROOF_DIR
// the test skips.
const (
	envProofDir     = "MULTIGPU_PROOF_DIR"    // where the weights, inputs, outputs and ours.json go
	envProofModels  = "MULTIGPU_PROOF_MODELS" // comma-separated: mlp, resnet18 (default both)
	envMLPBatch     = "MULTIGPU_PROOF_MLP_BATCH"
	envResNetBatch  = "MULTIGPU_PROOF_RESNET_BATCH"
	envResNetSize   = "MULTIGPU_PROOF_RESNET_SIZE" // image height and width
	envProofIters   = "MULTIGPU_PROOF_ITERS"       // timed runs per measurement, at most
	envProofSeconds = "MULTIGPU_PROOF_SECONDS"     // time per measurement, at most (at least one run)
)

// proofLR is the learning rate of the training step (SGD, no momentum),
// the same on both sides.
const proofLR = 0.01

// resnet18Source returns ResNet-18 as torchvision lays it out (a 7x7
// stride-2 convolution, batchnorm, relu, a 3x3 stride-2 max pool, four
// stages of two basic blocks with 64, 128, 256 and 512 channels, the
// first block of stages 2-4 striding by 2 with a 1x1 convolution on its
// skip path, global average pooling and a 1000-way dense layer) for
// f32[N,3,size,size] images. Params are named as in torchvision's state
// dict with dots as underscores (layer1.0.conv1.weight is
// %layer1_0_conv1_weight), except %fc_weight, which is the transpose of
// torchvision's fc.weight. The output %y is the logits; with training,
// batchnorm uses the batch's statistics and the output is %loss, the mean
// softmax cross-entropy against one-hot targets %t.
func resnet18Source(size int, training bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph resnet18 {\n  input %%x: f32[N,3,%d,%d]\n", size, size)
	if training {
		b.WriteString("  input %t: f32[N,1000]\n")
	}
	var params, body strings.Builder
	bnMode := ""
	if training {
		bnMode = " {training=true}"
	}
	conv := func(out, in, name string, cin, cout, k, stride, pad int) {
		fmt.Fprintf(&params, "  param %%%s_weight: f32[%d,%d,%d,%d]\n", name, cout, cin, k, k)
		fmt.Fprintf(&body, "  %%%s = conv2d %%%s, %%%s_weight {stride=[%d,%d], pad=[%d,%d]}\n", out, in, name, stride, stride, pad, pad)
	}
	bn := func(out, in, name string, c int) {
		for _, p := range []string{"weight", "bias", "running_mean", "running_var"} {
			fmt.Fprintf(&params, "  param %%%s_%s: f32[%d]\n", name, p, c)
		}
		fmt.Fprintf(&body, "  %%%s = batchnorm %%%s, %%%s_weight, %%%s_bias, %%%s_running_mean, %%%s_running_var%s\n",
			out, in, name, name, name, name, bnMode)
	}
	conv("c1", "x", "conv1", 3, 64, 7, 2, 3)
	bn("n1", "c1", "bn1", 64)
	body.WriteString("  %r1 = relu %n1\n  %p1 = maxpool2d %r1 {kernel=[3,3], stride=[2,2], pad=[1,1]}\n")
	x, cin := "p1", 64
	for stage, cout := range []int{64, 128, 256, 512} {
		for block := range 2 {
			stride := 1
			if stage > 0 && block == 0 {
				stride = 2
			}
			p := fmt.Sprintf("layer%d_%d", stage+1, block)
			conv(p+"_c1", x, p+"_conv1", cin, cout, 3, stride, 1)
			bn(p+"_n1", p+"_c1", p+"_bn1", cout)
			fmt.Fprintf(&body, "  %%%s_r1 = relu %%%s_n1\n", p, p)
			conv(p+"_c2", p+"_r1", p+"_conv2", cout, cout, 3, 1, 1)
			bn(p+"_n2", p+"_c2", p+"_bn2", cout)
			skip := x
			if stride != 1 || cin != cout {
				conv(p+"_dc", x, p+"_downsample_0", cin, cout, 1, stride, 0)
				bn(p+"_dn", p+"_dc", p+"_downsample_1", cout)
				skip = p + "_dn"
			}
			fmt.Fprintf(&body, "  %%%s_s = add %%%s_n2, %%%s\n  %%%s_out = relu %%%s_s\n", p, p, skip, p, p)
			x, cin = p+"_out", cout
		}
	}
	params.WriteString("  param %fc_weight: f32[512,1000]\n  param %fc_bias: f32[1000]\n")
	fmt.Fprintf(&body, "  %%gap = mean %%%s {axes=[2,3]}\n  %%z = matmul %%gap, %%fc_weight\n", x)
	b.WriteString(params.String())
	b.WriteString(body.String())
	if training {
		b.WriteString("  %zb = add %z, %fc_bias" + lossLines)
	} else {
		b.WriteString("  %y = add %z, %fc_bias\n  output %y\n}\n")
	}
	return b.String()
}

// mlpLogitsSource is the MLP 784-1024-1024-10 of the benchmarks with its
// logits as the output %y (PyTorch's models end there too).
var mlpLogitsSource = strings.Replace(mlpSource, "  %y = softmax %z3 {axis=1}\n  output %y\n", "  %y = add %h3, %b3\n  output %y\n", 1)

// proofTiming is one measured operation: the first run (which compiles)
// and the mean of the timed ones.
type proofTiming struct {
	FirstMS float64 `json:"first_ms"`
	MS      float64 `json:"ms"`
	Runs    int     `json:"runs"`
	PerSec  float64 `json:"images_per_s"`
}

// proofMode is one model in one math mode (fp32 or tf32).
type proofMode struct {
	TF32    bool         `json:"tf32"`
	Forward *proofTiming `json:"forward,omitempty"`
	Train   *proofTiming `json:"train_step,omitempty"`
	Loss    *float64     `json:"loss,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// proofModelReport is one model of ours.json.
type proofModelReport struct {
	Batch int                   `json:"batch"`
	Input []int                 `json:"input_shape"`
	Modes map[string]*proofMode `json:"modes"`
}

// proofReport is ours.json: what the GPU side measured.
type proofReport struct {
	GPU    string                       `json:"gpu"`
	LR     float64                      `json:"lr"`
	Models map[string]*proofModelReport `json:"models"`
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: expected a positive integer", name, v)
	}
	return n
}

// TestProof is the GPU side of .ci/gpu-proof's comparison with PyTorch.
// With MULTIGPU_PROOF_DIR set, it runs the MLP 784-1024-1024-10 and
// ResNet-18 (resnet18Source) on GPU 0, with TF32 off and on: the forward
// pass, and one training step (SGD at proofLR on the mean softmax
// cross-entropy, batchnorm on the batch's statistics) from the same
// weights. Into the directory it writes MODEL_weights.npz and
// MODEL_inputs.npz (what the PyTorch side loads), MODE_MODEL_forward.npy
// and MODE_MODEL_trained.npz (what it computed), and ours.json (timings
// and losses), rewritten after every measurement so that a run cut short
// keeps what finished. It logs each measurement as it goes.
func TestProof(t *testing.T) {
	dir := os.Getenv(envProofDir)
	if dir == "" {
		t.Skipf("the PyTorch comparison's GPU side runs when %s names a directory (.ci/gpu-proof sets it)", envProofDir)
	}
	gpus(t)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	iters := envInt(t, envProofIters, 10)
	seconds := float64(envInt(t, envProofSeconds, 5))
	models := []string{"mlp", "resnet18"}
	if v := os.Getenv(envProofModels); v != "" {
		models = strings.Split(v, ",")
	}
	info, err := cuda.Discover()
	if err != nil {
		t.Fatal(err)
	}
	report := &proofReport{GPU: fmt.Sprintf("%s (sm_%d%d)", info[0].Name, info[0].Major, info[0].Minor), LR: proofLR,
		Models: map[string]*proofModelReport{}}
	save := func() {
		data, err := json.MarshalIndent(report, "", "  ")
		if err == nil {
			err = tensorio.AtomicWrite(filepath.Join(dir, "ours.json"), func(w io.Writer) error { _, err := w.Write(data); return err })
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range models {
		var fwdSrc, trainSrc string
		var batch int
		switch name {
		case "mlp":
			fwdSrc, trainSrc, batch = mlpLogitsSource, strings.Replace(mlpTrainSource, "graph mlp_train", "graph mlp", 1), envInt(t, envMLPBatch, 4096)
		case "resnet18":
			size := envInt(t, envResNetSize, 224)
			fwdSrc, trainSrc, batch = resnet18Source(size, false), resnet18Source(size, true), envInt(t, envResNetBatch, 64)
		default:
			t.Fatalf("%s: unknown model %q: expected mlp or resnet18", envProofModels, name)
		}
		fwd, err := graph.Parse(name+".graph", []byte(fwdSrc))
		if err != nil {
			t.Fatal(err)
		}
		tg, err := graph.Parse(name+"_train.graph", []byte(trainSrc))
		if err != nil {
			t.Fatal(err)
		}
		params := runtime.RandomParams(fwd, 1)
		in, err := proofInputs(tg, batch)
		if err != nil {
			t.Fatal(err)
		}
		if err := tensorio.WriteArchive(filepath.Join(dir, name+"_weights.npz"), params); err != nil {
			t.Fatal(err)
		}
		if err := tensorio.WriteArchive(filepath.Join(dir, name+"_inputs.npz"), in); err != nil {
			t.Fatal(err)
		}
		mr := &proofModelReport{Batch: batch, Input: host.Shape(in["x"]), Modes: map[string]*proofMode{}}
		report.Models[name] = mr
		for _, mode := range []string{"fp32", "tf32"} {
			m := &proofMode{TF32: mode == "tf32"}
			mr.Modes[mode] = m
			if err := proofRun(t, name, mode, fwd, tg, params, in, iters, seconds, dir, m, save); err != nil {
				m.Error = err.Error()
				t.Errorf("%s %s: %v", name, mode, err)
			}
			save()
		}
	}
}

// proofInputs returns seeded inputs of the training graph g at batch:
// %x uniform in [-1, 1), and %t one-hot, sample i of class 7i+3 modulo
// the classes.
func proofInputs(g *graph.Graph, batch int) (map[string]*tensor.Dense, error) {
	in, err := runtime.RandomInputs(g, int64(batch), 1)
	if err != nil {
		return nil, err
	}
	shape := host.Shape(in["t"])
	classes := shape[1]
	t := make([]float32, batch*classes)
	for i := range batch {
		t[i*classes+(7*i+3)%classes] = 1
	}
	in["t"] = host.New(shape, t)
	return in, nil
}

// proofRun measures one model in one math mode on a GPU 0 opened for it,
// calling save after each measurement.
func proofRun(t *testing.T, name, mode string, fwd, tg *graph.Graph, params, in map[string]*tensor.Dense,
	iters int, seconds float64, dir string, m *proofMode, save func()) error {
	tf32 := cuda.TF32Off
	if m.TF32 {
		tf32 = cuda.TF32On
	}
	g, err := cuda.OpenWith(0, cuda.Options{TF32: tf32})
	if err != nil {
		return err
	}
	defer g.Close()
	devices := func(graph.Device) (backend.Device, error) { return g.Device(graph.GPUDevice(0)) }
	batch := host.Shape(in["x"])[0]
	// measure times run's first call (which compiles), calls first, then
	// times up to iters more calls within seconds (at least one).
	measure := func(run, first func() error) (*proofTiming, error) {
		start := time.Now()
		if err := run(); err != nil {
			return nil, err
		}
		tm := &proofTiming{FirstMS: ms(time.Since(start))}
		if err := first(); err != nil {
			return nil, err
		}
		start = time.Now()
		for tm.Runs < iters && (tm.Runs == 0 || time.Since(start).Seconds() < seconds) {
			if err := run(); err != nil {
				return nil, err
			}
			tm.Runs++
		}
		tm.MS = ms(time.Since(start)) / float64(tm.Runs)
		tm.PerSec = float64(batch) / (tm.MS / 1000)
		return tm, nil
	}

	e, err := runtime.New(fwd, runtime.Options{Devices: devices})
	if err != nil {
		return err
	}
	if err := e.SetParams(params); err != nil {
		return err
	}
	x := map[string]*tensor.Dense{"x": in["x"]}
	var out map[string]*tensor.Dense
	run := func() error { out, err = e.Run(context.Background(), x); return err }
	write := func() error {
		return tensorio.WriteFileAtomic(filepath.Join(dir, mode+"_"+name+"_forward.npy"), out["y"])
	}
	if m.Forward, err = measure(run, write); err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	t.Logf("%s %s forward at batch %d: first run %.0f ms, then %.2f ms a run (%d runs), %.0f images/s",
		name, mode, batch, m.Forward.FirstMS, m.Forward.MS, m.Forward.Runs, m.Forward.PerSec)
	save()

	tr, err := train.New(tg, train.Config{Optimizer: train.Optimizer{Kind: train.SGD, LR: proofLR}, Runtime: runtime.Options{Devices: devices}})
	if err != nil {
		return err
	}
	if err := tr.SetWeights(params); err != nil {
		return err
	}
	var loss float64
	step := func() error { loss, err = tr.Step(context.Background(), in); return err }
	// The first step, from the saved weights, is the one compared.
	saveStep := func() error {
		first := loss
		m.Loss = &first
		return tensorio.WriteArchive(filepath.Join(dir, mode+"_"+name+"_trained.npz"), tr.Weights())
	}
	if m.Train, err = measure(step, saveStep); err != nil {
		return fmt.Errorf("training step: %w", err)
	}
	t.Logf("%s %s training step at batch %d: loss %.6g, first step %.0f ms, then %.2f ms a step (%d steps), %.0f images/s",
		name, mode, batch, *m.Loss, m.Train.FirstMS, m.Train.MS, m.Train.Runs, m.Train.PerSec)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
