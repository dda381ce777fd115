#!/usr/bin/python3
"""Export the corpus of small PyTorch models that onnx/corpus tests.

Run with Debian's python3-torch (1.13), python3-torchvision (0.14) and
python3-onnx:

    /usr/bin/python3 testdata/corpus/export.py            # every model
    /usr/bin/python3 testdata/corpus/export.py bert gru   # some of them

For every model it writes, under testdata/corpus/NAME/:

    model.onnx              torch.onnx.export with the exporter's defaults
                            (do_constant_folding=True), a dynamic batch axis
                            unless the model is a fixed-batch export
    bB.in.INPUT.npy         the inputs at batch B (1 and 7)
    bB.out.OUTPUT.npy       PyTorch's outputs for them (eval mode, no_grad)

and rewrites testdata/corpus/manifest.json, which describes each model:
its inputs (dtype, shape with the batch and named dimensions, integer
ranges), the --dim bindings, --value bindings (of scalar inputs that control
flow depends on) and --batch-axis marks the importer needs, the
tolerance, the dimensions the share of FLOPs on the replicas is measured
at (explain_dims, default dims) and the least share a passing model must
show (min_share), the ONNX op types the file holds, and "expect": "pass" or
"todo: REASON". The expect field is the one part of the manifest edited by
hand (the Go harness fails only for models that expect "pass"); rerunning
this script keeps it.

Weights are random with a fixed seed per model, so rerunning the script
gives the same numbers (the .onnx bytes can differ between PyTorch builds).
"""

import collections
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models import segmentation

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "manifest.json")
BATCHES = (1, 7)
# The batch of the example input a dynamic-batch model is traced with.
TRACE_BATCH = 2
ATOL, RTOL = 1e-5, 1e-4

MODELS = []


def model(name, family, **kw):
    """Registers a builder: it returns (module, inputs, outputs, extra)."""

    def register(build):
        MODELS.append(dict(name=name, family=family, build=build, **kw))
        return build

    return register


def seed_of(*parts):
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "little")


# Inputs are described by inp(): name, dtype, shape (ints, "N" for the
# batch, or a named dimension that the manifest binds with --dim), and for
# integer inputs the range [low, high) of the ids, or kind "mask" for a 0/1
# attention mask whose first sample keeps every position.
def inp(name, shape, dtype="float32", low=None, high=None, kind=None, value=None):
    return dict(name=name, shape=list(shape), dtype=dtype, low=low, high=high, kind=kind, value=value)


def make_input(spec, batch, dims, rng):
    shape = [batch if d == "N" else dims[d] if isinstance(d, str) else d for d in spec["shape"]]
    if spec["kind"] == "value":
        return np.array(spec["value"], dtype=spec["dtype"])
    if spec["kind"] == "mask":
        out = np.ones(shape, dtype=spec["dtype"])
        axis = spec["shape"].index("N")
        seq = out.shape[1 - axis] if out.ndim == 2 else out.shape[-1]
        for b in range(1, batch):
            keep = int(rng.integers(1, seq + 1))
            idx = [slice(None)] * out.ndim
            idx[axis] = b
            idx[-1] = slice(keep, None)
            out[tuple(idx)] = 0
        return out
    if spec["dtype"] in ("int64", "int32"):
        return rng.integers(spec["low"], spec["high"], size=shape).astype(spec["dtype"])
    if spec["dtype"] == "bool":
        return rng.random(shape) < 0.5
    return rng.standard_normal(shape).astype(spec["dtype"])


