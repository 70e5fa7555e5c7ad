"""Several images in one request, placed where the prompt marks them: the request's parts, the chat message the
hf-vlm adapter renders, the openai-chat body, `mmbench serve`'s parsing, MMMU's ``<image n>`` tags, and the
one-line refusals of families that take one image or only images in front."""

from __future__ import annotations

import base64
import io

import pytest

from mmbench.capabilities import IMAGE_MARKER as M
from mmbench.capabilities import GenerationRequest
from mmbench.errors import MMBenchError
from mmbench.tasks.multiple_choice import interleave

torch = pytest.importorskip("torch")

import tiny_vlms as tv  # noqa: E402

A, B, C = (tv.random_image(i, (32 + 8 * i, 32)) for i in range(3))


def test_parts_in_order_and_images_in_front_without_markers():
    assert GenerationRequest("describe", (A, B)).parts() == [0, 1, "describe"]
    assert not GenerationRequest("describe", (A, B)).interleaved
    req = GenerationRequest(f"compare {M} with {M}?", (A, B))
    assert req.interleaved and req.parts() == ["compare ", 0, " with ", 1, "?"]
    assert not req.images_in_front()
    assert GenerationRequest(f"{M}{M} which is bigger", (A, B)).images_in_front()
    with pytest.raises(MMBenchError, match="marks 1 image place"):
        GenerationRequest(f"see {M}", (A, B)).parts()


def test_mmmu_tags_become_image_places():
    # tag 2 comes first, tag 1 twice; image 3 is not named by any tag: it goes in front
    prompt, images = interleave("<image 2> and <image 1>? Options: A. <image 1>", (A, B, C), [1, 2, 3])
    assert prompt == f"{M}{M} and {M}? Options: A. {M}"
    assert images == (C, B, A, A)
    # numbers say which image each tag names (an item missing image 2 keeps that tag as text)
    prompt, images = interleave("<image 3> vs <image 2>", (A, B), [1, 3])
    assert prompt == f"{M}{M} vs <image 2>" and images == (A, B)


def test_openai_chat_sends_images_where_the_prompt_places_them():
    from mmbench.adapters.openai_api import OpenAIChat

    adapter = OpenAIChat.from_args({"base_url": "http://127.0.0.1:9/v1", "model": "m"}, name="openai-chat")
    content = adapter.messages(GenerationRequest(f"compare {M} with {M}", (A, B)))[0]["content"]
    kinds = [p["type"] for p in content]
    assert kinds == ["text", "image_url", "text", "image_url"]
    assert content[0]["text"] == "compare " and content[2]["text"] == " with "
    front = adapter.messages(GenerationRequest("describe", (A, B)))[0]["content"]
    assert [p["type"] for p in front] == ["image_url", "image_url", "text"]


def _url(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_serve_keeps_the_order_of_text_and_images():
    from mmbench.serve import RequestError, parse_messages

    def user(*parts):
        return [{"role": "user", "content": [{"type": "text", "text": p} if isinstance(p, str) else
                                             {"type": "image_url", "image_url": {"url": _url(p)}} for p in parts]}]

    front = parse_messages(user(A, B, "which is bigger", "answer briefly"))
    assert front.prompt == "which is bigger\nanswer briefly" and len(front.images) == 2 and not front.interleaved
    mixed = parse_messages(user(A, "compare", B, "with this"))
    assert mixed.prompt == f"{M}compare{M}with this" and mixed.parts() == [0, "compare", 1, "with this"]
    assert [im.size for im in mixed.images] == [A.size, B.size]
    with pytest.raises(RequestError, match="U\\+FFFC"):
        parse_messages(user(f"a {M} b"))


@pytest.fixture(scope="module")
def blip2_and_llava(tmp_path_factory):
    from mmbench.adapters import load_model
    from mmbench.specs import ModelSpec

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    for family, preset in (("blip2", "hf-blip2"), ("llava", "hf-llava")):
        folder = tv.BUILDERS[family](tmp_path_factory.mktemp(family))
        out[family] = load_model(ModelSpec(preset, {"pretrained": str(folder), "device": "cpu"}))
    yield out
    torch.set_num_threads(before)


def test_interleaved_prompt_through_a_chat_template_and_a_prompt_format(blip2_and_llava, monkeypatch):
    llava = blip2_and_llava["llava"]
    seen = []
    real = llava.processor.apply_chat_template
    monkeypatch.setattr(llava.processor, "apply_chat_template", lambda m, **kw: seen.append(m) or real(m, **kw))
    prepared = llava.prepare([GenerationRequest(f"what colour {M} or {M}", (A, B))], _greedy())
    assert seen[0][-1]["content"] == [{"type": "text", "text": "what colour "}, {"type": "image"},
                                      {"type": "text", "text": " or "}, {"type": "image"}]
    # LLaVA-1.5's template writes a user turn's images first, whatever their order: the family's own layout
    assert prepared.prompts == ["USER: <image>\n<image>\nwhat colour  or  ASSISTANT:"]
    # the tiny LLaVA has 16 patches per image: two images, 32 image positions
    assert prepared.image_tokens == [32]
    # without a template the prompt_format places each image at its marker
    llava.prompts.template = type(llava.template)(None, "none")
    prepared = llava.prepare([GenerationRequest(f"what colour {M} or {M}", (A, B))], _greedy())
    assert prepared.prompts == ["USER: \nwhat colour <image> or <image> ASSISTANT:"]
    text = llava.generate(prepared, _greedy())[0].text
    assert text.strip()


def test_one_image_families_refuse_several_and_images_inside_the_text(blip2_and_llava):
    blip2 = blip2_and_llava["blip2"]
    with pytest.raises(MMBenchError, match="hf-blip2 takes one image per prompt, got 2"):
        blip2.prepare([GenerationRequest("a", (A, B))], _greedy())
    with pytest.raises(MMBenchError, match="in front of the prompt only"):
        blip2.prepare([GenerationRequest(f"what is {M}", (A,))], _greedy())
    prepared = blip2.prepare([GenerationRequest(f"{M}what is it", (A,))], _greedy())  # in front: fine
    assert prepared.prompts == ["Question: what is it Answer:"]


def _greedy():
    from mmbench.capabilities import GenerationConfig

    return GenerationConfig(max_new_tokens=4)
