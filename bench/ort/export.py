#!/usr/bin/python3
"""Export the models bench/ort compares: torchvision's ResNet-18 and
MobileNetV2 (random weights, eval mode), the MLP 784-1024-1024-10 of
runtime/bench_test.go and bert_256, the corpus's BERT-style encoder
(testdata/corpus/export.py's Bert) at realistic sizes (hidden 256, 4 heads,
4 layers, intermediate 1024, erf GELU, vocabulary 1000, sequence 128 fixed),
each with a dynamic batch axis, into DIR.

    /usr/bin/python3 bench/ort/export.py DIR
"""

import importlib.util
import os
import sys

import torch
import torch.nn as nn
import torchvision


def corpus_module():
    """testdata/corpus/export.py, for its Bert and randomize."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "corpus", "export.py")
    spec = importlib.util.spec_from_file_location("corpus_export", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/cpu-speed/models"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                        nn.Linear(1024, 10), nn.Softmax(dim=1))
    for name, m, shape in [("resnet18", torchvision.models.resnet18(), (2, 3, 224, 224)),
                           ("mobilenet_v2", torchvision.models.mobilenet_v2(), (2, 3, 224, 224)),
                           ("mlp", mlp, (2, 784))]:
        m.eval()
        torch.onnx.export(m, torch.randn(*shape), os.path.join(out, name + ".onnx"),
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=13)
        print(name)
    corpus = corpus_module()
    bert = corpus.Bert(vocab=1000, hidden=256, heads=4, inter=1024, layers=4, max_pos=128)
    corpus.randomize(bert, corpus.seed_of("bert_256"))
    bert.eval()
    ids = torch.randint(0, 1000, (2, 128), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 128, dtype=torch.int64)
    torch.onnx.export(bert, (ids, mask), os.path.join(out, "bert_256.onnx"),
                      input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state", "pooler_output"],
                      dynamic_axes={n: {0: "N"} for n in ["input_ids", "attention_mask", "last_hidden_state",
                                                          "pooler_output"]},
                      opset_version=14)
    print("bert_256")


if __name__ == "__main__":
    main()