# ---------------------------------------------------------------- transformers


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, types=2):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(max_pos, hidden)
        self.token_type = nn.Embedding(types, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0))

    def forward(self, ids):
        s = ids.size(1)
        pos = self.position_ids[:, :s]
        types = torch.zeros_like(ids)
        x = self.word(ids) + self.position(pos) + self.token_type(types)
        return self.norm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads, self.head = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def split(self, x):
        shape = x.size()[:-1] + (self.heads, self.head)
        return x.view(shape).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head)
        probs = F.softmax(scores + mask, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.heads * self.head,))


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, inter):
        super().__init__()
        self.attn = BertSelfAttention(hidden, heads)
        self.attn_out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.inter = nn.Linear(hidden, inter)
        self.out = nn.Linear(inter, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, mask):
        x = self.norm1(x + self.attn_out(self.attn(x, mask)))
        return self.norm2(x + self.out(F.gelu(self.inter(x))))


class Bert(nn.Module):
    """A BERT-style encoder as Hugging Face writes it: token ids and an
    attention mask in, the last hidden states and the pooled output out."""

    def __init__(self, vocab=100, hidden=16, heads=4, inter=32, layers=2, max_pos=128):
        super().__init__()
        self.emb = BertEmbeddings(vocab, hidden, max_pos)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, inter) for _ in range(layers))
        self.pool = nn.Linear(hidden, hidden)

    def forward(self, ids, mask):
        ext = (1.0 - mask[:, None, None, :].to(torch.float32)) * -10000.0
        x = self.emb(ids)
        for layer in self.layers:
            x = layer(x, ext)
        return x, torch.tanh(self.pool(x[:, 0]))


BERT_INPUTS = [
    inp("input_ids", ["N", "sequence"], "int64", 0, 100),
    inp("attention_mask", ["N", "sequence"], "int64", kind="mask"),
]


@model("bert", "transformer", dims={"sequence": 16}, explain_dims={"sequence": 128}, min_share=0.95)
def build_bert():
    return Bert(), BERT_INPUTS, ["last_hidden_state", "pooler_output"], {}


@model("bert_opset17", "transformer", dims={"sequence": 16}, opset=17)
def build_bert17():
    return Bert(layers=1), BERT_INPUTS, ["last_hidden_state", "pooler_output"], {}


class Encoder(nn.Module):
    def __init__(self, batch_first, d=16, heads=4, ff=32, layers=2, norm_first=False):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.1, batch_first=batch_first, norm_first=norm_first)
        self.enc = nn.TransformerEncoder(layer, layers)

    def forward(self, x):
        return self.enc(x)


@model("encoder_batch_first", "transformer", dims={"sequence": 12}, explain_dims={"sequence": 128}, min_share=0.95)
def build_encoder_bf():
    return Encoder(True), [inp("src", ["N", "sequence", 16])], ["out"], {}


@model("encoder_seq_first", "transformer", dims={"sequence": 12}, explain_dims={"sequence": 128}, min_share=0.95)
def build_encoder_sf():
    return Encoder(False), [inp("src", ["sequence", "N", 16])], ["out"], {}


@model("encoder_norm_first_opset17", "transformer", opset=17)
def build_encoder_nf():
    return Encoder(True, layers=1, norm_first=True), [inp("src", ["N", 10, 16])], ["out"], {}


