"""`mmbench serve`: any image+prompt->text adapter behind an OpenAI-compatible chat-completions endpoint.

Concurrent requests are batched: a worker thread takes up to ``max_batch`` queued requests (waiting at most
``batch_wait_s`` for more to arrive) and runs them through the adapter as one batch, so greedy answers are
the same as in-process (the adapters are batch-size invariant). A batch that fails is run again one request
at a time, so one bad request fails alone. For testing clients, ``fail_rate`` makes a seeded share of
requests answer 503 or 429 before any work is done.

Every bad request gets a 4xx answer in the OpenAI error shape ``{"error": {"message", "type", "param",
"code"}}`` and the server keeps serving: malformed JSON, wrong message shapes, an image that is not a base64
data URL or does not decode (decompression bombs included), a missing/non-numeric Content-Length (411/400), a
body over ``max_body_bytes`` (413), an unknown model name (404, as the OpenAI API answers), out-of-range
``max_tokens``/``temperature``/``top_p``/``stop`` (read and checked by GenerationConfig.from_openai), ``n``
other than 1. ``stream: true`` is answered with server-sent events in the chat.completion.chunk format (the
whole text in one chunk: the answer is generated in a batch first). Without ``temperature`` (or with 0, or
with ``top_p`` 0: only the most probable token) decoding is greedy, as an evaluation server should be.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import json
import math
import queue
import random
import re
import threading
import time
import uuid
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from mmbench.capabilities import (IMAGE_MARKER, Capability, Generation, GenerationConfig, GenerationRequest,
                                  SettingError)
from mmbench.errors import ItemError, MMBenchError


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 16
    batch_wait_s: float = 0.01
    fail_rate: float = 0.0  # share of requests answered with an injected 503/429 (for testing clients)
    seed: int = 0
    max_body_bytes: int = 64 << 20  # larger request bodies are refused with 413
    max_image_pixels: int = 89_478_485  # PIL's default decompression-bomb limit; larger images: 400
    max_tokens_limit: int = 4096  # max_tokens above this: 400
    default_max_tokens: int = 256  # when a request gives neither max_tokens nor max_completion_tokens
    read_timeout_s: float = 60.0  # a client that stalls mid-request (or idles on keep-alive) is dropped


class RequestError(Exception):
    """A request the server refuses: its HTTP status and the OpenAI error fields."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error", close: bool = False) -> None:
        super().__init__(message)
        self.message, self.status, self.param, self.code, self.type = message, status, param, code, type
        self.close = close  # the body was not (fully) read: the connection cannot carry another request

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def decode_data_url(url: Any, max_pixels: int = ServeOptions.max_image_pixels, param: str = "image_url") -> Any:
    """A base64 data URL -> an RGB PIL image; anything else (or an image that does not decode, or has more
    than ``max_pixels`` pixels) is a RequestError."""
    from PIL import Image

    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url[:256]:
        raise RequestError("only base64 data URLs (data:image/png;base64,...) are accepted; mmbench serve does "
                           "not download images", param=param, code="invalid_image_url")
    try:
        raw = base64.b64decode(url.split(";base64,", 1)[1])
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f"the image's base64 does not decode: {exc}", param=param, code="invalid_image")
    try:
        image = Image.open(io.BytesIO(raw))  # reads the header only
        width, height = image.size
        if width * height > max_pixels:  # checked before anything is decompressed
            raise RequestError(f"image of {width}x{height} = {width * height} pixels is over the limit of "
                               f"{max_pixels}", param=param, code="image_too_large")
        return image.convert("RGB")
    except RequestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(f"image refused as a decompression bomb: {exc}", param=param, code="image_too_large")
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the request's fault
        raise RequestError(f"the image does not decode: {type(exc).__name__}: {exc}", param=param,
                           code="invalid_image")


