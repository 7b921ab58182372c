"""Weights download: cache, progress, resume, hash check and a clear offline message, against a
local HTTP server on 127.0.0.1."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

import hrpose
from hrpose.hub import DownloadError, cache_dir, download


class Server(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.cut_once: set[str] = set()   # paths whose next full GET stops half-way
        self.requests: list[tuple[str, str | None]] = []

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        byte_range = self.headers.get("Range")
        server.requests.append((self.path, byte_range))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = int(byte_range.split("=")[1].split("-")[0]) if byte_range else 0
        if start >= len(data) > 0:
            self.send_error(416)
            return
        self.send_response(206 if byte_range else 200)
        if byte_range:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if self.path in server.cut_once and not byte_range:
            server.cut_once.discard(self.path)
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    s = Server()
    thread = threading.Thread(target=s.serve_forever, daemon=True)
    thread.start()
    yield s
    s.shutdown()
    s.server_close()


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
