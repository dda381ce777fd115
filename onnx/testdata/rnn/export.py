#!/usr/bin/python3
"""Export the recurrent test models of onnx/rnn_test.go.

Run with Debian's python3-torch 1.13 (and python3-onnx, python3-numpy):

    /usr/bin/python3 onnx/testdata/rnn/export.py

Each model gets a directory NAME/ beside this script holding model.onnx,
its inputs input_K.npy and expected outputs output_K.npy (positional, in
the order of the ONNX graph's inputs and outputs), and meta.json, which
gives the batch axis of every input (the importer's Options.BatchAxes) and
the sizes of named dimensions (Options.DimParams).

Models exported by PyTorch (nn.LSTM, nn.GRU, dynamic batch) have outputs
computed by PyTorch. Where the model has no initial state, PyTorch's
export computes zeros of the batch's size (Shape, Gather, Concat,
ConstantOfShape); such a model also gets pruned.onnx, the same model with
those initial states absent (ONNX's zeros), so that both ways of giving
zero initial states are tested.

Two models PyTorch cannot export are written with onnx.helper, their
outputs computed by numpy from ONNX's equations: a GRU with
linear_before_reset=0 in the reverse direction, and a bidirectional LSTM
with layout=1. The numpy implementation is first checked against PyTorch on
the exported models.
"""

import json
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SEQ, BATCH = 5, 3


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def f64(a):
    return np.asarray(a, dtype=np.float64)


def onnx_lstm(x, w, r, b, h0, c0):
    """ONNX LSTM (layout 0, gates i, o, f, c) in float64; returns Y, Y_h, Y_c."""
    seq = x.shape[0]
    dirs, g4, _ = r.shape
    ys, hs, cs = [], [], []
    for d in range(dirs):
        h, c = h0[d], c0[d]
        y = [None] * seq
        steps = range(seq) if d == 0 else range(seq - 1, -1, -1)
        for t in steps:
            g = x[t] @ w[d].T + h @ r[d].T + b[d, :g4] + b[d, g4:]
            i, o, f, cc = np.split(g, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(cc)
            h = sigmoid(o) * np.tanh(c)
            y[t] = h
        ys.append(np.stack(y))
        hs.append(h)
        cs.append(c)
    return np.stack(ys, axis=1), np.stack(hs), np.stack(cs)


def onnx_gru(x, w, r, b, h0, linear_before_reset, reverse=False):
    """ONNX GRU (layout 0, gates z, r, h) in float64; returns Y, Y_h."""
    seq = x.shape[0]
    dirs, g3, hid = r.shape
    ys, hs = [], []
    for d in range(dirs):
        h = h0[d]
        y = [None] * seq
        backward = reverse or d == 1
        steps = range(seq - 1, -1, -1) if backward else range(seq)
        wb, rb = b[d, :g3], b[d, g3:]
        for t in steps:
            xw = x[t] @ w[d].T + wb
            hr = h @ r[d, : 2 * hid].T + rb[: 2 * hid]
            z = sigmoid(xw[:, :hid] + hr[:, :hid])
            rr = sigmoid(xw[:, hid : 2 * hid] + hr[:, hid:])
            rh, rbh = r[d, 2 * hid :], rb[2 * hid :]
            if linear_before_reset:
                n = np.tanh(xw[:, 2 * hid :] + rr * (h @ rh.T + rbh))
            else:
                n = np.tanh(xw[:, 2 * hid :] + (rr * h) @ rh.T + rbh)
            h = (1 - z) * n + z * h
            y[t] = h
        ys.append(np.stack(y))
        hs.append(h)
    return np.stack(ys, axis=1), np.stack(hs)


def save(name, model_bytes, inputs, outputs, batch_axes, pruned=None, dims=None):
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model_bytes)
    if pruned is not None:
        with open(os.path.join(d, "pruned.onnx"), "wb") as f:
            f.write(pruned)
    for k, a in enumerate(inputs):
        np.save(os.path.join(d, "input_%d.npy" % k), np.ascontiguousarray(a, dtype=np.float32))
    for k, a in enumerate(outputs):
        np.save(os.path.join(d, "output_%d.npy" % k), np.ascontiguousarray(a, dtype=np.float32))
    with open(os.path.join(d, "meta.json"), "w") as f:
        meta = {"batch_axes": batch_axes}
        if dims:
            meta["dims"] = dims
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def prune_initial_states(model_bytes):
    """Returns the model with the initial states of its RNN nodes made
    absent, and the nodes that only computed them removed. Only for models
    exported without initial states, whose states are zeros."""
    m = onnx.load_from_string(model_bytes)
    g = m.graph
    for n in g.node:
        if n.op_type in ("LSTM", "GRU"):
            for k in range(5, len(n.input)):
                n.input[k] = ""
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        keep = [n for n in g.node if any(o in used for o in n.output)]
        if len(keep) == len(g.node):
            break
        del g.node[:]
        g.node.extend(keep)
    onnx.checker.check_model(m)
    return m.SerializeToString()


