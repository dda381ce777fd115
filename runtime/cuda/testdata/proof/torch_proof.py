#!/usr/bin/env python3
"""The PyTorch side of .ci/gpu-proof's comparison.

TestProof (runtime/cuda/proof_test.go) runs the MLP 784-1024-1024-10 and
ResNet-18 on the GPU with multigpu's CUDA backend and leaves in DIR, per
model, the weights and inputs it used (MODEL_weights.npz,
MODEL_inputs.npz), and per math mode (fp32, tf32) its forward output
(MODE_MODEL_forward.npy), the weights after one SGD step
(MODE_MODEL_trained.npz) and its timings and losses (ours.json). This
script runs the same models at the same batch with PyTorch on the same
device, from the same weights, in the same math modes, times them the same
way, compares the outputs, losses and trained weights, and writes
DIR/torch.json after every measurement, printing progress as it goes.

ResNet-18 is written out here (resnet18 below, torchvision's layout and
state-dict names), so torchvision is not needed; where it is installed,
its resnet18 is loaded with the same weights and checked against this one.

Usage: torch_proof.py DIR [--device cuda|cpu] [--iters N] [--seconds S]
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Tolerances of the comparison, on each element: |ours - torch| <=
# REL * |torch| + SCALE * max|torch|. In fp32 both sides sum products in
# different orders (cuBLAS, cuDNN); in TF32 both round the products'
# inputs to 10-bit mantissas, which moves each result by up to about 1e-3
# of the sum of its products' magnitudes (runtime/cuda/tf32.go); the TF32
# bounds are twice the backend's own TF32 tolerance, since both sides
# round.
TOLERANCE = {"fp32": (1e-3, 1e-4), "tf32": (2e-2, 4e-3)}


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3x3 convolutions with batchnorm, a
    skip path (a strided 1x1 convolution and batchnorm where the shape
    changes)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(y + skip)


class ResNet18(nn.Module):
    """ResNet-18 as torchvision builds it, with its state-dict names."""

    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, cout in enumerate([64, 128, 256, 512]):
            stride = 1 if i == 0 else 2
            setattr(self, "layer%d" % (i + 1), nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class MLP(nn.Module):
    """The MLP 784-1024-1024-10; multigpu's params %w1..%w3 are the
    transposes of the Linear weights."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(784, 1024), nn.Linear(1024, 1024), nn.Linear(1024, 10)

    def forward(self, x):
        return self.l3(F.relu(self.l2(F.relu(self.l1(x)))))


# MLP's state-dict names and multigpu's, with whether to transpose.
MLP_NAMES = {"l1.weight": ("w1", True), "l1.bias": ("b1", False), "l2.weight": ("w2", True),
             "l2.bias": ("b2", False), "l3.weight": ("w3", True), "l3.bias": ("b3", False)}


def ours_name(model, name):
    """Returns multigpu's param name for a state-dict entry, and whether
    the array is the transpose of the torch tensor."""
    if model == "mlp":
        return MLP_NAMES[name]
    return name.replace(".", "_"), name == "fc.weight"


