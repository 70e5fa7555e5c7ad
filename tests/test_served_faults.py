"""The served path under hostile conditions, on 127.0.0.1 only.

`mmbench serve` (a scripted adapter behind it: fast and deterministic) is called with the official `openai`
client: normal, streamed and multi-image requests, and every kind of bad request, each answered with a 4xx in
the OpenAI error shape while the server keeps serving. The `openai-chat` adapter is run through a
fault-injecting proxy (tests/fault_proxy.py): it recovers from every fault with the outputs of a fault-free
run, gives up with one MMBenchError line after its bounded attempts, and never leaks the API key.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from fault_proxy import FaultProxy
from mmbench.adapters import load_model
from mmbench.adapters.openai_api import encode_image
from mmbench.capabilities import Capability, Generation, GenerationConfig, GenerationRequest
from mmbench.cli.main import main
from mmbench.errors import ItemError, MMBenchError
from mmbench.results import RunResult
from mmbench.serve import ServeOptions, make_server
from mmbench.specs import ModelSpec
from test_run_generative import gen_data, predictions  # noqa: F401 - the fixture is reused
from test_scale import needs_loopback

openai = pytest.importorskip("openai")
pytestmark = needs_loopback

MODEL = "scripted"
KEY = "sk-live-TOPSECRET-0123456789abcdef"


class Scripted:
    """A deterministic image+prompt->text 'model': it says what it got (system, prompt, each image's size and
    centre colour, in order), cut to max_new_tokens words. A prompt containing RAISE fails its batch."""

    capabilities = frozenset({Capability.GENERATE_TEXT})

    def prepare(self, requests, config):
        return list(requests)

    def generate(self, prepared, config):
        out = []
        for r in prepared:
            if "RAISE" in r.prompt:
                raise ItemError("this request cannot be processed")
            centres = [im.getpixel((im.size[0] // 2, im.size[1] // 2)) for im in r.images]
            images = " ".join(f"{im.size[0]}x{im.size[1]}#{'%02x%02x%02x' % c}" for im, c in zip(r.images, centres))
            words = f"{r.system or '-'} | {r.prompt} | {len(r.images)} images {images}".split()
            keep = words[:config.max_new_tokens]
            out.append(Generation(text=" ".join(keep), prompt_sent=r.prompt, extra={"new_tokens": len(keep)}))
        return out


def start_server(**options):
    srv = make_server(Scripted(), ServeOptions(port=0, **options), MODEL)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    return srv


def stop_server(srv):
    srv.shutdown()
    srv.server_close()
    srv.worker.stop()


@pytest.fixture(scope="module")
def served():
    srv = start_server(batch_wait_s=0.05, max_body_bytes=4 << 20)
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1", srv.server_address[1]
    stop_server(srv)


@pytest.fixture
def client(served):
    c = openai.OpenAI(base_url=served[0], api_key="sk-test", max_retries=0, timeout=20)
    yield c
    c.close()


@pytest.fixture
def proxies():
    made = []

    def make(upstream, **kw):
        made.append(FaultProxy(upstream, **kw))
        return made[-1]

    yield make
    for p in made:
        p.close()


def solid(colour, size=(12, 10)):
    return Image.new("RGB", size, colour)


def image_part(image):
    return {"type": "image_url", "image_url": {"url": encode_image(image)}}


def user(text, *images):
    return [{"role": "user", "content": [*(image_part(i) for i in images), {"type": "text", "text": text}]}]


def ask(client, text="what is it?", *images, **kw):
    kw.setdefault("max_tokens", 64)
    return client.chat.completions.create(model=MODEL, messages=user(text, *images), **kw)


def png_bytes(width, height, idat):
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bomb_png(width, height, full=True):
    """A PNG of width x height black pixels: a few hundred KB that decode to width*height bytes (``full``:
    the whole zlib stream; else only its first rows, enough for a header check)."""
    comp, parts, row = zlib.compressobj(9), [], b"\x00" * (width + 1)
    rows_per_block = max(1, (1 << 20) // len(row))
    block = row * rows_per_block
    for _ in range(0, height if full else rows_per_block, rows_per_block):
        parts.append(comp.compress(block))
    parts.append(comp.flush())
    return png_bytes(width, height, b"".join(parts))


def data_url(raw):
    import base64

    return "data:image/png;base64," + base64.b64encode(raw).decode()


# -- mmbench serve through the official openai client --------------------------------------------------------

def test_completion_has_id_created_model_usage_and_finish_reason(client):
    first = ask(client, "what colour?", solid("red"))
    second = ask(client, "what colour?", solid("red"))
    assert first.choices[0].message.content == "- | what colour? | 1 images 12x10#ff0000"
    assert first.choices[0].message.role == "assistant"
    assert first.object == "chat.completion" and first.model == MODEL
    assert first.id.startswith("chatcmpl-") and first.id != second.id
    assert isinstance(first.created, int) and abs(first.created - time.time()) < 60
    assert first.choices[0].finish_reason == "stop"
    usage = first.usage
    assert usage.completion_tokens == 8 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens > 0 and usage.model_extra.get("estimated") is True  # no tokenizer: estimated
    short = ask(client, "one two three four five", max_tokens=3)
    assert short.choices[0].message.content == "- | one" and short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 3
    new_name = client.chat.completions.create(model=MODEL, messages=user("x"), max_completion_tokens=2)
    assert new_name.choices[0].finish_reason == "length"


def test_streamed_request_is_server_sent_events_with_the_whole_text(client):
    plain = ask(client, "stream me", solid("blue"))
    chunks = list(ask(client, "stream me", solid("blue"), stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].id.startswith("chatcmpl-")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert any(c.choices and c.choices[0].delta.content == text for c in chunks)  # one chunk has it all
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == plain.usage.total_tokens
    no_usage = list(ask(client, "stream me", solid("blue"), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in no_usage if c.choices) == text


def test_several_images_arrive_in_order(client):
    red, green = solid("red", (8, 8)), solid((0, 255, 0), (16, 4))
    one = ask(client, "two?", red, green).choices[0].message.content
    other = ask(client, "two?", green, red).choices[0].message.content
    assert one == "- | two? | 2 images 8x8#ff0000 16x4#00ff00"
    assert other == "- | two? | 2 images 16x4#00ff00 8x8#ff0000"


def test_stop_string_and_list_cut_at_the_whole_string(client):
    text = "xa yab z"
    as_string = ask(client, text, stop="ab").choices[0].message.content
    as_list = ask(client, text, stop=["zz", "ab"]).choices[0].message.content
    assert as_string == as_list == "- | xa y"  # not cut at the first "a" (the string is not split)


def test_system_message_and_plain_string_content(client):
    out = client.chat.completions.create(model=MODEL, max_tokens=20, messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}])
    assert out.choices[0].message.content == "be brief | hello | 0 images"


TINY_PNG = encode_image(solid("red"))
BAD_REQUESTS = {
    "max_tokens=0": dict(max_tokens=0),
    "max_tokens<0": dict(max_tokens=-5),
    "max_tokens not int": dict(extra_body={"max_tokens": "12"}),
    "max_tokens over the limit": dict(max_tokens=10 ** 6),
    "max_completion_tokens=0": dict(max_completion_tokens=0),
    "n=2": dict(n=2),
    "temperature=3": dict(temperature=3),
    "temperature<0": dict(temperature=-0.5),
    "top_p=1.5": dict(top_p=1.5),
    "stop of numbers": dict(extra_body={"stop": [1, 2]}),
    "empty stop": dict(stop=["", "x"]),
    "stream not bool": dict(extra_body={"stream": "yes"}),
    "messages empty": dict(extra_body={"messages": []}),
    "messages a string": dict(extra_body={"messages": "hi"}),
    "message a list": dict(extra_body={"messages": [["user", "hi"]]}),
    "content a number": dict(extra_body={"messages": [{"role": "user", "content": 5}]}),
    "part a string": dict(extra_body={"messages": [{"role": "user", "content": ["hi"]}]}),
    "unknown part": dict(extra_body={"messages": [{"role": "user", "content": [{"type": "video", "v": 1}]}]}),
    "text part without text": dict(extra_body={"messages": [{"role": "user", "content": [{"type": "text"}]}]}),
    "assistant turn": dict(extra_body={"messages": [{"role": "assistant", "content": "hi"},
                                                    {"role": "user", "content": "and?"}]}),
    "no user": dict(extra_body={"messages": [{"role": "system", "content": "hi"}]}),
    "image url over http": dict(extra_body={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]}]}),
    "image_url without url": dict(extra_body={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"detail": "low"}}]}]}),
    "image not base64": dict(extra_body={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]}),
    "image not an image": dict(extra_body={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8gd29ybGQ="}}]}]}),
    "image truncated": dict(extra_body={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": TINY_PNG[:len(TINY_PNG) // 2 // 4 * 4]}}]}]}),
    "decompression bomb (DecompressionBombError)": dict(extra_body={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(bomb_png(30000, 30000, full=False))}}]}]}),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_a_400_in_the_openai_shape_and_the_server_keeps_serving(client, case):
    kwargs = dict(BAD_REQUESTS[case])
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, "x", **kwargs)
    err = info.value
    assert err.status_code == 400
    assert set(err.body) >= {"message", "type", "param", "code"} and err.body["type"] == "invalid_request_error"
    assert err.body["message"]
    assert ask(client, "still there?").choices[0].message.content == "- | still there? | 0 images"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_real_decompression_bomb_in_the_warning_range_is_refused(client):
    """12000 x 12000 (over PIL's limit, under twice it: PIL only warns) with its whole zlib stream."""
    bomb = data_url(bomb_png(12000, 12000))
    assert len(bomb) < 1 << 20
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": bomb}}, {"type": "text", "text": "x"}]}])
    assert info.value.body["code"] == "image_too_large" and "12000x12000" in info.value.body["message"]
    assert info.value.body["param"] == "messages[0].content[0].image_url"
    assert ask(client, "ok").choices[0].message.content == "- | ok | 0 images"


def test_unknown_model_is_404_and_route_errors(client, served):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=user("x"), max_tokens=3)
    assert info.value.body["code"] == "model_not_found" and MODEL in info.value.body["message"]
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    status, body, _ = raw(served[1], post(b"{}", path="/v1/nope"))
    assert status == 404 and body["error"]["code"] == "not_found"
    for method in ("PUT", "BREW"):
        status, body, _ = raw(served[1], f"{method} /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert status == 405 and body["error"]["type"] == "invalid_request_error"


def test_one_bad_request_in_a_batch_fails_alone(client):
    prompts = ["a", "b RAISE", "c", "d"]
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ask, client, p) for p in prompts]
    assert futures[0].result().choices[0].message.content == "- | a | 0 images"
    with pytest.raises(openai.BadRequestError, match="cannot take this request"):
        futures[1].result()
    assert [f.result().choices[0].message.content for f in (futures[2], futures[3])] == \
        ["- | c | 0 images", "- | d | 0 images"]