def export_torch(name, mod, with_state, dynamic_seq=False):
    """Exports an nn.LSTM or nn.GRU with a dynamic batch (and a dynamic
    sequence length named seq, bound by meta.json's dims), checks numpy's
    ONNX equations against it, and saves it."""
    mod.eval()
    lstm = isinstance(mod, torch.nn.LSTM)
    dirs = 2 if mod.bidirectional else 1
    states = mod.num_layers * dirs
    if mod.batch_first:
        x = torch.randn(BATCH, SEQ, mod.input_size)
    else:
        x = torch.randn(SEQ, BATCH, mod.input_size)
    args = [x]
    inputs = [x]
    names = ["x"]
    batch_axes = {"x": 0 if mod.batch_first else 1}
    if with_state:
        h0 = torch.randn(states, BATCH, mod.hidden_size)
        names.append("h0")
        batch_axes["h0"] = 1
        inputs.append(h0)
        if lstm:
            c0 = torch.randn(states, BATCH, mod.hidden_size)
            args.append((h0, c0))
            names.append("c0")
            batch_axes["c0"] = 1
            inputs.append(c0)
        else:
            args.append(h0)
    outs = ["y", "hn"] + (["cn"] if lstm else [])
    dyn = {k: {ax: "batch"} for k, ax in batch_axes.items()}
    for o in outs:
        dyn[o] = {0 if (o == "y" and mod.batch_first) else 1: "batch"}
    dims = None
    if dynamic_seq:
        assert not mod.batch_first
        dims = {"seq": SEQ}
        dyn["x"][0] = "seq"
        dyn["y"][0] = "seq"
    path = os.path.join("/tmp", "export-rnn-%s-%d.onnx" % (name, os.getpid()))
    torch.onnx.export(mod, tuple(args), path, input_names=names, output_names=outs,
                      dynamic_axes=dyn, opset_version=14)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    with torch.no_grad():
        got = mod(*args)
    if lstm:
        y, (hn, cn) = got
        ref = [y, hn, cn]
    else:
        y, hn = got
        ref = [y, hn]
    check_numpy(mod, args, ref)
    save(name, data, [a.numpy() for a in inputs], [a.numpy() for a in ref], batch_axes,
         pruned=None if with_state else prune_initial_states(data), dims=dims)


def torch_weights(mod, layer, dirs, gates):
    """Returns a layer's W, R and B in ONNX's gate order."""
    if gates == 4:  # PyTorch i, f, g, o; ONNX i, o, f, c
        perm = [0, 3, 1, 2]
    else:  # PyTorch r, z, n; ONNX z, r, h
        perm = [1, 0, 2]

    def reorder(a):
        parts = np.split(a, gates, axis=0)
        return np.concatenate([parts[p] for p in perm], axis=0)

    ws, rs, bs = [], [], []
    for d in range(dirs):
        sfx = "_l%d%s" % (layer, "_reverse" if d == 1 else "")

        def p(n):
            return getattr(mod, n + sfx).detach().double().numpy()

        ws.append(reorder(p("weight_ih")))
        rs.append(reorder(p("weight_hh")))
        bs.append(np.concatenate([reorder(p("bias_ih")), reorder(p("bias_hh"))]))
    return np.stack(ws), np.stack(rs), np.stack(bs)


def check_numpy(mod, args, ref):
    """Checks the numpy ONNX equations against PyTorch's outputs."""
    lstm = isinstance(mod, torch.nn.LSTM)
    dirs = 2 if mod.bidirectional else 1
    x = args[0].double().numpy()
    if mod.batch_first:
        x = x.transpose(1, 0, 2)
    batch = x.shape[1]
    zeros = np.zeros((mod.num_layers * dirs, batch, mod.hidden_size))
    if len(args) > 1:
        h0 = (args[1][0] if lstm else args[1]).double().numpy()
        c0 = args[1][1].double().numpy() if lstm else None
    else:
        h0, c0 = zeros, zeros
    hs, cs = [], []
    for layer in range(mod.num_layers):
        w, r, b = torch_weights(mod, layer, dirs, 4 if lstm else 3)
        s = slice(layer * dirs, (layer + 1) * dirs)
        if lstm:
            y, hn, cn = onnx_lstm(x, w, r, b, h0[s], c0[s])
            cs.append(cn)
        else:
            y, hn = onnx_gru(x, w, r, b, h0[s], linear_before_reset=1)
        hs.append(hn)
        x = y.transpose(0, 2, 1, 3).reshape(y.shape[0], batch, -1)
    if mod.batch_first:
        x = x.transpose(1, 0, 2)
    mine = [x, np.concatenate(hs)] + ([np.concatenate(cs)] if lstm else [])
    for a, want in zip(mine, ref):
        err = np.abs(a - want.double().numpy()).max()
        assert err < 1e-5, "numpy's %s differs from PyTorch's by %g" % (type(mod).__name__, err)