class NewGELU(nn.Module):
    """GELU's tanh approximation, written out as GPT-2 does (with pow)."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPTBlock(nn.Module):
    def __init__(self, d, heads, max_len, gelu):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.fc_out = nn.Linear(4 * d, d)
        self.gelu = gelu
        self.register_buffer("bias", torch.tril(torch.ones(max_len, max_len)).view(1, 1, max_len, max_len))

    def forward(self, x):
        b, t, c = x.size()
        q, k, v = self.attn(self.ln1(x)).split(c, dim=2)
        q = q.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        x = x + self.proj(y)
        return x + self.fc_out(self.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """A GPT-style decoder (nanoGPT): token and position embeddings, causal
    self-attention blocks, a tied language-model head."""

    def __init__(self, gelu, vocab=64, d=16, heads=4, layers=2, max_len=32):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(GPTBlock(d, heads, max_len, gelu) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, ids):
        t = ids.size(1)
        pos = torch.arange(0, t, dtype=torch.long, device=ids.device).unsqueeze(0)
        x = self.wte(ids) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))


GPT_INPUTS = [inp("input_ids", ["N", "sequence"], "int64", 0, 64)]


@model("gpt_erf", "transformer", dims={"sequence": 12})
def build_gpt_erf():
    return GPT(nn.GELU()), GPT_INPUTS, ["logits"], {}


@model("gpt_tanh", "transformer", dims={"sequence": 12})
def build_gpt_tanh():
    return GPT(NewGELU()), GPT_INPUTS, ["logits"], {}


@model("vit", "vision-transformer")
def build_vit():
    m = torchvision.models.VisionTransformer(
        image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10
    )
    return m, [inp("x", ["N", 3, 16, 16])], ["logits"], {}


@model("swin", "vision-transformer")
def build_swin():
    m = torchvision.models.SwinTransformer(
        patch_size=[2, 2], embed_dim=8, depths=[2, 1], num_heads=[2, 2], window_size=[4, 4], num_classes=10
    )
    return m, [inp("x", ["N", 3, 16, 16])], ["logits"], {}


class WindowAttention(nn.Module):
    """Swin-style shifted-window attention written out: roll, window
    partition, relative position bias gathered from a table by an index
    buffer, the shifted-window mask, reverse partition, roll back."""

    def __init__(self, dim=8, heads=2, window=4, shift=2, size=8):
        super().__init__()
        self.dim, self.heads, self.window, self.shift = dim, heads, window, shift
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.1)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("index", (rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]).flatten())
        img = torch.zeros(size, size)
        cnt = 0
        for h in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            for w in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                img[h, w] = cnt
                cnt += 1
        win = img.view(size // window, window, size // window, window).permute(0, 2, 1, 3).reshape(-1, window * window)
        mask = win.unsqueeze(1) - win.unsqueeze(2)
        self.register_buffer("mask", mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0))

    def forward(self, x):  # x: [N, H, W, C]
        b, h, w, c = x.shape
        ws, nh = self.window, self.heads
        x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        qkv = self.qkv(x).reshape(x.size(0), ws * ws, 3, nh, c // nh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (c // nh) ** -0.5) @ k.transpose(-2, -1)
        bias = self.table[self.index].view(ws * ws, ws * ws, nh).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        nw = self.mask.shape[0]
        attn = attn.view(-1, nw, nh, ws * ws, ws * ws) + self.mask.unsqueeze(1).unsqueeze(0)
        attn = F.softmax(attn.view(-1, nh, ws * ws, ws * ws), dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(-1, ws * ws, c)
        x = self.proj(x)
        x = x.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        return torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))


@model("window_attention", "vision-transformer")
def build_window_attention():
    return WindowAttention(), [inp("x", ["N", 8, 8, 8])], ["y"], {}


class EinsumAttention(nn.Module):
    """Attention written with torch.einsum, as MaxViT and many research
    models write it: heads split by a reshape, scores and values by einsum."""

    def __init__(self, d=16, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.scale = nn.Parameter(torch.randn(heads, 1, 1) * 0.1 + 1.0)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, d // self.heads) for t in (q, k, v))
        s = torch.einsum("bqhd,bkhd->bhqk", q, k) * self.scale
        p = s.softmax(dim=-1)
        o = torch.einsum("bhqk,bkhd->bqhd", p, v).reshape(b, n, d)
        g = torch.einsum("bnd,d->bn", o, self.out.bias)
        return self.out(o) + g.unsqueeze(-1)


@model("einsum_attention", "transformer")
def build_einsum_attention():
    return EinsumAttention(), [inp("x", ["N", 6, 16])], ["y"], {}


class Mixer(nn.Module):
    """An MLP-Mixer: patches, token-mixing and channel-mixing MLPs with
    LayerNorm (LayerNormalization at opset 17)."""

    def __init__(self, d=16, tokens=16, hidden=32, layers=2, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, d, 4, stride=4)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(
                nn.ModuleList(
                    [
                        nn.LayerNorm(d),
                        nn.Sequential(nn.Linear(tokens, hidden), nn.GELU(), nn.Linear(hidden, tokens)),
                        nn.LayerNorm(d),
                        nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d)),
                    ]
                )
            )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        for n1, tok, n2, ch in self.blocks:
            x = x + tok(n1(x).transpose(1, 2)).transpose(1, 2)
            x = x + ch(n2(x))
        return self.head(self.norm(x).mean(dim=1))


@model("mixer_opset17", "vision-transformer", opset=17)
def build_mixer():
    return Mixer(), [inp("x", ["N", 3, 16, 16])], ["logits"], {}


# ---------------------------------------------------------------- recurrent


class RNN(nn.Module):
    def __init__(self, cell, batch_first, bidirectional, layers, states):
        super().__init__()
        self.rnn = cell(16, 20, num_layers=layers, batch_first=batch_first, bidirectional=bidirectional)
        self.fc = nn.Linear(20 * (2 if bidirectional else 1), 8)
        self.states = states

    def forward(self, x):
        y, h = self.rnn(x)
        out = self.fc(y)
        if not self.states:
            return out
        if isinstance(h, tuple):
            return (out,) + h
        return out, h


@model("lstm", "recurrent", output_batch_axes={"y": 1, "h_n": 1, "c_n": 1})
def build_lstm():
    return RNN(nn.LSTM, False, False, 2, True), [inp("x", [10, "N", 16])], ["y", "h_n", "c_n"], {}


@model("gru_bidirectional", "recurrent", output_batch_axes={"y": 0, "h_n": 1})
def build_gru():
    return RNN(nn.GRU, True, True, 2, True), [inp("x", ["N", 10, 16])], ["y", "h_n"], {}


@model("lstm_bidirectional_seq", "recurrent", dims={"sequence": 9})
def build_lstm_bidir():
    return RNN(nn.LSTM, True, True, 1, False), [inp("x", ["N", "sequence", 16])], ["y"], {}


class TextClassifier(nn.Module):
    """Embedding, a GRU, the last state into a classifier."""

    def __init__(self, vocab=50):
        super().__init__()
        self.emb = nn.Embedding(vocab, 16)
        self.gru = nn.GRU(16, 24, batch_first=True)
        self.fc = nn.Linear(24, 4)

    def forward(self, ids):
        _, h = self.gru(self.emb(ids))
        return self.fc(h[-1])


@model("gru_text_classifier", "recurrent")
def build_text_gru():
    return TextClassifier(), [inp("input_ids", ["N", 12], "int64", 0, 50)], ["logits"], {}


# ---------------------------------------------------------------- segmentation


class TinyBackbone(nn.Module):
    """A stride-4 (or 8) convnet returning torchvision's feature dict."""

    def __init__(self, keys=("out",), widths=(8, 16, 24)):
        super().__init__()
        self.keys = keys
        c1, c2, c3 = widths
        self.stem = nn.Sequential(nn.Conv2d(3, c1, 3, stride=2, padding=1), nn.BatchNorm2d(c1), nn.ReLU())
        self.low = nn.Sequential(nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.BatchNorm2d(c2), nn.ReLU())
        self.high = nn.Sequential(nn.Conv2d(c2, c3, 3, stride=1, padding=2, dilation=2), nn.BatchNorm2d(c3), nn.ReLU())

    def forward(self, x):
        low = self.low(self.stem(x))
        high = self.high(low)
        if self.keys == ("out",):
            return collections.OrderedDict(out=high)
        return collections.OrderedDict(low=low, high=high)


