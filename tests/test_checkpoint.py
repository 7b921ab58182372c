"""Atomic checkpoint writes: a failed write leaves the previous file and no temporary files."""

import pytest
import torch

from hrpose.models.checkpoint import read_checkpoint, save_weights


def test_save_and_read_back_with_metadata(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", {"a": torch.arange(3.0)}, {"model": "x"})
    tensors, metadata = read_checkpoint(path)
    assert torch.equal(tensors["a"], torch.arange(3.0)) and metadata["model"] == "x"


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = save_weights(tmp_path / "w.safetensors", {"a": torch.ones(2)})
    before = path.read_bytes()
    shared = torch.zeros(4)
    with pytest.raises(RuntimeError):  # safetensors refuses tensors that share memory
        save_weights(path, {"a": shared, "b": shared[:2]})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