# -- raw HTTP: what the openai client cannot send ------------------------------------------------------------

def post(body: bytes, headers: str | None = None, path: str = "/v1/chat/completions") -> bytes:
    if headers is None:
        headers = f"Content-Length: {len(body)}\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}\r\n"
            ).encode() + body


def raw(port: int, data: bytes, half_close: bool = False):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        body = resp.read()
        return resp.status, json.loads(body), resp.getheader("Connection")


GOOD = json.dumps({"model": MODEL, "max_tokens": 9, "messages": [{"role": "user", "content": "raw"}]}).encode()
RAW_CASES = {
    "malformed JSON": (post(b'{"model": "scripted", "messages": [}'), 400, False),
    "JSON not an object": (post(b'[1, 2]'), 400, False),
    "body not UTF-8": (post(b'{"a": "\xff\xfe"}'), 400, False),
    "non-numeric Content-Length": (post(GOOD, "Content-Length: twelve\r\n"), 400, True),
    "negative Content-Length": (post(GOOD, "Content-Length: -5\r\n"), 400, True),
    "two Content-Lengths": (post(GOOD, f"Content-Length: {len(GOOD)}\r\nContent-Length: 3\r\n"), 400, True),
    "missing Content-Length": (post(GOOD, ""), 411, True),
    "body over the limit": (post(b"", "Content-Length: 999999999999\r\n"), 413, True),
    "chunked body over the limit": (post(b"4000000\r\n", "Transfer-Encoding: chunked\r\n"), 413, True),
    "broken chunked body": (post(b"zz\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\n"), 400, True),
    "unknown Transfer-Encoding": (post(GOOD, "Transfer-Encoding: gzip\r\n"), 400, True),
}


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_malformed_http_gets_a_json_error_and_the_server_keeps_serving(client, served, case):
    data, status, closes = RAW_CASES[case]
    got, body, connection = raw(served[1], data)
    assert got == status and set(body["error"]) == {"message", "type", "param", "code"}
    assert (connection == "close") == closes
    assert ask(client, "next").choices[0].message.content == "- | next | 0 images"


