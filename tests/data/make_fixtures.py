"""Writes the small real-format checkpoints in this folder with the frameworks themselves.

Not run by the tests (PaddlePaddle and MindSpore are not hrpose dependencies); kept to show how
the files were made. Run it in an environment with `paddlepaddle` and `mindspore` installed, one
framework per process (their bundled oneDNN libraries clash in one):

    python tests/data/make_fixtures.py paddle
    python tests/data/make_fixtures.py mindspore

Each file holds a few tensors named as the toolkits name them (PaddleDetection's ConvNormLayer,
MindSpore's BatchNorm2d and a MindPose-style head) with values stored beside them in an .npz, so
the tests check that hrpose reads real files of both formats exactly.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def paddle_fixture() -> None:
    import paddle

    class ConvNorm(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = paddle.nn.Conv2D(3, 4, 3, padding=1, bias_attr=False)
            self.norm = paddle.nn.BatchNorm(4)  # the legacy API: _mean / _variance

    class Net(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.backbone = paddle.nn.Layer()
            self.backbone.add_sublayer("conv_layer1_1", ConvNorm())
            self.final_conv = paddle.nn.Conv2D(4, 2, 1)

    net = Net()
    rng = np.random.default_rng(0)
    values = {k: rng.standard_normal(v.shape).astype("float32")
              for k, v in net.state_dict().items()}
    net.set_state_dict(values)
    paddle.save(net.state_dict(), str(HERE / "small_paddle.pdparams"))
    np.savez(HERE / "small_paddle_values.npz", **values)


def mindspore_fixture() -> None:
    import mindspore as ms
    from mindspore import Parameter, Tensor, nn

    class Backbone(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, pad_mode="pad", padding=1)
            self.bn1 = nn.BatchNorm2d(4)

    class Head(nn.Cell):
        def __init__(self):
            super().__init__()
            self.head = nn.Conv2d(4, 2, 1, has_bias=True)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.backbone = Backbone()
            self.head = Head()
            self.half = Parameter(Tensor(np.arange(6, dtype=np.float16).reshape(2, 3)),
                                  name="half")
            self.count = Parameter(Tensor(np.array([7, 8, 9], dtype=np.int32)), name="count")

    net = Net()
    rng = np.random.default_rng(0)
    for p in net.get_parameters():
        if p.dtype == ms.float32:
            p.set_data(Tensor(rng.standard_normal(p.shape).astype(np.float32)))
    ms.save_checkpoint(net, str(HERE / "small_mindspore.ckpt"))
    np.savez(HERE / "small_mindspore_values.npz",
             **{p.name: p.asnumpy() for p in net.get_parameters()})


if __name__ == "__main__":
    import sys

    {"paddle": paddle_fixture, "mindspore": mindspore_fixture}[sys.argv[1]]()
