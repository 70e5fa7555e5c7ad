"""The OpenAI-compatible adapter against `mmbench serve` on 127.0.0.1: same answers as the model in process,
retries through injected failures, and the API key kept out of every result."""

from __future__ import annotations

import threading

import pytest
import torch

from mmbench.adapters import load_model
from mmbench.cli.main import main
from mmbench.results import RunResult
from mmbench.serve import ServeOptions, make_server
from mmbench.specs import ModelSpec
from test_run_generative import gen_data, predictions  # noqa: F401 - the fixture is reused
from test_scale import needs_loopback

pytestmark = needs_loopback


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    import tiny_vlms

    return tiny_vlms.make_tiny_llava(tmp_path_factory.mktemp("served") / "llava")


@pytest.fixture
def server(llava):
    torch.set_num_threads(1)
    servers = []

    def start(fail_rate=0.0):
        adapter = load_model(ModelSpec("hf-llava", {"pretrained": str(llava)}))
        srv = make_server(adapter, ServeOptions(port=0, fail_rate=fail_rate, seed=3), "tiny-llava")
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/v1"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()
        srv.worker.stop()


def run(capsys, model, margs, data, tasks, out):
    code = main(["run", "--model", model, "--model-args", margs, "--tasks", "tiny-vqa", "--include-path", str(tasks),
                 "--data-dir", str(data), "--output-dir", str(out), "--no-progress", "--batch-size", "8"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir


def test_served_model_reproduces_in_process_scores_through_failures(capsys, monkeypatch, server, llava, gen_data,
                                                                   tmp_path):
    data, tasks = gen_data
    local, local_dir = run(capsys, "hf-llava", f"pretrained={llava}", data, tasks, tmp_path / "local")
    monkeypatch.setenv("MMBENCH_TEST_KEY", "sk-secret-do-not-store")
    url = server(fail_rate=0.2)
    served, served_dir = run(capsys, "openai-chat", f"base_url={url},api_key_env=MMBENCH_TEST_KEY,max_concurrency=4,"
                             f"backoff_s=0.01", data, tasks, tmp_path / "served")
    r_local, r_served = local.results[0], served.results[0]
    assert [m["value"] for m in r_local.metrics] == [m["value"] for m in r_served.metrics]
    answers = [p[2] for p in predictions(local_dir, r_local)]
    assert answers == [p[2] for p in predictions(served_dir, r_served)]
    assert r_served.counters["retry"] > 0  # the injected failures happened and were retried (per-item events)
    assert r_served.model_info["served_model"] == "tiny-llava" and r_served.model_info["api_key"] == "set"
    for path in served_dir.rglob("*"):
        if path.is_file():
            assert b"sk-secret-do-not-store" not in path.read_bytes()


def test_unreachable_or_failing_server_is_a_clear_error(capsys, server, gen_data, tmp_path):
    data, tasks = gen_data
    url = server(fail_rate=1.0)
    code = main(["run", "--model", "openai-chat", "--model-args", f"base_url={url},model=x,max_retries=2,backoff_s=0.01",
                 "--tasks", "tiny-vqa", "--include-path", str(tasks), "--data-dir", str(data),
                 "--output-dir", str(tmp_path), "--no-progress", "--limit", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "failed after 3 attempts" in err


def test_stopping_the_worker_ends_its_thread_and_fails_what_is_queued():
    import time as _time

    from mmbench.capabilities import Generation, GenerationConfig, GenerationRequest
    from mmbench.serve import BatchingWorker

    class Slow:  # a model call that is still running when stop() is called
        def prepare(self, requests, config):
            return requests

        def generate(self, prepared, config):
            _time.sleep(0.3)
            return [Generation(text="ok", prompt_sent="") for _ in prepared]

    worker = BatchingWorker(Slow(), ServeOptions(port=0, max_batch=1, batch_wait_s=0.0))
    cfg = GenerationConfig()
    first = worker.submit(GenerationRequest(prompt="a"), cfg)
    _time.sleep(0.1)  # the first request is inside the model now
    second = worker.submit(GenerationRequest(prompt="b"), cfg)
    worker.stop()
    assert not worker.thread.is_alive()  # never left inside the model at interpreter exit
    assert first.result().text == "ok"
    with pytest.raises(RuntimeError, match="shutting down"):
        second.result()


def test_openai_client_gets_the_in_process_answer_with_tokenizer_counted_usage(server, llava):
    """The official openai client against a served tiny LLaVA: the answer the adapter gives in process,
    usage counted by the model's tokenizer (not estimated), and the same text streamed."""
    openai = pytest.importorskip("openai")
    import tiny_models

    from mmbench.adapters.openai_api import encode_image
    from mmbench.capabilities import GenerationConfig, GenerationRequest

    url = server()
    image = tiny_models.draw("red", "circle", jitter=0)
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": encode_image(image)}},
                                             {"type": "text", "text": "what color is the shape?"}]}]
    out = client.chat.completions.create(model="tiny-llava", messages=messages, max_tokens=6)
    local = load_model(ModelSpec("hf-llava", {"pretrained": str(llava)}))
    config = GenerationConfig(max_new_tokens=6)
    # the served image went through a PNG round trip, as it does here
    from mmbench.serve import decode_data_url

    request = GenerationRequest(prompt="what color is the shape?", images=(decode_data_url(encode_image(image)),))
    expected = local.generate(local.prepare([request], config), config)[0]
    assert out.choices[0].message.content == expected.text
    usage = out.usage
    assert "estimated" not in (usage.model_extra or {})
    assert usage.completion_tokens == expected.extra["new_tokens"] and usage.prompt_tokens > 5
    assert out.choices[0].finish_reason == ("length" if usage.completion_tokens == 6 else "stop")
    streamed = client.chat.completions.create(model="tiny-llava", messages=messages, max_tokens=6, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == expected.text
    client.close()
