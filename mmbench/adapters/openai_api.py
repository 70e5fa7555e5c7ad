"""Models served behind an OpenAI-compatible chat-completions endpoint (vLLM, SGLang, TGI, `mmbench serve`).

Images travel as base64 PNG data URLs (several per request, in order), audio as ``input_audio`` WAV parts.
Requests run with bounded concurrency. Transient failures are retried with exponential backoff (jittered,
capped at ``backoff_max_s``), within ``max_retries`` retries and ``retry_budget_s`` seconds per request:
connection errors, timeouts, truncated or undecodable bodies (a chunked body cut off, a Content-Length
longer than what arrived, bad gzip, a 200 whose body is not a JSON object), 408, 429 and 5xx (Retry-After is
honoured). Other 4xx answers are the request's fault and are not retried. Giving up raises MMBenchError (one
line naming the endpoint, the attempts and the last error: exit 2 via the CLI; batches already finished are
in the per-item cache, so running the command again resumes).

The API key is read from the environment variable named by ``api_key_env`` at start-up and never stored in
the adapter's arguments, its description or any result; every string the adapter stores, raises or logs
(error bodies, exception texts, generations) has the key and ``Bearer <key>`` redacted.
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import io
import json
import logging
import os
import random
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence
from urllib.parse import quote

import numpy as np

from mmbench.adapters.base import Adapter, ModelArgs
from mmbench.capabilities import Capability, Generation, GenerationConfig, GenerationRequest, Transcript
from mmbench.errors import MMBenchError
from mmbench.specs import fingerprint

log = logging.getLogger(__name__)

# 408 (the server timed the request out) is a timeout like any other; every other 4xx but 429 is final.
RETRY_STATUS = {408, 429}
REDACTED = "<redacted>"
# transport options: they change how a request is sent, never what comes back (kept out of the cache key)
TRANSPORT_ARGS = ("max_concurrency", "timeout_s", "max_retries", "backoff_s", "backoff_max_s", "retry_budget_s")


@dataclass(frozen=True)
class OpenAIArgs(ModelArgs):
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    model: str | None = None  # the served model's name (default: the server's only model)
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding the key (read once; never recorded)
    max_concurrency: int = 8
    timeout_s: float = 120.0  # one attempt (connect + answer)
    max_retries: int = 6  # retries after the first attempt (so at most max_retries + 1 attempts per request)
    backoff_s: float = 0.5  # first retry delay; doubles each time (with jitter), capped at backoff_max_s
    backoff_max_s: float = 30.0
    retry_budget_s: float = 600.0  # total seconds one request may take over all its attempts and waits
    served_revision: str | None = None  # what the server runs, if you know it: goes into the fingerprint


def encode_image(image: Any) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def encode_wav(wave: np.ndarray, sample_rate: int) -> str:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(wave, dtype=np.float32), sample_rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds (fractions accepted) or an HTTP date; None if absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIChat(Adapter):
    """image+prompt -> text through ``POST {base_url}/chat/completions``."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GENERATE_TEXT})
    Args: ClassVar[type] = OpenAIArgs
    default_batch_size = 16

    def __init__(self, args: OpenAIArgs, name: str = "") -> None:
        super().__init__(args, name)
        import requests

        if not args.base_url:
            raise MMBenchError(f"{self.name} needs base_url=<http://host:port/v1> in --model-args")
        if not re.match(r"^https?://[^/\s]+", args.base_url, re.IGNORECASE):
            raise MMBenchError(f"base_url={args.base_url!r} has no http:// or https:// scheme: add http:// or "
                               f"https:// in front (e.g. base_url=http://127.0.0.1:8000/v1)")
        if args.max_concurrency < 1:
            raise MMBenchError(f"max_concurrency must be >= 1, got {args.max_concurrency}")
        if args.max_retries < 0:
            raise MMBenchError(f"max_retries must be >= 0, got {args.max_retries}")
        for field_name in ("timeout_s", "retry_budget_s"):
            if not getattr(args, field_name) > 0:
                raise MMBenchError(f"{field_name} must be > 0, got {getattr(args, field_name)}")
        if args.backoff_s < 0 or args.backoff_max_s < 0:
            raise MMBenchError(f"backoff_s and backoff_max_s must be >= 0, got {args.backoff_s}, {args.backoff_max_s}")
        self.url = args.base_url.rstrip("/")
        key = os.environ.get(args.api_key_env, "").strip()
        if key and (not key.isascii() or any(not c.isprintable() or c.isspace() for c in key)):
            # requests would echo the whole header value, key included, in its InvalidHeader error
            raise MMBenchError(f"the API key in ${args.api_key_env} contains spaces, control or non-ASCII "
                               f"characters; check the variable")
        self._key = key  # a secret: kept out of args/describe/results, and redacted from every string below
        self._secrets = sorted({s for s in (key, json.dumps(key)[1:-1], quote(key, safe="")) if s},
                               key=len, reverse=True)
        self.session = requests.Session()
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=args.max_concurrency))
        self.session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=args.max_concurrency))
        self.pool = ThreadPoolExecutor(max_workers=args.max_concurrency, thread_name_prefix="mmbench-http")
        self._lock = threading.Lock()
        self._closed = threading.Event()  # close() ends the backoff waits of requests still in flight
        self._jitter = random.Random()  # private: retry timing must not move the run's seeded global RNG
        self.served_model = args.model or self._only_model()

    # -- secrets ----------------------------------------------------------------------------------------
    def redact(self, text: Any) -> str:
        """``text`` with the API key (raw, JSON-escaped or URL-quoted, so also ``Bearer <key>``) replaced."""
        text = str(text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _snippet(self, text: str, limit: int = 300) -> str:
        """One line of at most ``limit`` characters, redacted *before* it is cut (a cut key would survive)."""
        return self.redact(" ".join(str(text).split()))[:limit]

    # -- HTTP -------------------------------------------------------------------------------------------
    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _only_model(self) -> str:
        data = self._request("GET", "/models", None)
        models = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)] \
            if isinstance(data.get("data"), list) else []
        if len(models) != 1:
            raise MMBenchError(self.redact(f"{self.url} serves {len(models)} models "
                                           f"({', '.join(map(str, models))}); pick one with model=<name> in "
                                           f"--model-args"))
        return str(models[0])

    def _error_text(self, resp: Any) -> str:
        """The server's error message (the OpenAI shape's error.message when there is one), one line."""
        try:
            data = resp.json()
            message = data["error"]["message"] if isinstance(data.get("error"), dict) else data["error"]
            text = str(message)
        except Exception:  # noqa: BLE001 - any other body: its text
            try:
                text = resp.text
            except Exception:  # noqa: BLE001
                text = "<unreadable body>"
        return self._snippet(text, 200)

    def _request(self, method: str, path: str, body: dict | None,
                 abort: threading.Event | None = None, events: list[str] | None = None) -> dict:
        """One call, retried on transient failures (see the module docstring) within max_retries and
        retry_budget_s; anything else, and giving up, is an MMBenchError with the key redacted. Each retry
        adds "retry" to ``events`` (the request's events, reported with its output)."""
        import requests

        args, url = self.args, self.url + path
        transient = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                     requests.exceptions.ContentDecodingError)
        start = time.monotonic()
        deadline, backoff = start + args.retry_budget_s, args.backoff_s
        attempts, last, why_stop = 0, "", ""
        while True:
            attempts += 1
            wait: float | None = None
            final = ""
            try:
                resp = self.session.request(method, url, json=body, headers=self._headers(),
                                            timeout=max(0.001, min(args.timeout_s, deadline - time.monotonic())))
            except transient as exc:
                last = f"{type(exc).__name__}: {self._snippet(exc, 160)}"
            except requests.RequestException as exc:  # a bad URL or header: no retry will fix it
                final = f"{url}: {type(exc).__name__}: {self._snippet(exc, 200)}"
            else:
                status = resp.status_code
                if status == 200:
                    try:
                        data = resp.json()
                    except ValueError as exc:  # cut off or garbled on the way: send it again
                        last = f"HTTP 200 with a body that is not JSON ({self._snippet(exc, 80)})"
                    else:
                        if isinstance(data, dict):
                            return data
                        last = f"HTTP 200 with a JSON {type(data).__name__} instead of an object"
                elif status in RETRY_STATUS or 500 <= status <= 599:
                    last = f"HTTP {status}: {self._error_text(resp)}"
                    wait = retry_after_s(resp.headers.get("Retry-After"))
                else:
                    hint = {401: "; check the API key in $" + args.api_key_env,
                            403: "; check the API key in $" + args.api_key_env,
                            404: "; check base_url (it usually ends in /v1) and model=",
                            413: "; the request is too large for the server (smaller or fewer images?)",
                            }.get(status, "")
                    final = f"{url} answered HTTP {status}: {self._error_text(resp)}{hint}"
            if final:
                break
            if attempts > args.max_retries:
                why_stop = ""
                break
            if self._closed.is_set() or (abort is not None and abort.is_set()):
                why_stop = "; stopped because another request of the batch failed or the model was closed"
                break
            # jittered exponential backoff (timing only, never outputs); a Retry-After is a minimum wait
            delay = max(wait or 0.0, min(args.backoff_max_s, backoff) * (0.5 + self._jitter.random() / 2))
            if time.monotonic() + delay > deadline:
                why_stop = f"; the next try (in {delay:.3g} s) would pass retry_budget_s={args.retry_budget_s:g}"
                break
            if events is not None:
                events.append("retry")
            log.debug("%s: attempt %d failed (%s); retrying in %.3g s", url, attempts, last, delay)
            if self._closed.wait(delay) or (abort is not None and abort.is_set()):
                why_stop = "; stopped because another request of the batch failed or the model was closed"
                break
            backoff *= 2
        # raised here, outside any except block: the error carries no chained exception (whose request
        # object would hold the Authorization header)
        if final:
            raise MMBenchError(self.redact(final))
        raise MMBenchError(self.redact(
            f"{url} failed after {attempts} attempt{'s' if attempts != 1 else ''} in "
            f"{time.monotonic() - start:.1f} s (last: {last}){why_stop}; check the server, or raise max_retries / "
            f"retry_budget_s / timeout_s and run again (finished batches are cached)"))

    # -- the capability ---------------------------------------------------------------------------------
    def messages(self, request: GenerationRequest) -> list[dict]:
        if request.interleaved:  # text and images in the order the prompt places them
            content = [{"type": "image_url", "image_url": {"url": encode_image(request.images[p])}}
                       if isinstance(p, int) else {"type": "text", "text": p} for p in request.parts()]
        else:
            content = [{"type": "image_url", "image_url": {"url": encode_image(img)}} for img in request.images]
            content.append({"type": "text", "text": request.prompt})
        system = [{"role": "system", "content": request.system}] if request.system else []
        return [*system, {"role": "user", "content": content}]

    @staticmethod
    def shown(messages: list[dict]) -> str:
        """The messages as sent, with image/audio payloads elided (for the samples log)."""
        def elide(part: Any) -> Any:
            if isinstance(part, dict) and part.get("type") == "image_url":
                return {"type": "image_url", "image_url": "<png data URL>"}
            if isinstance(part, dict) and part.get("type") == "input_audio":
                return {"type": "input_audio", "input_audio": "<wav base64>"}
            return part
        return json.dumps([{**m, "content": [elide(p) for p in m["content"]] if isinstance(m["content"], list)
                            else m["content"]} for m in messages], ensure_ascii=False)

    def body(self, messages: list[dict], config: GenerationConfig) -> dict:
        """The request body: the messages and the decoding parameters (GenerationConfig.to_openai)."""
        return {"model": self.served_model, "messages": messages, "n": 1, **config.to_openai()}

    def prepare(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[list[dict]]:
        return [self.messages(r) for r in requests]

    def _complete(self, messages: list[dict], config: GenerationConfig,
                  abort: threading.Event | None = None) -> Generation:
        endpoint = self.url + "/chat/completions"
        events: list[str] = []
        data = self._request("POST", "/chat/completions", self.body(messages, config), abort, events)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            # No choice at all is a broken server or a protocol mismatch, not an answer: it would repeat on
            # every request, so the run stops with one line (finished batches stay cached) instead of
            # scoring a whole run of empty answers.
            raise MMBenchError(self.redact(f"model {self.served_model!r} at {endpoint} answered without a "
                                           f"choice: {self._snippet(json.dumps(data), 200)}"))
        choice = choices[0]
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
        extra: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
        if not isinstance(content, str):
            # A choice without text (content null or missing: a refusal, a content filter, a model that
            # stopped at once) is the model's answer to this item: an empty generation that the task scores
            # (as wrong), counted in the result's notes. Stopping the run would let one filtered item end it,
            # and dropping the item would score the model on the items it chose to answer.
            events.append("null_content")
            if isinstance(message, dict) and message.get("refusal"):
                extra["refusal"] = self._snippet(message["refusal"], 200)
            content = ""
        text = self.redact(content)
        for s in config.stop:  # servers differ on whether the stop string is included
            text = text.split(s)[0] if s else text
        text = text.strip()
        if not text:
            events.append("empty_generation")
        return Generation(text=text, prompt_sent=self.shown(messages), extra=extra, events=tuple(events))

    def _map(self, fn: Callable[[list[dict], threading.Event], Any], prepared: list[list[dict]]) -> list:
        """``fn`` over the requests with bounded concurrency, in order; the first failure cancels the requests
        not started and ends the retries of those in flight, then is raised."""
        abort = threading.Event()
        futures: list[Future] = [self.pool.submit(fn, m, abort) for m in prepared]
        try:
            return [f.result() for f in futures]
        except BaseException:
            abort.set()
            for f in futures:
                f.cancel()
            raise

    def generate(self, prepared: list[list[dict]], config: GenerationConfig) -> list[Generation]:
        return self._map(lambda m, abort: self._complete(m, config, abort), prepared)

    # -- provenance -------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        # Retry and concurrency options change how requests travel, not the answers: raising max_retries
        # after a give-up must still find the finished items in the cache.
        args = dataclasses.asdict(self.args)
        for k in ("device", "batch_size", *TRANSPORT_ARGS):
            args.pop(k, None)
        return fingerprint([type(self).__qualname__, args, self.weights_fingerprint()])

    def weights_fingerprint(self) -> str:
        return fingerprint([self.url, self.served_model, self.args.served_revision])

    def extra_description(self) -> dict:
        return {"endpoint": self.url + "/chat/completions", "served_model": self.served_model,
                "api_key": "set" if self._key else "not set", "max_concurrency": self.args.max_concurrency,
                "retries": {"max_retries": self.args.max_retries, "backoff_s": self.args.backoff_s,
                            "backoff_max_s": self.args.backoff_max_s, "retry_budget_s": self.args.retry_budget_s,
                            "timeout_s": self.args.timeout_s},
                "note": "outputs depend on the server's weights and settings, which mmbench cannot fingerprint "
                        "(set served_revision to record them)"}

    def close(self) -> None:
        self._closed.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()


class OpenAIAudio(OpenAIChat):
    """audio -> text through chat completions with ``input_audio`` parts (for servers that accept audio)."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TRANSCRIBE})
    sample_rate = 16000
    PROMPT = "Transcribe the audio exactly."

    def prepare(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[list[dict]]:  # type: ignore[override]
        return [[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": encode_wav(w, sample_rate), "format": "wav"}},
            {"type": "text", "text": self.PROMPT}]}] for w in waveforms]

    def transcribe(self, prepared: list[list[dict]]) -> list[Transcript]:
        config = GenerationConfig(max_new_tokens=256)
        return [Transcript(g.text, g.events) for g in self._map(lambda m, abort: self._complete(m, config, abort),
                                                                 prepared)]
