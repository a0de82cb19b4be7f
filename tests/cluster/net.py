"""Small network helpers the tests share: a free local port, a closed one, waiting for a URL."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_HELD: list[socket.socket] = []


def closed_port() -> int:
    """A port nothing answers on: bound here and never listened on, for the test session, so a
    connection is refused and no other process (another test's Ray, beside this one) takes it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 90) -> None:
    """Until ``url`` answers at all (a 401 without a token means the dashboard is up)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(url)


class DroppingProxy:
    """A TCP proxy to ``upstream`` (host, port) on 127.0.0.1 that lets the server take the first
    request starting with ``drop`` (bytes) and then closes the client's connection before any answer,
    as a dashboard under load or a flaky network does. ``url`` is where to connect; ``dropped``
    counts the requests it did this to. A context manager: the listening thread stops on exit."""

    def __init__(self, upstream: tuple[str, int], drop: bytes) -> None:
        self.upstream, self.drop, self.dropped = upstream, drop, 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as server:
            head = client.recv(65536)
            if head.startswith(self.drop) and not self.dropped:
                self.dropped += 1
                while b"\r\n\r\n" not in head:  # the whole request reaches the server
                    head += client.recv(65536)
                headers, _, body = head.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in headers.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += client.recv(65536)
                server.sendall(headers + b"\r\n\r\n" + body)
                server.recv(65536)  # it answered: the request took effect; the client never hears
                return
            server.sendall(head)
            back = threading.Thread(target=_pipe, args=(server, client), daemon=True)
            back.start()
            _pipe(client, server)
            back.join(timeout=30)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