class OutOnly(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


SEG_INPUT = [inp("x", ["N", 3, 16, 16])]


@model("fcn", "segmentation")
def build_fcn():
    m = segmentation.fcn.FCN(TinyBackbone(), segmentation.fcn.FCNHead(24, 3))
    return OutOnly(m), SEG_INPUT, ["out"], {}


@model("deeplabv3", "segmentation")
def build_deeplab():
    aspp = segmentation.deeplabv3.ASPP(24, [2, 3], out_channels=16)
    head = nn.Sequential(aspp, nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 3, 1))
    m = segmentation.deeplabv3.DeepLabV3(TinyBackbone(), head)
    return OutOnly(m), SEG_INPUT, ["out"], {}


@model("lraspp", "segmentation")
def build_lraspp():
    m = segmentation.lraspp.LRASPP(TinyBackbone(keys=("low", "high")), 16, 24, 3, inter_channels=16)
    return OutOnly(m), SEG_INPUT, ["out"], {}


class AlignCornersHead(nn.Module):
    """A segmentation head upsampling twice: bilinear with align_corners
    True by a scale factor, then to the input's size."""

    def __init__(self):
        super().__init__()
        self.body = TinyBackbone()
        self.cls = nn.Conv2d(24, 3, 1)

    def forward(self, x):
        y = self.cls(self.body(x)["out"])
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=True)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)


