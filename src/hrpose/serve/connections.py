"""Connections before their request reaches the application: a deadline for the request's
headers and a bound on the connections still sending them.

uvicorn holds a connection that has sent part of its headers (or nothing at all) for as long as
the client keeps it open, and the application never hears of it: a few hundred such
connections cost nothing to open and hold the server's sockets. Here each connection has
`header_timeout_s` to finish its headers (the first request, and each later one on a kept-alive
connection once its first byte arrives); past that, or when more than `max_waiting`
connections are waiting for theirs, the longest waiting one is answered 408 and closed. Bodies
have their own deadline in the application (`--upload-timeout-s`).

`GuardedHttpProtocol` is uvicorn's httptools protocol with those two rules; `configure` sets
them (a worker process of `--workers N` sets them when it builds its application).

After the WebSocket handshake, a frame that breaks the protocol (unmasked, a reserved opcode,
a bad length) is answered with a close frame 1002 and the connection closed; a text message
that is not UTF-8 with 1007 (`WebSocketProtocol`: uvicorn's websockets-sansio protocol, which
logged a traceback for the latter).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

if TYPE_CHECKING:
    from .settings import ServeSettings

HEADER_TIMEOUT_S = 10.0
MAX_WAITING = 256
PROTOCOL = "hrpose.serve.connections:GuardedHttpProtocol"     # uvicorn's `http` option
WS_PROTOCOL = "hrpose.serve.connections:WebSocketProtocol"    # and its `ws`

_BODY = b'{"error": {"status": 408, "message": "the request headers did not arrive in time"}}'
TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                    b"connection: close\r\ncontent-length: " + str(len(_BODY)).encode()
                    + b"\r\n\r\n" + _BODY)


class GuardedHttpProtocol(HttpToolsProtocol):
    header_timeout_s = HEADER_TIMEOUT_S
    max_waiting = MAX_WAITING
    # The connections waiting for their headers, oldest first (one event loop per process).
    waiting: ClassVar[dict[GuardedHttpProtocol, None]] = {}
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        between = self.cycle is None or self.cycle.response_complete
        if self._deadline is None and between and not self.transport.is_closing():
            self._await_headers()               # the next request on a kept-alive connection
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._headers_arrived()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        cls = type(self)
        cls.waiting[self] = None
        self._deadline = self.loop.call_later(cls.header_timeout_s, self._time_out)
        if len(cls.waiting) > cls.max_waiting:
            next(iter(cls.waiting))._time_out()   # the longest waiting makes room

    def _headers_arrived(self) -> None:
        type(self).waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _time_out(self) -> None:
        self._headers_arrived()
        if not self.transport.is_closing():
            self.transport.write(TIMEOUT_RESPONSE)
            self.transport.close()


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                self.frames = []
                self.logger.info("hrpose: a WebSocket client sent text that is not UTF-8; "
                                 "closed with 1007")
                self.conn.send_close(1007, "text messages must be UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()


def configure(header_timeout_s: float, max_waiting: int) -> None:
    GuardedHttpProtocol.header_timeout_s = header_timeout_s
    GuardedHttpProtocol.max_waiting = max_waiting


def uvicorn_options(settings: ServeSettings) -> dict:
    """What `hrpose serve` (and the tests' server) hands uvicorn besides the address: the
    guarded protocol, the WebSocket message limit, and time for requests in flight on
    SIGTERM."""
    return {"http": PROTOCOL, "ws": WS_PROTOCOL, "ws_max_size": int(settings.max_upload_mb * 2**20),
            "timeout_graceful_shutdown": int(settings.timeout_s + settings.upload_timeout_s) + 5}