def test_chunked_request_body_is_accepted(served):
    chunked = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (GOOD[:10], GOOD[10:])) + b"0\r\n\r\n"
    status, body, _ = raw(served[1], post(chunked, "Transfer-Encoding: chunked\r\n"))
    assert status == 200 and body["choices"][0]["message"]["content"] == "- | raw | 0 images"


def test_body_shorter_than_content_length(served):
    status, body, _ = raw(served[1], post(GOOD[:20], f"Content-Length: {len(GOOD)}\r\n"), half_close=True)
    assert status == 400 and "ended after 20" in body["error"]["message"]


def test_a_stalled_client_gets_408_and_frees_its_thread():
    srv = start_server(read_timeout_s=0.3)
    try:
        port = srv.server_address[1]
        start = time.monotonic()
        status, body, connection = raw(port, post(GOOD[:20], f"Content-Length: {len(GOOD)}\r\n"))
        assert status == 408 and connection == "close" and time.monotonic() - start < 5
        assert raw(port, post(GOOD))[0] == 200
    finally:
        stop_server(srv)


# -- the openai-chat adapter through injected faults ---------------------------------------------------------

REQUESTS = [GenerationRequest(prompt=f"question {i}", images=(solid((20 * i, 0, 255 - 20 * i)),),
                              system="sys" if i % 2 else None) for i in range(6)]