@model("seg_align_corners", "segmentation")
def build_seg_ac():
    return AlignCornersHead(), SEG_INPUT, ["out"], {}


class FPN(nn.Module):
    """A feature pyramid: nearest-neighbour upsampling and lateral adds."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.l1 = nn.Conv2d(8, 8, 1)
        self.l2 = nn.Conv2d(16, 8, 1)
        self.out = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x):
        a = F.relu(self.c1(x))
        b = F.relu(self.c2(a))
        p = self.l1(a) + F.interpolate(self.l2(b), scale_factor=2, mode="nearest")
        return self.out(F.interpolate(p, scale_factor=2, mode="nearest"))


@model("fpn_nearest", "segmentation")
def build_fpn():
    return FPN(), SEG_INPUT, ["out"], {}


class UNet(nn.Module):
    """A two-level UNet: ConvTranspose2d upsampling and skip concats."""

    def __init__(self, c=4):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1), nn.ReLU())

        self.d1, self.d2, self.mid = block(1, c), block(c, 2 * c), block(2 * c, 4 * c)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.u2 = block(4 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.u1 = block(2 * c, c)
        self.out = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        d1 = self.d1(x)
        d2 = self.d2(F.max_pool2d(d1, 2))
        m = self.mid(F.max_pool2d(d2, 2))
        u2 = self.u2(torch.cat([self.up2(m), d2], 1))
        u1 = self.u1(torch.cat([self.up1(u2), d1], 1))
        return self.out(u1)


@model("unet", "segmentation")
def build_unet():
    return UNet(), [inp("x", ["N", 1, 16, 16])], ["mask"], {}


class SuperResolution(nn.Module):
    """PyTorch's super-resolution tutorial net (PixelShuffle, upscale 2)."""

    def __init__(self, r=2):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 8, 3, padding=1)
        self.conv4 = nn.Conv2d(8, r * r, 3, padding=1)
        self.shuffle = nn.PixelShuffle(r)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        return self.shuffle(self.conv4(x))


@model("superres", "image-to-image")
def build_superres():
    return SuperResolution(), [inp("x", ["N", 1, 12, 12])], ["y"], {}


class SpaceToDepthNet(nn.Module):
    """PixelUnshuffle down, convolution, PixelShuffle up."""

    def __init__(self):
        super().__init__()
        self.down = nn.PixelUnshuffle(2)
        self.conv = nn.Conv2d(12, 12, 3, padding=1)
        self.up = nn.PixelShuffle(2)

    def forward(self, x):
        return self.up(torch.sigmoid(self.conv(self.down(x))))


@model("pixel_unshuffle", "image-to-image")
def build_unshuffle():
    return SpaceToDepthNet(), [inp("x", ["N", 3, 8, 8])], ["y"], {}


# ---------------------------------------------------------------- convnets


@model("shufflenet_v2", "convnet")
def build_shufflenet():
    m = torchvision.models.ShuffleNetV2([2, 1, 1], [8, 16, 32, 48, 64], num_classes=10)
    return m, [inp("x", ["N", 3, 16, 16])], ["logits"], {}


