"""Weights download: cache, progress, resume, hash check and a clear offline message, against a
local HTTP server on 127.0.0.1."""

import hashlib
import threading

import pytest
import torch

import hrpose
from hrpose.hub import DownloadError, cache_dir, download


def hashed_name(stem, data):
    return f"/{stem}-{hashlib.sha256(data).hexdigest()[:8]}_20200708.pth"


def test_download_caches_and_verifies(server):
    data = bytes(range(256)) * 4000
    path = hashed_name("weights", data)
    server.files[path] = data
    got = download(server.url(path), progress=False)
    assert got.parent == cache_dir() and got.read_bytes() == data
    assert download(server.url(path), progress=False) == got
    assert len(server.requests) == 1  # the second call is served from the cache


def test_interrupted_download_resumes_with_a_range_request(server):
    data = b"0123456789abcdef" * 50_000
    path = hashed_name("weights", data)
    server.files[path] = data
    server.cut_once.add(path)
    with pytest.raises(DownloadError, match="resume"):
        download(server.url(path), progress=False)
    part = cache_dir() / (path[1:] + ".part")
    assert 0 < part.stat().st_size < len(data)
    got = download(server.url(path), progress=False)
    assert got.read_bytes() == data and not part.exists()
    assert server.requests[-1][1] == f"bytes={len(data) // 2}-"


def test_hash_mismatch_deletes_the_download(server):
    data = b"not the published weights"
    path = "/weights-deadbeef_20200708.pth"
    server.files[path] = data
    with pytest.raises(DownloadError, match="deadbeef") as e:
        download(server.url(path), progress=False)
    assert "\n" not in str(e.value)
    assert list(cache_dir().glob("weights-*")) == []


def test_offline_message_says_how_to_pass_a_local_file(server):
    url = server.url("/hrnet_w32_coco_256x192-c78dce93_20200708.pth")
    server.shutdown()
    server.server_close()
    with pytest.raises(DownloadError) as e:
        download(url, model_name="hrnet_w32_256x192", progress=False)
    message = str(e.value)
    assert "cannot download" in message and "--weights" in message and "\n" not in message


def test_missing_file_on_server(server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("/nothing-12345678.pth"), progress=False)


def test_build_model_from_url(server, w32_official):
    path, reference = w32_official
    data = path.read_bytes()
    url_path = hashed_name("pose_hrnet_w32_256x192", data)
    server.files[url_path] = data
    model = hrpose.build_model("hrnet_w32_256x192", weights=server.url(url_path))
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert not model.training


def test_concurrent_downloads_fetch_once(server):
    """Like DDP ranks on one machine: several callers, one download, the same file for all."""
    data = b"w" * 3_000_000
    path = hashed_name("weights", data)
    server.files[path] = data
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        download(server.url(path), progress=False))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1 and results[0].read_bytes() == data
    assert len(server.requests) == 1