REQUESTS.append(GenerationRequest(prompt="two images", images=(solid("red", (6, 6)), solid("blue", (9, 3)))))
CONFIG = GenerationConfig(max_new_tokens=16)


def adapter(url, **args):
    spec = {"base_url": url, "model": MODEL, "max_concurrency": "3", "backoff_s": "0.001", "backoff_max_s": "0.01",
            "timeout_s": "2", "max_retries": "4", **{k: str(v) for k, v in args.items()}}
    return load_model(ModelSpec("openai-chat", spec))


def generate(url, requests=REQUESTS, **args):
    model = adapter(url, **args)
    try:
        gens = model.generate(model.prepare(requests, CONFIG), CONFIG)
        model.retries = sum(g.events.count("retry") for g in gens)  # (the requests' declared events)
        model.events = [g.events for g in gens]
        return [(g.text, g.prompt_sent) for g in gens], model
    finally:
        model.close()


@pytest.fixture(scope="module")
def fault_free(served):
    return generate(served[0])[0]


def test_fault_free_answers_carry_every_image_in_order(fault_free):
    assert fault_free[-1][0] == "- | two images | 2 images 6x6#ff0000 9x3#0000ff"
    assert fault_free[1][0].startswith("sys | question 1 | 1 images")
    assert fault_free[1][1].count("<png data URL>") == 1 and fault_free[-1][1].count("<png data URL>") == 2


@pytest.mark.parametrize("fault", ["500", "503", "429", "drop", "reset", "truncate", "chunked_cut", "garbage",
                                   "bad_gzip", "delay:0.6"])