class ChannelShuffle(nn.Module):
    """Grouped convolutions around ShuffleNet v1's channel shuffle."""

    def __init__(self, c=8, groups=4):
        super().__init__()
        self.g = groups
        self.a = nn.Conv2d(c, c, 1, groups=groups)
        self.b = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.c = nn.Conv2d(c, c, 1, groups=groups)

    def forward(self, x):
        y = F.relu(self.a(x))
        n, c, h, w = y.size()
        y = y.view(n, self.g, c // self.g, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)
        return F.relu(x + self.c(self.b(y)))


@model("channel_shuffle", "convnet")
def build_channel_shuffle():
    return ChannelShuffle(), [inp("x", ["N", 8, 8, 8])], ["y"], {}


@model("mobilenet_v3", "convnet")
def build_mobilenet_v3():
    from torchvision.models.mobilenetv3 import InvertedResidualConfig as C

    setting = [
        C(8, 3, 16, 8, True, "RE", 2, 1, 1.0),
        C(8, 3, 24, 16, False, "HS", 2, 1, 1.0),
        C(16, 5, 32, 16, True, "HS", 1, 1, 1.0),
    ]
    m = torchvision.models.MobileNetV3(setting, last_channel=32, num_classes=10)
    m.features[0][0] = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
    m.features[0][1] = nn.BatchNorm2d(8)
    return m, [inp("x", ["N", 3, 16, 16])], ["logits"], {}


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        )
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.features(x)
        return F.softmax(self.fc(x.view(x.size(0), -1)), dim=1)


@model("cnn", "control")
def build_cnn():
    return CNN(), [inp("x", ["N", 3, 16, 16])], ["probs"], {}


@model("mlp", "control")
def build_mlp():
    m = nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 5))
    return m, [inp("x", ["N", 3, 4, 4])], ["y"], {}


# ---------------------------------------------------------------- audio


class WaveNet(nn.Module):
    """A raw-waveform classifier: strided Conv1d, a dilated Conv1d, mean
    over the (dynamic) time axis."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(1, 8, 9, stride=4, padding=4)
        self.c2 = nn.Conv1d(8, 16, 3, padding=2, dilation=2)
        self.bn = nn.BatchNorm1d(16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.relu(self.bn(self.c2(x)))
        return self.fc(x.mean(dim=-1))


@model("audio_wave", "audio", dims={"time": 400})
def build_wave():
    return WaveNet(), [inp("audio", ["N", 1, "time"])], ["logits"], {}


class SpecNet(nn.Module):
    """A keyword-spotting net over a log-mel spectrogram [N, 1, mels, time]:
    2-D convolutions, max over time, a classifier per frame and overall."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, (3, 3), stride=(2, 1), padding=1)
        self.frame = nn.Linear(8 * 5, 6)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))  # [N, 8, 5, T]
        n, c, f, t = x.shape
        frames = self.frame(x.reshape(n, c * f, t).transpose(1, 2))  # [N, T, 6]
        return frames, frames.amax(dim=1)


@model("audio_spectrogram", "audio", dims={"time": 20})
def build_spec():
    return SpecNet(), [inp("spectrogram", ["N", 1, 10, "time"])], ["frames", "clip"], {}