def export_gru_lbr0(rng):
    """A GRU with linear_before_reset=0, direction reverse, an initial state
    and a bias, hidden 8, input 4."""
    hid, inp = 8, 4
    w = rng.standard_normal((1, 3 * hid, inp)).astype(np.float32) * 0.5
    r = rng.standard_normal((1, 3 * hid, hid)).astype(np.float32) * 0.5
    b = rng.standard_normal((1, 6 * hid)).astype(np.float32) * 0.5
    x = rng.standard_normal((SEQ, BATCH, inp)).astype(np.float32)
    h0 = rng.standard_normal((1, BATCH, hid)).astype(np.float32)
    node = helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["y", "hn"], name="gru",
                            hidden_size=hid, direction="reverse", linear_before_reset=0)
    g = helper.make_graph(
        [node], "gru_lbr0",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [SEQ, "batch", inp]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "batch", hid])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [SEQ, 1, "batch", hid]),
         helper.make_tensor_value_info("hn", TensorProto.FLOAT, [1, "batch", hid])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"), numpy_helper.from_array(b, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], producer_name="export.py")
    onnx.checker.check_model(m)
    y, hn = onnx_gru(f64(x), f64(w), f64(r), f64(b), f64(h0), linear_before_reset=0, reverse=True)
    save("gru_lbr0_reverse", m.SerializeToString(), [x, h0], [y, hn], {"x": 1, "h0": 1})


def export_lstm_layout1(rng):
    """A bidirectional LSTM with layout=1 (batch first), initial states and
    no bias, hidden 8, input 6."""
    hid, inp = 8, 6
    w = rng.standard_normal((2, 4 * hid, inp)).astype(np.float32) * 0.5
    r = rng.standard_normal((2, 4 * hid, hid)).astype(np.float32) * 0.5
    x = rng.standard_normal((BATCH, SEQ, inp)).astype(np.float32)
    h0 = rng.standard_normal((BATCH, 2, hid)).astype(np.float32)
    c0 = rng.standard_normal((BATCH, 2, hid)).astype(np.float32)
    node = helper.make_node("LSTM", ["x", "W", "R", "", "", "h0", "c0"], ["y", "hn", "cn"], name="lstm",
                            hidden_size=hid, direction="bidirectional", layout=1)
    g = helper.make_graph(
        [node], "lstm_layout1",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", SEQ, inp]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["batch", 2, hid]),
         helper.make_tensor_value_info("c0", TensorProto.FLOAT, ["batch", 2, hid])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", SEQ, 2, hid]),
         helper.make_tensor_value_info("hn", TensorProto.FLOAT, ["batch", 2, hid]),
         helper.make_tensor_value_info("cn", TensorProto.FLOAT, ["batch", 2, hid])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], producer_name="export.py")
    onnx.checker.check_model(m)
    y, hn, cn = onnx_lstm(f64(x).transpose(1, 0, 2), f64(w), f64(r), np.zeros((2, 8 * hid)),
                          f64(h0).transpose(1, 0, 2), f64(c0).transpose(1, 0, 2))
    save("lstm_layout1_bidirectional", m.SerializeToString(), [x, h0, c0],
         [y.transpose(2, 0, 1, 3), hn.transpose(1, 0, 2), cn.transpose(1, 0, 2)], {"x": 0, "h0": 0, "c0": 0})


def main():
    torch.manual_seed(0)
    export_torch("lstm1", torch.nn.LSTM(4, 8), with_state=False)
    export_torch("lstm2_bidirectional", torch.nn.LSTM(6, 8, num_layers=2, bidirectional=True), with_state=False,
                 dynamic_seq=True)
    export_torch("gru2", torch.nn.GRU(5, 12, num_layers=2), with_state=False)
    export_torch("gru_bidirectional_h0", torch.nn.GRU(4, 8, bidirectional=True), with_state=True)
    export_torch("lstm2_batch_first_h0", torch.nn.LSTM(4, 8, num_layers=2, batch_first=True), with_state=True)
    export_torch("gru_batch_first", torch.nn.GRU(4, 16, batch_first=True), with_state=False)
    rng = np.random.default_rng(0)
    export_gru_lbr0(rng)
    export_lstm_layout1(rng)


if __name__ == "__main__":
    main()