def test_openai_chat_recovers_from_each_fault_with_identical_outputs(served, proxies, fault_free, fault):
    proxy = proxies(served[0], sequence=[fault, fault, "pass", fault], share=0.3, kinds=[fault], seed=1)
    got, model = generate(proxy.url, timeout_s=0.3 if fault.startswith("delay") else 2, max_retries=8)
    assert got == fault_free
    assert proxy.log.count(fault) >= 3 and model.retries == proxy.log.count(fault)


def test_openai_chat_recovers_from_a_mix_of_faults(served, proxies, fault_free):
    kinds = ["500", "429", "drop", "reset", "truncate", "chunked_cut", "garbage", "bad_gzip", "delay:0.4"]
    proxy = proxies(served[0], share=0.5, kinds=kinds, seed=7)
    got, model = generate(proxy.url, requests=REQUESTS * 3, timeout_s=0.25, max_retries=10)
    assert got == fault_free * 3
    assert len(set(proxy.log) - {"pass"}) >= 5


def test_the_model_list_is_fetched_through_faults_too(served, proxies):
    proxy = proxies(served[0], sequence=["drop", "truncate", "500"])
    model = load_model(ModelSpec("openai-chat", {"base_url": proxy.url, "backoff_s": "0.001"}))
    try:
        assert model.served_model == MODEL
    finally:
        model.close()


def test_retry_after_is_honoured(served, proxies, fault_free):
    proxy = proxies(served[0], sequence=["429:0.4"])
    start = time.monotonic()
    got, _ = generate(proxy.url, requests=REQUESTS[:1], backoff_s=0.001)
    assert time.monotonic() - start >= 0.4 and got == fault_free[:1]


def test_gives_up_after_the_bounded_attempts_with_one_line(served, proxies):
    proxy = proxies(served[0], then="500")
    start = time.monotonic()
    with pytest.raises(MMBenchError) as info:
        generate(proxy.url, requests=REQUESTS[:1], max_retries=2)
    msg = str(info.value)
    assert "\n" not in msg and time.monotonic() - start < 5
    assert f"{proxy.url}/chat/completions failed after 3 attempts" in msg and "HTTP 500" in msg
    assert proxy.log == ["500"] * 3


def test_gives_up_when_the_retry_budget_is_spent(served, proxies):
    proxy = proxies(served[0], then="429:30")
    start = time.monotonic()
    with pytest.raises(MMBenchError, match="retry_budget_s=1") as info:
        generate(proxy.url, requests=REQUESTS[:1], retry_budget_s=1, max_retries=50)
    assert time.monotonic() - start < 2 and "HTTP 429" in str(info.value) and proxy.log == ["429:30"]


def test_a_4xx_other_than_429_is_not_retried(served, proxies):
    proxy = proxies(served[0], sequence=["400"])
    with pytest.raises(MMBenchError, match="answered HTTP 400: injected 400"):
        generate(proxy.url, requests=REQUESTS[:1])
    assert proxy.log == ["400"]


def test_a_timeout_that_never_ends_gives_up_in_bounded_time(served, proxies):
    proxy = proxies(served[0], then="delay:3")
    start = time.monotonic()
    with pytest.raises(MMBenchError, match="failed after 2 attempts .*Timeout"):
        generate(proxy.url, requests=REQUESTS[:1], timeout_s=0.2, max_retries=1)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("status", ["500", "401", "400"])
def test_an_echoed_api_key_never_leaks(served, proxies, monkeypatch, caplog, status):
    monkeypatch.setenv("MMBENCH_FAULT_KEY", KEY)
    caplog.set_level(logging.DEBUG, logger="mmbench.adapters.openai_api")
    proxy = proxies(served[0], then=f"echo:{status}")
    with pytest.raises(MMBenchError) as info:
        generate(proxy.url, requests=REQUESTS[:2], api_key_env="MMBENCH_FAULT_KEY", max_retries=2)
    msg = str(info.value)
    assert KEY not in msg and "<redacted>" in msg and "Bearer <redacted>" in msg
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert KEY not in caplog.text and KEY[:12] not in msg
    if status == "500":
        assert "<redacted>" in caplog.text  # the retries were logged, redacted