class VAD(nn.Module):
    """A voice-activity detector with control flow, exported from
    TorchScript: an If on a scalar sample-rate input (bound with --value
    sr=16000) and an If on the input's length."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(1, 8, 8, stride=4)
        self.c2 = nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 1)

    def forward(self, x, sr):
        if sr != 16000:
            x = x[:, :, ::2]
        if x.size(2) >= 256:
            x = x[:, :, :256]
        y = torch.relu(self.c1(x))
        y = torch.relu(self.c2(y))
        return torch.sigmoid(self.fc(y.mean(dim=2)))


@model("vad_if", "audio", dims={"time": 512}, script=True)
def build_vad():
    return VAD(), [inp("audio", ["N", 1, "time"]), inp("sr", [], "int64", kind="value", value=16000)], ["prob"], {}


# ---------------------------------------------------------------- fixed batch


@model("fixed_cnn", "fixed-batch", fixed=True)
def build_fixed_cnn():
    return CNN(), [inp("x", ["N", 3, 16, 16])], ["probs"], {}


@model("fixed_encoder", "fixed-batch", fixed=True)
def build_fixed_encoder():
    return Encoder(False, layers=1), [inp("src", [8, "N", 16])], ["out"], {}


@model("fixed_bert", "fixed-batch", fixed=True, dims={"sequence": 16})
def build_fixed_bert():
    return Bert(layers=1), BERT_INPUTS, ["last_hidden_state", "pooler_output"], {}


# ---------------------------------------------------------------- export


def randomize(m, seed):
    """Random weights (and batchnorm statistics) from a fixed seed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            scale = 1 / math.sqrt(p[0].numel()) if p.dim() > 1 else 0.1
            p.copy_(torch.empty_like(p).normal_(0, 1, generator=g) * scale)
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.running_mean.copy_(torch.empty_like(mod.running_mean).normal_(0, 0.2, generator=g))
                mod.running_var.copy_(torch.empty_like(mod.running_var).uniform_(0.5, 1.5, generator=g))
                mod.weight.copy_(torch.empty_like(mod.weight).uniform_(0.5, 1.5, generator=g))
            if isinstance(mod, nn.LayerNorm) and mod.weight is not None:
                mod.weight.copy_(torch.empty_like(mod.weight).uniform_(0.5, 1.5, generator=g))


def op_histogram(path):
    mp = onnx.load(path)
    hist = collections.Counter()

    def walk(graph):
        for n in graph.node:
            hist[n.op_type] += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for g in a.graphs:
                    walk(g)

    walk(mp.graph)
    opset = next(o.version for o in mp.opset_import if o.domain in ("", "ai.onnx"))
    return dict(sorted(hist.items())), opset


