"""Models served behind an OpenAI-compatible chat-completions endpoint (vLLM, SGLang, TGI, `mmbench serve`).

Images travel as base64 PNG data URLs, audio as ``input_audio`` WAV parts. Requests run with bounded
concurrency; 429 and 5xx answers, timeouts and dropped connections are retried with exponential backoff
(honouring Retry-After). The API key is read from the environment variable named by ``api_key_env`` at
start-up and never stored in the adapter's arguments, its description or any result.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from mmbench.adapters.base import Adapter, ModelArgs
from mmbench.capabilities import Capability, Generation, GenerationConfig, GenerationRequest
from mmbench.errors import MMBenchError
from mmbench.specs import fingerprint

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class OpenAIArgs(ModelArgs):
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    model: str | None = None  # the served model's name (default: the server's only model)
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding the key (read once; never recorded)
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 6
    backoff_s: float = 0.5  # first retry delay; doubles each time (with jitter), capped at 30 s
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
        if args.max_concurrency < 1:
            raise MMBenchError(f"max_concurrency must be >= 1, got {args.max_concurrency}")
        self.url = args.base_url.rstrip("/")
        self._key = os.environ.get(args.api_key_env, "")  # a secret: kept out of args/describe/results
        self.session = requests.Session()
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=args.max_concurrency))
        self.session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=args.max_concurrency))
        self.pool = ThreadPoolExecutor(max_workers=args.max_concurrency, thread_name_prefix="mmbench-http")
        self._lock = threading.Lock()
        self.counters = {"retries": 0, "empty_generations": 0}
        self.served_model = args.model or self._only_model()

    # -- HTTP -------------------------------------------------------------------------------------------
    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _only_model(self) -> str:
        data = self._request("GET", "/models", None)
        models = [m.get("id") for m in data.get("data", [])]
        if len(models) != 1:
            raise MMBenchError(f"{self.url} serves {len(models)} models ({', '.join(map(str, models))}); pick one "
                               f"with model=<name> in --model-args")
        return str(models[0])

    def _request(self, method: str, path: str, body: dict | None) -> dict:
        """One call with retries on 429/5xx/timeouts; a 4xx other than those is the caller's error."""
        import requests

        delay, last = self.args.backoff_s, ""
        for attempt in range(self.args.max_retries + 1):
            try:
                resp = self.session.request(method, self.url + path, json=body, headers=self._headers(),
                                            timeout=self.args.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {str(exc)[:120]}"
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        last = "the answer is not JSON"
                elif resp.status_code in RETRY_STATUS:
                    last = f"HTTP {resp.status_code}"
                    retry_after = resp.headers.get("Retry-After")
                    if retry_after and retry_after.replace(".", "", 1).isdigit():
                        delay = max(delay, float(retry_after))
                else:
                    raise MMBenchError(f"{self.url}{path} answered HTTP {resp.status_code}: {resp.text[:200]}")
            if attempt == self.args.max_retries:
                break
            with self._lock:
                self.counters["retries"] += 1
            time.sleep(min(30.0, delay) * (0.5 + random.random() / 2))  # jitter: timing only, never outputs
            delay *= 2
        raise MMBenchError(f"{self.url}{path} failed after {self.args.max_retries + 1} attempts (last: {last}); "
                           f"check the server, or raise max_retries / timeout_s")

    # -- the capability ---------------------------------------------------------------------------------
    def messages(self, request: GenerationRequest) -> list[dict]:
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
        body: dict[str, Any] = {"model": self.served_model, "messages": messages, "n": 1,
                                "max_tokens": config.max_new_tokens, "seed": config.seed,
                                "temperature": config.temperature if config.do_sample else 0.0}
        if config.do_sample:
            body["top_p"] = config.top_p
        if config.stop:
            body["stop"] = list(config.stop)
        return body

    def prepare(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[list[dict]]:
        return [self.messages(r) for r in requests]

    def _complete(self, messages: list[dict], config: GenerationConfig) -> Generation:
        data = self._request("POST", "/chat/completions", self.body(messages, config))
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise MMBenchError(f"{self.url}/chat/completions returned no choices ({str(data)[:200]})")
        for s in config.stop:  # servers differ on whether the stop string is included
            text = text.split(s)[0] if s else text
        text = text.strip()
        if not text:
            with self._lock:
                self.counters["empty_generations"] += 1
        return Generation(text=text, prompt_sent=self.shown(messages))

    def generate(self, prepared: list[list[dict]], config: GenerationConfig) -> list[Generation]:
        return list(self.pool.map(lambda m: self._complete(m, config), prepared))

    # -- provenance -------------------------------------------------------------------------------------
    def weights_fingerprint(self) -> str:
        return fingerprint([self.url, self.served_model, self.args.served_revision])

    def extra_description(self) -> dict:
        return {"endpoint": self.url + "/chat/completions", "served_model": self.served_model,
                "api_key": "set" if self._key else "not set", "max_concurrency": self.args.max_concurrency,
                "note": "outputs depend on the server's weights and settings, which mmbench cannot fingerprint "
                        "(set served_revision to record them)"}

    def close(self) -> None:
        self.pool.shutdown(wait=False)
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

    def transcribe(self, prepared: list[list[dict]]) -> list[str]:
        config = GenerationConfig(max_new_tokens=256)
        return [g.text for g in self.pool.map(lambda m: self._complete(m, config), prepared)]