def load(module, model, arrays):
    """Sets module's parameters and batchnorm statistics from multigpu's
    arrays."""
    state = {}
    for name, t in module.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = t
            continue
        key, transpose = ours_name(model, name)
        a = arrays[key]
        state[name] = torch.from_numpy(np.ascontiguousarray(a.T if transpose else a))
    module.load_state_dict(state)


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def compare(ours, ref, mode):
    """Compares ours with torch's ref: the largest difference, the largest
    magnitude of ref, and whether every element is within TOLERANCE."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    if ours.shape != ref.shape:
        return {"ok": False, "error": "shape %s, torch's %s" % (list(ours.shape), list(ref.shape))}
    rel, scale = TOLERANCE[mode]
    d = np.abs(ours - ref)
    top = float(np.max(np.abs(ref))) if ref.size else 0.0
    ok = bool(np.all(d <= rel * np.abs(ref) + scale * top)) and bool(np.all(np.isfinite(ours)))
    worst = float(np.max(d)) if d.size else 0.0
    return {"ok": ok, "max_diff": worst, "max_ref": top, "normalized": worst / top if top else worst}


def timed(fn, sync, iters, seconds, batch):
    """Times fn as TestProof does: the first call, then up to iters calls
    within seconds (at least one)."""
    start = time.perf_counter()
    out = fn()
    sync()
    first = (time.perf_counter() - start) * 1000
    runs, start = 0, time.perf_counter()
    while runs < iters and (runs == 0 or time.perf_counter() - start < seconds):
        fn()
        sync()
        runs += 1
    ms = (time.perf_counter() - start) * 1000 / runs
    return out, {"first_ms": first, "ms": ms, "runs": runs, "images_per_s": batch / (ms / 1000)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with open(os.path.join(args.dir, "ours.json")) as f:
        ours = json.load(f)
    try:
        import torchvision  # noqa: F401

        tv = torchvision.__version__
    except ImportError:
        tv = None
    report = {"torch": torch.__version__, "torchvision": tv, "device": str(dev),
              "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "models": {}}
    path = os.path.join(args.dir, "torch.json")

    def save():
        with open(path + ".tmp", "w") as f:
            json.dump(report, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)

    def say(msg):
        print("torch_proof: " + msg, flush=True)

    say("torch %s on %s (%s), torchvision %s" % (torch.__version__, dev, report["gpu"], tv or "missing"))
    failed = False
    # On the CPU torch has no TF32: there its TF32 runs are f32, and
    # their comparisons are reported but not counted.
    counted = {"fp32": True, "tf32": dev.type == "cuda"}
    report["tf32_counted"] = counted["tf32"]
    for model, mine in ours["models"].items():
        arrays = dict(np.load(os.path.join(args.dir, model + "_weights.npz")))
        inputs = np.load(os.path.join(args.dir, model + "_inputs.npz"))
        x = torch.from_numpy(inputs["x"]).to(dev)
        t = torch.from_numpy(inputs["t"]).to(dev)
        batch = x.shape[0]
        net = (MLP() if model == "mlp" else ResNet18()).to(dev)
        rep = {"batch": batch, "modes": {}}
        report["models"][model] = rep
        if model == "resnet18" and tv is not None:
            # The hand-written ResNet-18 is torchvision's.
            ref = torchvision.models.resnet18().to(dev)
            load(ref, model, arrays)
            load(net, model, arrays)
            set_tf32(False)
            net.eval(), ref.eval()
            with torch.no_grad():
                c = compare(net(x).cpu().numpy(), ref(x).cpu().numpy(), "fp32")
            rep["torchvision_resnet18"] = c
            say("resnet18: the hand-written model against torchvision's: max difference %.3g (%s)"
                % (c.get("max_diff", float("nan")), "same" if c["ok"] else "DIFFERENT"))
            failed |= not c["ok"]
            del ref
        for mode in ("fp32", "tf32"):
            if mode not in mine["modes"]:
                continue
            set_tf32(mode == "tf32")
            m = {}
            rep["modes"][mode] = m
            load(net, model, arrays)
            net.eval()
            with torch.no_grad():
                y, m["forward"] = timed(lambda: net(x), sync, args.iters, args.seconds, batch)
            fwd = os.path.join(args.dir, "%s_%s_forward.npy" % (mode, model))
            if os.path.exists(fwd):
                m["compare_forward"] = compare(np.load(fwd), y.float().cpu().numpy(), mode)
                failed |= counted[mode] and not m["compare_forward"]["ok"]
            say("%s %s forward at batch %d: %.2f ms a run (%d runs), %.0f images/s; ours %s"
                % (model, mode, batch, m["forward"]["ms"], m["forward"]["runs"], m["forward"]["images_per_s"],
                   describe(m.get("compare_forward"))))
            save()

            load(net, model, arrays)
            net.train()
            params = [p for p in net.parameters()]
            state = {}

            def step():
                for p in params:
                    p.grad = None
                logits = net(x)
                loss = -(t * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
                loss.backward()
                with torch.no_grad():
                    for p in params:
                        p -= ours["lr"] * p.grad
                return loss

            def first():
                loss = step()
                state["loss"] = float(loss)
                state["weights"] = {k: v.detach().float().cpu().numpy().copy() for k, v in net.state_dict().items()}
                return loss

            start = time.perf_counter()
            first()
            sync()
            first_ms = (time.perf_counter() - start) * 1000
            _, m["train_step"] = timed(step, sync, args.iters, args.seconds, batch)
            m["train_step"]["first_ms"] = first_ms
            m["loss"] = state["loss"]
            trained = os.path.join(args.dir, "%s_%s_trained.npz" % (mode, model))
            if os.path.exists(trained) and mine["modes"][mode].get("loss") is not None:
                m["compare_loss"] = compare([mine["modes"][mode]["loss"]], [state["loss"]], mode)
                got = np.load(trained)
                worst, stats = None, None
                for name, ref in state["weights"].items():
                    if name.endswith("num_batches_tracked"):
                        continue
                    key, transpose = ours_name(model, name)
                    a = got[key].T if transpose else got[key]
                    c = compare(a, ref, mode)
                    c["param"] = key
                    if name.endswith("running_mean") or name.endswith("running_var"):
                        if stats is None or c["normalized"] > stats["normalized"]:
                            stats = c
                        continue
                    if worst is None or (worst["ok"] and not c["ok"]) or (c["ok"] == worst["ok"] and c["normalized"] > worst["normalized"]):
                        worst = c
                m["compare_trained"] = worst
                m["compare_running_stats"] = stats
                failed |= counted[mode] and (not m["compare_loss"]["ok"] or not worst["ok"])
            say("%s %s training step at batch %d: loss %.6g (ours %s), %.2f ms a step (%d steps), %.0f images/s; trained weights: %s"
                % (model, mode, batch, state["loss"], fmt(mine["modes"][mode].get("loss")), m["train_step"]["ms"],
                   m["train_step"]["runs"], m["train_step"]["images_per_s"], describe(m.get("compare_trained"))))
            save()
    report["ok"] = not failed
    save()
    if not counted["tf32"]:
        say("torch runs on the CPU, which has no TF32: the TF32 comparisons are not counted")
    say("ok: every comparison within its tolerance" if not failed else "FAIL: a comparison is outside its tolerance (torch.json)")
    return 1 if failed else 0


def fmt(v):
    return "none" if v is None else "%.6g" % v


def describe(c):
    if c is None:
        return "not compared"
    if "error" in c:
        return c["error"]
    where = " in %" + c["param"] if "param" in c else ""
    return "max difference %.3g of %.3g%s (%.2g): %s" % (c["max_diff"], c["max_ref"], where, c["normalized"], "ok" if c["ok"] else "OUTSIDE TOLERANCE")


if __name__ == "__main__":
    sys.exit(main())