def export(spec, old):
    name = spec["name"]
    seed = seed_of("corpus", name)
    torch.manual_seed(seed)
    module, inputs, outputs, extra = spec["build"]()
    randomize(module, seed)
    module.eval()
    dims = spec.get("dims", {})
    fixed = spec.get("fixed", False)
    out_dir = os.path.join(HERE, name)
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, f))

    def feeds(batch, rng):
        return {s["name"]: make_input(s, batch, dims, rng) for s in inputs}

    def run(arrays):
        with torch.no_grad():
            res = module(*[torch.from_numpy(arrays[s["name"]]) for s in inputs])
        if isinstance(res, torch.Tensor):
            res = (res,)
        assert len(res) == len(outputs), (name, len(res), outputs)
        return {o: r.detach().numpy() for o, r in zip(outputs, res)}

    # Export: a fixed model at batch 1 without dynamic axes, the others at
    # TRACE_BATCH with the batch (and named dimensions) dynamic.
    example = feeds(1 if fixed else TRACE_BATCH, np.random.default_rng(seed))
    dynamic = None
    if not fixed:
        dynamic = {}
        for s in inputs:
            dynamic[s["name"]] = {i: ("batch" if d == "N" else d) for i, d in enumerate(s["shape"]) if isinstance(d, str)}
        ref = run(example)
        obatch = spec.get("output_batch_axes", {})
        for o in outputs:
            ax = obatch.get(o, 0)
            dynamic[o] = {ax: "batch"}
            # Named dimensions of outputs: the axes whose size follows a named input dimension.
            for d, size in dims.items():
                for i, n in enumerate(ref[o].shape):
                    if n == size and i != ax:
                        dynamic[o].setdefault(i, d)
    model_path = os.path.join(out_dir, "model.onnx")
    exported = torch.jit.script(module) if spec.get("script") else module
    kwargs = {}
    if "opset" in spec:
        kwargs["opset_version"] = spec["opset"]
    torch.onnx.export(
        exported,
        tuple(torch.from_numpy(example[s["name"]]) for s in inputs),
        model_path,
        input_names=[s["name"] for s in inputs],
        output_names=outputs,
        dynamic_axes=dynamic,
        **kwargs,
    )
    onnx.checker.check_model(onnx.load(model_path))
    ops, opset = op_histogram(model_path)

    data = {}
    for b in BATCHES:
        rng = np.random.default_rng(seed_of("data", name, b))
        arrays = feeds(b, rng)
        ref = run(arrays)
        entry = {"inputs": {}, "outputs": {}}
        for k, a in arrays.items():
            f = f"b{b}.in.{k}.npy"
            np.save(os.path.join(out_dir, f), a)
            entry["inputs"][k] = f"{name}/{f}"
        for k, a in ref.items():
            assert np.all(np.isfinite(a)), (name, k)
            f = f"b{b}.out.{k}.npy"
            np.save(os.path.join(out_dir, f), a)
            entry["outputs"][k] = f"{name}/{f}"
        data[str(b)] = entry

    obatch = spec.get("output_batch_axes", {})
    return collections.OrderedDict(
        name=name,
        family=spec["family"],
        doc=(module.__doc__ or type(module).__name__).strip().split("\n\n")[0].replace("\n", " ").replace("    ", " "),
        file=f"{name}/model.onnx",
        opset=opset,
        inputs=[
            {k: v for k, v in dict(
                name=s["name"],
                dtype=s["dtype"],
                shape=s["shape"],
                batch_axis=s["shape"].index("N") if "N" in s["shape"] else None,
                low=s["low"] if s["kind"] is None else None,
                high=s["high"] if s["kind"] is None else None,
                kind=s["kind"],
            ).items() if v is not None}
            for s in inputs
        ],
        outputs=[dict(name=o, batch_axis=obatch.get(o, 0)) for o in outputs],
        dims={} if fixed else dims,
        values={s["name"]: s["value"] for s in inputs if s["kind"] == "value"},
        batch_axes=batch_axes(spec, inputs),
        explain_dims=spec.get("explain_dims", {}),
        min_share=spec.get("min_share", 0),
        fixed_batch=1 if fixed else 0,
        atol=ATOL,
        rtol=RTOL,
        data=data,
        ops=ops,
        bytes=os.path.getsize(model_path),
        expect=old.get(name, {}).get("expect", "todo: not surveyed yet"),
    )


def batch_axes(spec, inputs):
    """The --batch-axis marks the importer needs: every input of a fixed
    export, and inputs whose batch is not on axis 0 (the importer takes a
    dynamic axis 0 for the batch)."""
    marks = dict(spec.get("batch_axes", {}))
    for s in inputs:
        ax = s["shape"].index("N") if "N" in s["shape"] else None
        if ax is not None and (spec.get("fixed") or ax != 0):
            marks.setdefault(s["name"], ax)
    return marks


def main(argv):
    old = {}
    if os.path.exists(MANIFEST):
        with open(MANIFEST) as f:
            old = {m["name"]: m for m in json.load(f)["models"]}
    want = set(argv)
    unknown = want - {s["name"] for s in MODELS}
    if unknown:
        sys.exit(f"unknown models: {', '.join(sorted(unknown))}")
    models = []
    for spec in MODELS:
        if want and spec["name"] not in want:
            if spec["name"] in old:
                models.append(old[spec["name"]])
            continue
        print("exporting", spec["name"], file=sys.stderr)
        models.append(export(spec, old))
    manifest = collections.OrderedDict(
        doc="The corpus of onnx/corpus: written by testdata/corpus/export.py; only the expect fields are edited by hand.",
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        models=models,
    )
    tmp = MANIFEST + ".tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.replace(tmp, MANIFEST)


if __name__ == "__main__":
    main(sys.argv[1:])
