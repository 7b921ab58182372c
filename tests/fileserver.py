"""A local HTTP file server on 127.0.0.1 for the download tests: serves bytes by path, honours
Range requests, records every request, and can cut a transfer half-way once."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