def _text_of(content: Any, where: str) -> str:
    """A system message's content: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                         and isinstance(p.get("text"), str) for p in content):
        return "\n".join(p["text"] for p in content)
    raise RequestError(f"{where}.content must be a string or a list of text parts", param=f"{where}.content")


def parse_messages(messages: Any, max_pixels: int = ServeOptions.max_image_pixels) -> GenerationRequest:
    """A system message (optional) and the user's text and images, in order -> a GenerationRequest. Several
    user messages are joined in order; earlier assistant turns are refused (the adapters answer one turn).
    Images that follow text keep their places (IMAGE_MARKER in the prompt); images before any text go in front."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of message objects", param="messages")
    system: list[str] = []
    prompt: list[str | None] = []  # text pieces in order; None: an image's place
    images: list[Any] = []
    users = 0
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise RequestError(f"{where} must be an object with 'role' and 'content'", param=where)
        role, content = m.get("role"), m.get("content")
        if role in ("system", "developer"):
            system.append(_text_of(content, where))
            continue
        if role != "user":
            raise RequestError(f"{where}: role {role!r} is not supported; mmbench serve answers one user turn "
                               f"(with an optional system message): put earlier turns in the prompt",
                               param=f"{where}.role")
        users += 1
        if isinstance(content, str):
            prompt.append(content)
            continue
        if not isinstance(content, list):
            raise RequestError(f"{where}.content must be a string or a list of content parts",
                               param=f"{where}.content")
        for j, part in enumerate(content):
            at = f"{where}.content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                if IMAGE_MARKER in part["text"]:
                    raise RequestError(f"{at}.text holds U+FFFC, which mmbench reserves for image places; remove "
                                       f"it", param=f"{at}.text")
                prompt.append(part["text"])
            elif kind == "image_url":
                ref = part.get("image_url")
                url = ref.get("url") if isinstance(ref, dict) else ref
                images.append(decode_data_url(url, max_pixels, f"{at}.image_url"))
                prompt.append(None)
            else:
                raise RequestError(f"{at} must be {{'type': 'text', 'text': str}} or {{'type': 'image_url', "
                                   f"'image_url': {{'url': data URL}}}}; got type {kind!r}", param=at)
    if not users:
        raise RequestError("'messages' has no user message", param="messages")
    return GenerationRequest(prompt=_join_pieces(prompt), images=tuple(images),
                             system="\n".join(system) if system else None)


def _join_pieces(pieces: list[str | None]) -> str:
    """Text pieces joined by newlines; images before the first text piece go in front (no marker), later ones
    are marked where they stand."""
    lead = next((i for i, p in enumerate(pieces) if p is not None), len(pieces))
    rest = pieces[lead:]
    if all(p is not None for p in rest):
        return "\n".join(p for p in rest if p is not None)
    out, prev_text = "", False
    for p in pieces:  # every image marked, the leading ones too, so markers and images line up
        if p is None:
            out, prev_text = out + IMAGE_MARKER, False
        else:
            out, prev_text = out + ("\n" if prev_text else "") + p, True
    return out


