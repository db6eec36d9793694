"""A loopback TCP proxy for the network tests: it puts `delay` seconds on every chunk each way
(a real network between client and server), passes each side's close on like a remote peer,
and in ``bad_gateway`` mode answers every request itself with an HTML 502, as nginx would."""

from __future__ import annotations

import socket
import threading
import time
from typing import List

_PAGE = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
_BAD_GATEWAY = (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: "
                + str(len(_PAGE)).encode() + b"\r\nConnection: close\r\n\r\n" + _PAGE)


class Proxy:
    def __init__(self, upstream_port: int, delay: float = 0.001):
        self.upstream_port = upstream_port
        self.delay = delay
        self.bad_gateway = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        self._sockets: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.bad_gateway:
            client.recv(65536)
            client.sendall(_BAD_GATEWAY)
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        time.sleep(self.delay)
        try:
            dst.shutdown(socket.SHUT_WR)  # the peer's close, passed on
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
