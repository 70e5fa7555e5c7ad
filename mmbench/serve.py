"""`mmbench serve`: any image+prompt->text adapter behind an OpenAI-compatible chat-completions endpoint.

Concurrent requests are batched: a worker thread takes up to ``max_batch`` queued requests (waiting at most
``batch_wait_s`` for more to arrive) and runs them through the adapter as one batch, so greedy answers are
the same as in-process (the adapters are batch-size invariant). For testing clients, ``fail_rate`` makes a
seeded share of requests answer 503 or 429 before any work is done.
"""

from __future__ import annotations

import base64
import io
import json
import queue
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mmbench.capabilities import Capability, GenerationConfig, GenerationRequest
from mmbench.errors import MMBenchError


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 16
    batch_wait_s: float = 0.01
    fail_rate: float = 0.0  # share of requests answered with an injected 503/429 (for testing clients)
    seed: int = 0


def decode_data_url(url: str) -> Any:
    from PIL import Image

    if not url.startswith("data:") or ";base64," not in url:
        raise ValueError("only base64 data URLs are accepted (no downloads)")
    return Image.open(io.BytesIO(base64.b64decode(url.split(";base64,", 1)[1]))).convert("RGB")


def parse_messages(messages: list[dict]) -> GenerationRequest:
    """One user turn (text + images) and an optional system message -> a GenerationRequest."""
    system, prompt, images = None, [], []
    for m in messages:
        content = m.get("content")
        if m.get("role") == "system":
            system = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
            continue
        for part in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            if part.get("type") == "text":
                prompt.append(part["text"])
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
                images.append(decode_data_url(url))
            else:
                raise ValueError(f"unsupported content part {part.get('type')!r}")
    return GenerationRequest(prompt="\n".join(prompt), images=tuple(images), system=system)


class BatchingWorker:
    """Runs queued requests through the adapter in batches, one batch at a time."""

    def __init__(self, adapter: Any, options: ServeOptions) -> None:
        self.adapter, self.options = adapter, options
        self.queue: queue.Queue[tuple[GenerationRequest, GenerationConfig, Future]] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="mmbench-serve", daemon=True)
        self.stopping = False
        self.thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Finish the batch in progress and end the thread; queued requests fail. The thread must not be left
        inside the model at interpreter exit: a daemon thread killed in native code aborts the process."""
        self.stopping = True
        self.thread.join(timeout_s)
        while True:
            try:
                _, _, fut = self.queue.get_nowait()
            except queue.Empty:
                break
            fut.set_exception(RuntimeError("the server is shutting down"))

    def submit(self, request: GenerationRequest, config: GenerationConfig) -> Future:
        fut: Future = Future()
        self.queue.put((request, config, fut))
        return fut

    def _loop(self) -> None:
        while not self.stopping:
            try:
                first = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            jobs, deadline = [first], time.monotonic() + self.options.batch_wait_s
            while len(jobs) < self.options.max_batch:
                try:
                    jobs.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            # one adapter call per distinct decoding configuration in the batch
            for config in dict.fromkeys(j[1] for j in jobs):
                group = [j for j in jobs if j[1] == config]
                try:
                    gens = self.adapter.generate(self.adapter.prepare([j[0] for j in group], config), config)
                    for (_, _, fut), gen in zip(group, gens):
                        fut.set_result(gen)
                except Exception as exc:  # noqa: BLE001 - reported to each waiting client as a 500
                    for _, _, fut in group:
                        fut.set_exception(exc)


def make_server(adapter: Any, options: ServeOptions, model_name: str) -> ThreadingHTTPServer:
    if Capability.GENERATE_TEXT not in adapter.capabilities:
        raise MMBenchError(f"model {model_name!r} does not offer image+prompt->text; only such models can be served")
    worker = BatchingWorker(adapter, options)
    rng = random.Random(options.seed)
    rng_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            with rng_lock:
                fail = rng.random() < options.fail_rate
                status = rng.choice((503, 429))
            if fail:
                return self._send(status, {"error": {"message": "injected failure"}}, {"Retry-After": "0"})
            try:
                body = json.loads(raw)
                request = parse_messages(body["messages"])
                temperature = float(body.get("temperature") or 0.0)
                config = GenerationConfig(max_new_tokens=int(body.get("max_tokens") or 32),
                                          do_sample=temperature > 0, temperature=temperature or 1.0,
                                          top_p=float(body.get("top_p") or 1.0), stop=tuple(body.get("stop") or ()),
                                          seed=int(body.get("seed") or 0))
            except (ValueError, KeyError, TypeError) as exc:
                return self._send(400, {"error": {"message": f"bad request: {exc}"}})
            try:
                gen = worker.submit(request, config).result()
            except Exception as exc:  # noqa: BLE001
                return self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
            self._send(200, {"object": "chat.completion", "model": model_name, "created": int(time.time()),
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": gen.text}}]})

    server = ThreadingHTTPServer((options.host, options.port), Handler)
    server.daemon_threads = True
    server.worker = worker  # type: ignore[attr-defined]
    return server