def parse_config(body: dict, options: ServeOptions = ServeOptions()) -> tuple[GenerationConfig, bool, bool]:
    """The decoding settings of a request (validated) -> (config, stream, include_usage). The OpenAI
    parameters are read by GenerationConfig.from_openai (ranges: GenerationConfig's own check)."""
    n = body.get("n")
    try:
        config = GenerationConfig.from_openai(body, GenerationConfig(max_new_tokens=options.default_max_tokens),
                                              max_tokens_limit=options.max_tokens_limit)
    except SettingError as exc:
        raise RequestError(exc.reason, param=exc.param) from None
    if n is not None and (isinstance(n, bool) or n != 1):
        raise RequestError(f"n={n!r} is not supported: mmbench serve returns one choice per request; send n "
                           f"requests (with different seeds when sampling)", param="n")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RequestError(f"stream must be true or false, got {stream!r}", param="stream")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise RequestError("stream_options must be an object", param="stream_options")
    include_usage = bool((stream_options or {}).get("include_usage"))
    return config, bool(stream), include_usage


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` cut at the earliest stop string (adapters may or may not have done it) and whether it was."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


def _count_tokens(adapter: Any, text: str) -> int | None:
    """Tokens of ``text`` by the adapter's tokenizer (None without one). Runs in the worker thread, the
    only thread that uses the adapter, under the adapter's tokenizer lock when it has one."""
    tokenizer = getattr(adapter, "tokenizer", None)
    if tokenizer is None or not callable(tokenizer):
        return None
    try:
        with getattr(adapter, "_tokenizer_lock", None) or nullcontext():
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    except Exception:  # noqa: BLE001 - counting is informative only
        return None


def _estimate_tokens(text: str) -> int:
    # No tokenizer: the usual rule of thumb of ~4 characters per token (the usage is marked estimated).
    return math.ceil(len(text) / 4)


def count_usage(adapter: Any, request: GenerationRequest, gen: Generation) -> dict:
    """prompt/completion token counts. The prompt is the text the adapter rendered (prompt_sent: chat
    template included; an image counts as its placeholder's tokens, not the vision encoder's); the completion
    is the adapter's own count of generated tokens (extra["new_tokens"]) when it reports one, else the
    tokenizer's count of the text. Without a tokenizer both are estimated and ``estimated`` is true."""
    prompt_text = gen.prompt_sent or "\n".join(filter(None, (request.system, request.prompt)))
    prompt = _count_tokens(adapter, prompt_text)
    new = gen.extra.get("new_tokens") if isinstance(gen.extra, dict) else None
    completion = new if isinstance(new, int) and not isinstance(new, bool) else _count_tokens(adapter, gen.text)
    exact = prompt is not None and completion is not None
    return {"prompt_tokens": prompt if prompt is not None else _estimate_tokens(prompt_text),
            "completion_tokens": completion if completion is not None else _estimate_tokens(gen.text),
            "estimated": not exact}


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
        if self.stopping:
            fut.set_exception(RuntimeError("the server is shutting down"))
        else:
            self.queue.put((request, config, fut))
        return fut

    def _run(self, group: list, config: GenerationConfig) -> None:
        gens = self.adapter.generate(self.adapter.prepare([j[0] for j in group], config), config)
        if not isinstance(gens, list) or len(gens) != len(group):
            raise RuntimeError(f"the adapter returned {len(gens) if isinstance(gens, list) else type(gens)} "
                               f"generations for {len(group)} requests")
        results = []
        for (request, _, _), gen in zip(group, gens):
            extra = dict(gen.extra) if isinstance(gen.extra, dict) else {}
            extra["usage"] = count_usage(self.adapter, request, gen)
            results.append(dataclasses.replace(gen, extra=extra))
        for (_, _, fut), gen in zip(group, results):
            fut.set_result(gen)

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
                    self._run(group, config)
                except Exception as exc:  # noqa: BLE001 - reported to the waiting client(s)
                    if len(group) == 1:
                        group[0][2].set_exception(exc)
                        continue
                    # one request may have failed the batch: each alone, so only the culprit fails (the
                    # adapters are batch-size invariant, so the others' answers do not change)
                    for job in group:
                        try:
                            self._run([job], config)
                        except Exception as one:  # noqa: BLE001
                            job[2].set_exception(one)


class ChatHandler(BaseHTTPRequestHandler):
    """One HTTP exchange of ``mmbench serve``; what it serves comes from its ChatServer (``self.server``)."""

    server: "ChatServer"
    protocol_version = "HTTP/1.1"
    server_version = "mmbench-serve"

    def setup(self) -> None:
        self.timeout = self.server.options.read_timeout_s  # on the socket: a stalled client cannot hold a thread
        super().setup()

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _write(self, status: int, data: bytes, content_type: str, headers: dict | None = None,
               close: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client went away
            self.close_connection = True

    def _send(self, status: int, body: dict, headers: dict | None = None, close: bool = False) -> None:
        self._write(status, json.dumps(body).encode(), "application/json", headers, close)

    def _fail(self, err: RequestError) -> None:
        self._send(err.status, err.body(), close=err.close)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a bad request line, headers too long, an unknown method) in the
        OpenAI error shape."""
        if code == 501:  # an unknown method is the client's error, and must not look retryable
            code, message = 405, message or f"method {self.command} is not allowed"
        short = self.responses.get(code, ("error", ""))[0]
        kind = "invalid_request_error" if 400 <= code < 500 else "server_error"
        self._send(code, error_body(message or short, kind), close=True)

    # -- routes ------------------------------------------------------------------------------------------
    def _route(self) -> str:
        return unquote(urlsplit(self.path).path).rstrip("/")

    def do_GET(self) -> None:
        path = self._route()
        if path.endswith("/models"):
            self._send(200, {"object": "list", "data": [self._model_card()]})
        elif "/models/" in path and path.split("/models/", 1)[1] == self.server.model_name:
            self._send(200, self._model_card())
        elif "/models/" in path:
            self._send(404, error_body(f"model {path.split('/models/', 1)[1]!r} is not served here; this "
                                       f"server serves {self.server.model_name!r}", param="model",
                                       code="model_not_found"))
        elif path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        else:
            self._send(404, error_body(f"no route GET {self.path}", code="not_found"))

    def do_HEAD(self) -> None:
        self.do_GET()

    def _not_allowed(self) -> None:
        self._send(405, error_body(f"method {self.command} is not allowed here", code="method_not_allowed"),
                   {"Allow": "GET, POST"}, close=True)

    do_PUT = do_DELETE = do_PATCH = _not_allowed

    def _model_card(self) -> dict:
        return {"id": self.server.model_name, "object": "model", "created": 0, "owned_by": "mmbench"}

    def _read_body(self) -> bytes:
        limit = self.server.options.max_body_bytes
        encoding = self.headers.get("Transfer-Encoding")
        lengths = self.headers.get_all("Content-Length") or []
        if encoding is not None:
            if encoding.strip().lower() != "chunked" or lengths:
                raise RequestError("only 'Transfer-Encoding: chunked' (without Content-Length) is accepted",
                                   close=True)
            return self._read_chunked(limit)
        if not lengths:
            raise RequestError("a Content-Length header is required", status=411, close=True)
        if len({v.strip() for v in lengths}) != 1 or not re.fullmatch(r"[0-9]{1,19}", lengths[0].strip()):
            raise RequestError(f"Content-Length must be one non-negative integer, got {', '.join(lengths)!r}",
                               close=True)
        size = int(lengths[0].strip())
        if size > limit:
            raise RequestError(f"the request body ({size} bytes) is over this server's limit of {limit} "
                               f"bytes", status=413, code="request_too_large", close=True)
        data = self.rfile.read(size)
        if len(data) < size:
            raise RequestError(f"the body ended after {len(data)} of {size} bytes", close=True)
        return data

    def _read_chunked(self, limit: int) -> bytes:
        parts, total = [], 0
        bad = RequestError("malformed chunked request body", close=True)
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size_text):
                raise bad
            size = int(size_text, 16)
            if size == 0:
                for _ in range(100):  # trailers, up to the blank line
                    trailer = self.rfile.readline(1024)
                    if trailer in (b"\r\n", b"\n"):
                        return b"".join(parts)
                    if not trailer.endswith(b"\n"):
                        raise bad
                raise bad
            total += size
            if total > limit:
                raise RequestError(f"the request body is over this server's limit of {limit} bytes",
                                   status=413, code="request_too_large", close=True)
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.read(2) not in (b"\r\n",):
                raise bad
            parts.append(chunk)

    def do_POST(self) -> None:
        try:
            self._post()
        except RequestError as err:
            self._fail(err)
        except TimeoutError:
            self._send(408, error_body("the request body did not arrive in time", code="timeout"),
                       close=True)
        except Exception as exc:  # noqa: BLE001 - a bug here must not drop the connection without an answer
            self._send(500, error_body(f"{type(exc).__name__}: {exc}", "server_error"), close=True)

    def _post(self) -> None:
        raw = self._read_body()
        if not self._route().endswith("/chat/completions"):
            raise RequestError(f"no route POST {self.path}", status=404, code="not_found")
        with self.server.rng_lock:
            fail = self.server.rng.random() < self.server.options.fail_rate
            status = self.server.rng.choice((503, 429))
        if fail:
            return self._send(status, error_body("injected failure (--fail-rate)", "server_error"),
                              {"Retry-After": "0"})
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"the body is not valid JSON: {exc}", code="invalid_json")
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise RequestError("model must be a string", param="model")
        if model is not None and model != self.server.model_name:
            raise RequestError(f"model {model!r} is not served here; this server serves {self.server.model_name!r}",
                               status=404, param="model", code="model_not_found")
        config, stream, include_usage = parse_config(body, self.server.options)
        request = parse_messages(body.get("messages"), self.server.options.max_image_pixels)
        try:
            gen = self.server.worker.submit(request, config).result()
        except (ItemError, MMBenchError) as exc:  # the adapter refused this request (e.g. too many images)
            raise RequestError(f"the model cannot take this request: {exc}", code="unprocessable_request")
        except Exception as exc:  # noqa: BLE001
            return self._send(500, error_body(f"{type(exc).__name__}: {exc}", "server_error"))
        self._answer(gen, config, stream, include_usage)

    def _answer(self, gen: Generation, config: GenerationConfig, stream: bool, include_usage: bool) -> None:
        text, stopped = cut_at_stop(gen.text, config.stop)
        counted = gen.extra.get("usage") or count_usage(None, GenerationRequest(prompt=""), gen)
        # "length" when the model used all max_tokens (by its own count, or by the estimate when it
        # reports none) without reaching a stop string
        finish = "length" if not stopped and counted["completion_tokens"] >= config.max_new_tokens \
            else "stop"
        usage = {"prompt_tokens": counted["prompt_tokens"], "completion_tokens": counted["completion_tokens"],
                 "total_tokens": counted["prompt_tokens"] + counted["completion_tokens"]}
        if counted["estimated"]:
            usage["estimated"] = True  # no tokenizer: ~4 characters per token (see count_usage)
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": self.server.model_name,
                "system_fingerprint": None}
        if not stream:
            return self._send(200, {**head, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "finish_reason": finish, "logprobs": None,
                 "message": {"role": "assistant", "content": text}}]})
        chunk = {**head, "object": "chat.completion.chunk"}
        if include_usage:
            chunk["usage"] = None
        events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                                         "logprobs": None, "finish_reason": None}]},
                  {**chunk, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]}]
        if include_usage:
            events.append({**chunk, "choices": [], "usage": usage})
        data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        self._write(200, data.encode(), "text/event-stream", {"Cache-Control": "no-cache"})


class ChatServer(ThreadingHTTPServer):
    """The threaded HTTP server of ``mmbench serve``: the model's batching worker and the serving options."""

    daemon_threads = True

    def __init__(self, worker: "BatchingWorker", options: ServeOptions, model_name: str) -> None:
        self.worker, self.options, self.model_name = worker, options, model_name
        self.rng = random.Random(options.seed)  # the --fail-rate draws
        self.rng_lock = threading.Lock()
        super().__init__((options.host, options.port), ChatHandler)


def make_server(adapter: Any, options: ServeOptions, model_name: str) -> ChatServer:
    if Capability.GENERATE_TEXT not in adapter.capabilities:
        raise MMBenchError(f"model {model_name!r} does not offer image+prompt->text; only such models can be served")
    return ChatServer(BatchingWorker(adapter, options), options, model_name)
