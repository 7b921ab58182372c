"""Many devices through torchrun: process group set-up, the rank that writes, reductions.

torchrun (or any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT,
including multi-node rendezvous) starts one process per device; a plain `python -m hrpose train`
is a world of one and touches no process group.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import HrposeError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device: str = "auto") -> tuple[World, torch.device]:
    """The process group from torchrun's environment (gloo on CPU, NCCL on CUDA) and this
    process's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    world = World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HrposeError(f"train.device {device!r}: no CUDA device is available")
        index = world.local_rank if device == "cuda" else torch.device(device).index
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device(device)
    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return world, dev


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(array: np.ndarray) -> np.ndarray:
    """Element-wise sum over ranks (identity in a world of one)."""
    if not dist.is_initialized():
        return array
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    dist.all_reduce(t)
    return t.numpy().astype(array.dtype)


def mean_over_ranks(value: Tensor) -> Tensor:
    if not dist.is_initialized():
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def main_first(world: World) -> Iterator[None]:
    """The block runs on rank 0 first, then on the other ranks (rank 0 downloads a file once;
    the others find it in the cache). A failure on rank 0 still lets the others go on (to
    fail the same way), rather than leaving them waiting."""
    if not world.is_main:
        barrier()
    try:
        yield
    finally:
        if world.is_main:
            barrier()


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce(tensor: Tensor) -> Tensor:
    return _AllReduceSum.apply(tensor)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose training statistics cover the batches of all ranks, on any device and
    backend (torch's SyncBatchNorm runs on CUDA only; this one also runs on CPU with gloo).
    Two passes (mean, then centred squares) keep the variance as exact as plain BatchNorm's."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized()):
            return super().forward(x)
        xf = x.float()
        count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=torch.float32)
        sums = all_reduce(torch.cat([xf.sum((0, 2, 3)), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        centred = xf - mean[None, :, None, None]
        var = all_reduce((centred * centred).sum((0, 2, 3))) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach() * m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)) * m)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def convert_sync_bn(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm2d becomes a synchronised one: torch's on CUDA, SyncBatchNorm2d
    elsewhere. Tensor names do not change."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = SyncBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            sync.to(child.weight.device)
            setattr(model, name, sync)
        else:
            convert_sync_bn(child, device)
    return model
