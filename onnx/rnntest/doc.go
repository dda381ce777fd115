// Package rnntest tests the importer's LSTM and GRU (onnx/rnn.go) on the
// models under onnx/testdata/rnn, which onnx/testdata/rnn/export.py writes
// with PyTorch's exporter (nn.LSTM, nn.GRU) and onnx.helper, together with
// the expected outputs. For each model the test imports it, runs it on the
// CPU backend and compares its outputs with the reference (1e-5 absolute
// plus 1e-4 relative), checks that the batch analysis keeps every
// batch-carrying node on the replicas, and runs the rewrite for 2 and 3
// GPUs, which must agree with the original bit for bit. It is a package of
// its own so that the importer's tests do not depend on the runtime.
//
// The package holds no code besides its tests.
package rnntest
