// Package corpus tests the importer, the replicate pass and the CPU runtime
// on the models PyTorch exports: the corpus under testdata/corpus, written
// by testdata/corpus/export.py with PyTorch's own exporter (transformers,
// recurrent nets, segmentation and audio models, convnets, fixed-batch
// exports) together with PyTorch's outputs for inputs at batch 1 and 7.
//
// For every model of the manifest (testdata/corpus/manifest.json) the test
// imports the model with its --dim bindings and --batch-axis marks,
// rewrites it for 2 and 3 GPUs, runs the original and the rewritten graphs
// at batch 1 and 7, compares the original's outputs with PyTorch's and the
// rewritten graph's with the original's, bit for bit, and reports the
// share of the FLOPs the rewrite puts on the replicas. A model fails the
// test only when the manifest expects it to pass ("expect": "pass"); the
// others ("todo: REASON") are reported.
//
//	go test ./onnx/corpus                        # the whole corpus
//	go test ./onnx/corpus -short                 # one model per family, 2 GPUs
//	go test ./onnx/corpus -table=/tmp/corpus.md  # write the README table
//	go test ./onnx/corpus -v -table=-            # print it (with the log)
//
// Besides its tests, the package holds the manifest's loader (Manifest,
// Entry), which the GPU backend's tests use to run the corpus on the host
// emulation (runtime/gpu).
package corpus
