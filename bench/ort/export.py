#!/usr/bin/python3
"""Export the models bench/ort compares: torchvision's ResNet-18 and
MobileNetV2 (random weights, eval mode) and the MLP 784-1024-1024-10 of
runtime/bench_test.go, each with a dynamic batch axis, into DIR.

    /usr/bin/python3 bench/ort/export.py DIR
"""

import os
import sys

import torch
import torch.nn as nn
import torchvision


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


if __name__ == "__main__":
    main()
