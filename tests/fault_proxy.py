"""A fault-injecting HTTP proxy on 127.0.0.1 for testing clients of an OpenAI-compatible server.

Each request that reaches the proxy gets an action: the next one of ``sequence``, then ``then``; with
probability ``share`` (seeded) an action drawn from ``kinds`` replaces a "pass" of ``then``. Actions (``kind[:arg]``):

    pass            forward to the upstream server and relay its answer
    500 / 503       an error status with an OpenAI-shaped body
    429[:secs]      429 with ``Retry-After: secs`` (default 0)
    delay[:secs]    wait ``secs`` (default 1), then pass (a client with a shorter timeout times out)
    drop            read the request, close the connection without an answer
    reset           the same with a TCP reset
    truncate        the upstream answer with its Content-Length but only half its body, then close
    chunked_cut     the upstream answer re-sent chunked, cut off after the first chunk
    garbage         200 with a body that is not JSON (a correct Content-Length)
    bad_gzip        200 with ``Content-Encoding: gzip`` over bytes that are not gzip
    echo[:status]   ``status`` (default 500) whose body echoes the request's Authorization header
    no_choices      200 with ``{"choices": []}``
    null_content    200 with a choice whose message content is null

Every connection carries one request (answers say ``Connection: close``), so a fault never leaves a
half-read connection in the client's pool. ``log`` lists the actions taken, in order.
"""

from __future__ import annotations

import json
import random
import socket
import socketserver
import struct
import threading
import time
from typing import Iterable
from urllib.parse import urlsplit


def _read_request(rfile) -> tuple[bytes, list[bytes], bytes] | None:
    line = rfile.readline(65537)
    if not line:
        return None
    headers = []
    while True:
        h = rfile.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        headers.append(h)
    length = 0
    for h in headers:
        name, _, value = h.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = rfile.read(length) if length else b""
    return line, headers, body


def _response(status: int, body: bytes, headers: Iterable[str] = (), reason: str = "X") -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class FaultProxy:
    def __init__(self, upstream_url: str, sequence: Iterable[str] = (), then: str = "pass", share: float = 0.0,
                 kinds: Iterable[str] = (), seed: int = 0) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self.prefix = parts.path.rstrip("/")
        self.lock = threading.Lock()
        self.log: list[str] = []
        self.set(sequence, then, share, kinds, seed)
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                req = _read_request(self.rfile)
                if req is None:
                    return
                action = proxy._next()
                try:
                    proxy._apply(action, req, self.connection)
                except OSError:  # the client gave up (e.g. timed out during a delay)
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.prefix}"

    def set(self, sequence: Iterable[str] = (), then: str = "pass", share: float = 0.0, kinds: Iterable[str] = (),
            seed: int = 0) -> None:
        with self.lock:
            self.sequence, self.then, self.share = list(sequence), then, share
            self.kinds, self.rng = list(kinds), random.Random(seed)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next(self) -> str:
        with self.lock:
            if self.sequence:
                action = self.sequence.pop(0)
            elif self.then == "pass" and self.kinds and self.rng.random() < self.share:
                action = self.rng.choice(self.kinds)
            else:
                action = self.then
            self.log.append(action)
            return action

    def _upstream(self, line: bytes, headers: list[bytes], body: bytes) -> bytes:
        kept = [h for h in headers if h.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
        with socket.create_connection(self.upstream, timeout=30) as s:
            s.sendall(line + b"".join(kept) + b"Connection: close\r\n\r\n" + body)
            chunks = []
            while True:
                data = s.recv(1 << 16)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks)

    @staticmethod
    def _split(answer: bytes) -> tuple[list[bytes], bytes]:
        head, _, body = answer.partition(b"\r\n\r\n")
        return head.split(b"\r\n"), body

    def _apply(self, action: str, req: tuple[bytes, list[bytes], bytes], conn: socket.socket) -> None:
        kind, _, arg = action.partition(":")
        if kind == "pass":
            lines, body = self._split(self._upstream(*req))
            lines = [x for x in lines if not x.lower().startswith(b"connection:")] + [b"Connection: close"]
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        elif kind.isdigit() and kind != "429":
            err = {"error": {"message": f"injected {kind}", "type": "server_error", "param": None, "code": None}}
            conn.sendall(_response(int(kind), json.dumps(err).encode(), ["Content-Type: application/json"]))
        elif kind == "429":
            err = {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}}
            conn.sendall(_response(429, json.dumps(err).encode(),
                                   ["Content-Type: application/json", f"Retry-After: {arg or '0'}"]))
        elif kind == "delay":
            time.sleep(float(arg or 1.0))
            self._apply("pass", req, conn)
        elif kind == "drop":
            conn.shutdown(socket.SHUT_RDWR)
        elif kind == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        elif kind == "truncate":
            lines, body = self._split(self._upstream(*req))
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body[:len(body) // 2])
            conn.shutdown(socket.SHUT_RDWR)
        elif kind == "chunked_cut":
            lines, body = self._split(self._upstream(*req))
            lines = [x for x in lines if not x.lower().startswith((b"content-length:", b"connection:"))]
            lines += [b"Transfer-Encoding: chunked", b"Connection: close"]
            half = body[:len(body) // 2]
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + f"{len(half):x}\r\n".encode() + half + b"\r\n")
            conn.shutdown(socket.SHUT_RDWR)
        elif kind == "garbage":
            conn.sendall(_response(200, b'{"id": "chatcmpl-1", "choices": [{"mess', ["Content-Type: application/json"]))
        elif kind == "bad_gzip":
            conn.sendall(_response(200, b"this is not gzip at all" * 4,
                                   ["Content-Type: application/json", "Content-Encoding: gzip"]))
        elif kind == "echo":
            auth = next((h.split(b":", 1)[1].strip().decode() for h in req[1]
                         if h.lower().startswith(b"authorization:")), "")
            text = f"invalid credentials {auth!r}; you sent Authorization: {auth}\nheaders: {auth}"
            err = {"error": {"message": text, "type": "auth_error", "param": None, "code": None}}
            conn.sendall(_response(int(arg or 500), json.dumps(err).encode(), ["Content-Type: application/json"]))
        elif kind in ("no_choices", "null_content"):
            choices = [] if kind == "no_choices" else [{"index": 0, "finish_reason": "content_filter",
                                                        "message": {"role": "assistant", "content": None}}]
            body = {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "m", "choices": choices}
            conn.sendall(_response(200, json.dumps(body).encode(), ["Content-Type: application/json"]))
        else:
            raise ValueError(f"unknown fault {action!r}")
