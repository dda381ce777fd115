#!/usr/bin/python3
"""Writes small ONNX models and the outputs PyTorch computes for them, in
ONNX's backend test layout (CASE/model.onnx, CASE/test_data_set_0/input_0.pb,
output_0.pb), for onnx/conformance's TestTorchOps. Run with Debian's
python3-torch and python3-onnx: /usr/bin/python3 gen.py (from this folder).
Models exported by torch.onnx.export where PyTorch 1.13 exports them without
empty constants; the others are written with onnx.helper, their expected
outputs still computed by PyTorch."""
import io, os, shutil
import numpy as np
import torch
import torch.nn.functional as F
import onnx
from onnx import helper, numpy_helper, TensorProto

OPSET = 13
HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, model_bytes, x, y):
    d = os.path.join(HERE, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model_bytes)
    for k, t in (("input_0", x), ("output_0", y)):
        with open(os.path.join(d, "test_data_set_0", k + ".pb"), "wb") as f:
            f.write(numpy_helper.from_array(t.detach().numpy(), k).SerializeToString())


def export(name, module, x):
    module.eval()
    f = io.BytesIO()
    torch.onnx.export(module, x, f, opset_version=OPSET, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    with torch.no_grad():
        y = module(x)
    save(name, f.getvalue(), x, y)


class Interp(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return F.interpolate(x, **self.kw)


def resize_sizes(name, x, size, onnx_mode, coord, nearest="floor", **kw):
    """A Resize to constant sizes (PyTorch itself computes them with Shape,
    Slice and Concat), checked against F.interpolate(size=size)."""
    n, c = x.shape[:2]
    sizes = numpy_helper.from_array(np.array([n, c, *size], dtype=np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=onnx_mode,
                            coordinate_transformation_mode=coord, nearest_mode=nearest)
    g = helper.make_graph([node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [sizes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gen.py")
    save(name, m.SerializeToString(), x, F.interpolate(x, size=size, **kw))


def main():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 3, 4)
    export("resize_nearest_scale2", Interp(scale_factor=2, mode="nearest"), x)
    export("resize_nearest_scale3", Interp(scale_factor=3, mode="nearest"), x)
    export("resize_bilinear_scale2", Interp(scale_factor=2, mode="bilinear", align_corners=False), x)
    export("resize_bilinear_scale2_align_corners", Interp(scale_factor=2, mode="bilinear", align_corners=True), x)
    # Nearest to sizes: PyTorch's floor(dst * in/out), ONNX's asymmetric floor.
    for name, size in (("resize_nearest_sizes_up", (5, 7)), ("resize_nearest_sizes_down", (2, 3))):
        xs = torch.randn(3, 2, 4, 6) if "down" in name else x
        resize_sizes(name, xs, size, "nearest", "asymmetric", mode="nearest")
    for name, size, corners in (("resize_bilinear_sizes_up", (5, 7), False), ("resize_bilinear_sizes_down", (2, 3), False),
                                ("resize_bilinear_sizes_align_corners", (5, 7), True)):
        xs = torch.randn(3, 2, 5, 7) if "down" in name else x
        coord = "align_corners" if corners else "pytorch_half_pixel"
        resize_sizes(name, xs, size, "linear", coord, mode="bilinear", align_corners=corners)
    export("convtranspose_stride2_groups", torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
           torch.randn(3, 4, 3, 5))
    export("convtranspose_dilation", torch.nn.ConvTranspose2d(2, 3, (2, 3), stride=(1, 2), padding=(0, 2), dilation=(2, 1)),
           torch.randn(3, 2, 4, 4))
    export("convtranspose1d", torch.nn.ConvTranspose1d(2, 3, 4, stride=3, padding=1), torch.randn(3, 2, 5))
    export("pixel_shuffle", torch.nn.PixelShuffle(2), torch.randn(3, 8, 2, 3))
    export("reflection_pad", torch.nn.ReflectionPad2d((1, 2, 2, 1)), torch.randn(3, 2, 3, 4))
    export("replication_pad", torch.nn.ReplicationPad2d((2, 0, 1, 3)), torch.randn(3, 2, 3, 4))


if __name__ == "__main__":
    main()