def test_empty_choices_stop_the_run_and_null_content_is_an_empty_answer(served, proxies):
    proxy = proxies(served[0], sequence=["no_choices"])
    with pytest.raises(MMBenchError, match=f"model '{MODEL}' at .* answered without a choice"):
        generate(proxy.url, requests=REQUESTS[:1])
    proxy.set(sequence=["null_content"])
    got, model = generate(proxy.url, requests=REQUESTS[:2], max_concurrency=1)
    assert got[0][0] == "" and got[1][0].startswith("sys | question 1")
    assert model.events[0] == ("null_content", "empty_generation") and model.events[1] == ()


@pytest.mark.parametrize("url", ["localhost:8000/v1", "127.0.0.1:8000", "ftp://127.0.0.1/v1"])
def test_base_url_without_a_scheme_is_refused(url):
    with pytest.raises(MMBenchError, match="add http:// or https://") as info:
        adapter(url)
    assert "\n" not in str(info.value)


def test_retry_options_stay_out_of_the_cache_key(served):
    a, b = adapter(served[0]), adapter(served[0], max_retries=9, backoff_s=2, retry_budget_s=5, timeout_s=7)
    c = adapter(served[0], served_revision="v2")
    try:
        assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    finally:
        for m in (a, b, c):
            m.close()


# -- mmbench run ---------------------------------------------------------------------------------------------

def run(capsys, url, data, tasks, out, extra="", code=0):
    margs = f"base_url={url},model={MODEL},max_concurrency=1,backoff_s=0.001,backoff_max_s=0.01,timeout_s=0.3" + extra
    got = main(["run", "--model", "openai-chat", "--model-args", margs, "--tasks", "tiny-vqa", "--include-path",
                str(tasks), "--data-dir", str(data), "--output-dir", str(out), "--no-progress", "--batch-size", "8"])
    captured = capsys.readouterr()
    assert got == code, captured.err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir, captured.err


def test_run_through_faults_matches_a_fault_free_run_and_a_give_up_keeps_finished_batches(
        capsys, monkeypatch, served, proxies, gen_data, tmp_path):
    data, tasks = gen_data
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    clean, clean_dir, _ = run(capsys, served[0], data, tasks, tmp_path / "clean")
    expected = predictions(clean_dir, clean.results[0])
    assert len(expected) == 24

    proxy = proxies(served[0], share=0.4, kinds=["500", "429", "drop", "truncate", "chunked_cut", "garbage",
                                                 "delay:0.5"], seed=3)
    faulty, faulty_dir, _ = run(capsys, proxy.url, data, tasks, tmp_path / "faulty", ",max_retries=10")
    assert predictions(faulty_dir, faulty.results[0]) == expected
    assert faulty.results[0].metrics == clean.results[0].metrics and faulty.results[0].counters["retry"] > 0

    # one batch of 8 passes, then the server fails (echoing the key): exit 2, one line, nothing leaked
    proxy.set(sequence=["pass"] * 8, then="echo:503")
    _, failed_dir, err = run(capsys, proxy.url, data, tasks, tmp_path / "resume", ",max_retries=2", code=2)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmbench: error: ")
    assert f"{proxy.url}/chat/completions failed after 3 attempts" in lines[0] and "<redacted>" in lines[0]
    assert KEY not in err
    failures = json.loads((failed_dir / "results.json").read_text())["failures"]
    assert len(failures) == 1 and "failed after 3 attempts" in failures[0]["error"]

    # the same command with more retries against a healthy server resumes from the cache
    proxy.set()
    resumed, resumed_dir, _ = run(capsys, proxy.url, data, tasks, tmp_path / "resume", ",max_retries=5")
    assert resumed.results[0].n_cached == 8
    assert predictions(resumed_dir, resumed.results[0]) == expected
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
