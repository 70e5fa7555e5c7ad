"""The Hugging Face image+prompt->text adapter (hf-vlm and its presets) on tiny random LLaVA, LLaVA-NeXT,
Idefics v1, Idefics2 and BLIP-2 (OPT and T5) models: batch invariance, prompts, decoding options, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import tiny_vlms as tv  # noqa: E402
from mmbench.adapters import capabilities_of, load_model  # noqa: E402
from mmbench.adapters.hf_vlm import truncate_at_stop  # noqa: E402
from mmbench.capabilities import (Capability, GenerationConfig, GenerationRequest,  # noqa: E402
                                  ImagePromptToText)
from mmbench.errors import MMBenchError  # noqa: E402
from mmbench.specs import ModelSpec  # noqa: E402

PRESETS = {"llava": "hf-llava", "llava_next": "hf-llava", "idefics": "hf-idefics", "idefics2": "hf-idefics",
           "blip2": "hf-blip2", "blip2_t5": "hf-blip2"}
CHAT_FAMILIES = ("llava", "llava_next", "idefics2")  # their processors carry a chat template
MULTI_IMAGE_FAMILIES = ("llava", "llava_next", "idefics", "idefics2")  # BLIP-2 takes one image per prompt
PROMPTS = tv.VARIED_PROMPTS
# 16 requests: prompt lengths from 1 to 16 words, four image sizes (LLaVA-NeXT tiles them differently)
REQUESTS = tv.varied_requests(16)
GREEDY = GenerationConfig(max_new_tokens=8)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run ~10x faster on one thread than on two busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """family -> a saved tiny model folder, built on first use."""
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = tv.BUILDERS[family](tmp_path_factory.mktemp(family))
        return built[family]
    return get


@pytest.fixture(scope="module")
def model(folder):
    """(family, adapter name or preset, extra args) -> a loaded adapter, loaded once per module."""
    loaded: dict = {}

    def get(family: str, name: str | None = None, **args: str):
        key = (family, name, tuple(sorted(args.items())))
        if key not in loaded:
            spec = ModelSpec(name or PRESETS[family], {"pretrained": str(folder(family)), "device": "cpu", **args})
            loaded[key] = load_model(spec)
        return loaded[key]
    return get


def run(adapter, requests, config=GREEDY, batch_size=16):
    return tv.run_requests(adapter, requests, config, batch_size)


@pytest.mark.parametrize("family", list(PRESETS))
def test_greedy_is_the_same_at_batch_sizes_1_3_16(model, family):
    adapter = model(family)
    by_size = {bs: run(adapter, REQUESTS, batch_size=bs) for bs in (1, 3, 16)}
    texts = {bs: [g.text for g in gens] for bs, gens in by_size.items()}
    assert texts[3] == texts[1]
    assert texts[16] == texts[1]
    assert [g.prompt_sent for g in by_size[16]] == [g.prompt_sent for g in by_size[1]]
    # non-trivial: min_new_tokens and suppressed special tokens in the tiny models' generation config make
    # random weights write words, so a padding or masking bug shows up as a changed text
    events = [e for gens in by_size.values() for g in gens for e in g.events]
    assert all(texts[1]) and "empty_generation" not in events
    assert "unbatched_request" not in events  # really batched, not one request at a time
    greedy_ids = [g.token_ids for g in by_size[1]]
    assert all(greedy_ids) and greedy_ids == [g.token_ids for g in by_size[16]]  # greedy ids are part of the output
    assert len(set(texts[1])) >= 3
    assert all(0 < g.extra["new_tokens"] <= GREEDY.max_new_tokens for g in by_size[1])


@pytest.mark.parametrize("family", list(PRESETS))
def test_images_reach_the_model(model, family):
    from PIL import Image

    colours = [(255, 0, 0), (0, 0, 255), (0, 0, 0), (255, 255, 255), (0, 255, 0), (128, 128, 128)]
    same_prompt = [GenerationRequest("what is in this image", (Image.new("RGB", (40, 40), c),)) for c in colours]
    adapter = model(family)
    captured: list = []

    def record(module, args, kwargs):  # any image tensor ([batch, 3, h, w]) a module of the model receives
        for value in (*args, *kwargs.values()):
            if isinstance(value, torch.Tensor) and value.ndim == 4 and value.shape[1] == 3 and value.is_floating_point():
                captured.append(tuple(round(x, 4) for x in value.float().mean(dim=(0, 2, 3)).tolist()))

    handles = [m.register_forward_pre_hook(record, with_kwargs=True) for m in adapter.model.modules()]
    seen = []
    try:
        for request in same_prompt:
            captured.clear()
            run(adapter, [request], batch_size=1)
            seen.append(captured[0] if captured else None)
    finally:
        for h in handles:
            h.remove()
    # each request's own image reached the vision encoder: six colours, six different per-channel means
    assert None not in seen and len(set(seen)) == len(colours), seen


@pytest.mark.parametrize("family", MULTI_IMAGE_FAMILIES)
def test_mixed_image_counts_batch_like_single_requests(model, family):
    requests = [GenerationRequest("what colour", (tv.random_image(1),)),
                GenerationRequest("describe the two", (tv.random_image(2), tv.random_image(3, (64, 32)))),
                GenerationRequest("no image here please", ()),
                GenerationRequest("what shape", (tv.random_image(4),), system="you are helpful")]
    adapter = model(family)
    batched = [g.text for g in run(adapter, requests, batch_size=4)]
    assert batched == [g.text for g in run(adapter, requests, batch_size=1)]


@pytest.mark.parametrize("family", ["llava", "idefics2", "blip2"])
def test_generic_adapter_matches_the_preset(model, family):
    preset = model(family)
    generic = model(family, "hf-vlm", prompt_format=preset.args.prompt_format)
    assert [g.text for g in run(generic, REQUESTS[:5])] == [g.text for g in run(preset, REQUESTS[:5])]
    assert generic.describe()["model_class"] == preset.describe()["model_class"]
    assert isinstance(generic, ImagePromptToText)
    assert capabilities_of(ModelSpec(PRESETS[family])) == frozenset({Capability.GENERATE_TEXT})


@pytest.mark.parametrize("family", CHAT_FAMILIES)
@pytest.mark.parametrize("system", [None, "you are helpful"])
def test_prompt_sent_is_the_processors_chat_template(model, folder, family, system):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder(family))
    image = tv.random_image(7)
    request = GenerationRequest("what shape is this", (image,), system=system)
    messages = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": request.prompt}]})
    adapter = model(family)
    prepared = adapter.prepare([request], GREEDY)
    assert adapter.generate(prepared, GREEDY)[0].prompt_sent == processor.apply_chat_template(
        messages, add_generation_prompt=True)
    # the tokens too, including BOS handling, equal transformers' own tokenising path
    messages[-1]["content"][0]["image"] = image
    reference = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=True, return_tensors="pt")
    assert prepared.inputs[0]["input_ids"].tolist() == reference["input_ids"].tolist()


def test_llava_prompt_layout(model):
    gen = run(model("llava"), [GenerationRequest("what shape", (tv.random_image(0),), system="be short")])[0]
    assert gen.prompt_sent == "be short USER: <image>\nwhat shape ASSISTANT:"
    gen = run(model("llava_next"), [GenerationRequest("what shape", (tv.random_image(0),))])[0]
    assert gen.prompt_sent == "<s>[INST] <image>\nwhat shape [/INST]"  # BOS from the template: not added twice


@pytest.mark.parametrize("family", ["blip2", "blip2_t5"])
def test_blip2_uses_prompt_format(model, folder, family):
    from transformers import AutoProcessor

    image = tv.random_image(3)
    adapter = model(family)
    prepared = adapter.prepare([GenerationRequest("what colour", (image,))], GREEDY)
    assert prepared.prompts == ["Question: what colour Answer:"]
    processor = AutoProcessor.from_pretrained(folder(family))
    reference = processor(images=[image], text=["Question: what colour Answer:"], return_tensors="pt")
    ids = prepared.inputs[0]["input_ids"][0].tolist()
    assert ids == reference["input_ids"][0].tolist()
    image_id = processor.tokenizer.convert_tokens_to_ids(tv.IMAGE_TOKEN)
    assert ids[:4] == [image_id] * 4  # one token per Q-Former query, put in front by the processor
    described = adapter.describe()
    assert described["chat_template_source"] == "none" and described["image_slots"] == "processor"
    assert described["prompt_format"] == "Question: {prompt} Answer:"


def test_qformer_attention_measures_read_the_queries_and_their_patch_focus(model):
    """BLIP-2: the language model's attention share on the query outputs, and the queries' cross-attention
    focus over the vision tokens, checked against the Q-Former's own weights computed here from scratch."""
    import math

    adapter = model("blip2")
    requests = [GenerationRequest(p, (tv.random_image(i),)) for i, p in enumerate(["what colour", "how many", "a"])]
    prepared = adapter.prepare(requests, GREEDY)
    values = adapter.image_attention(prepared, GREEDY)
    assert [v["measure"] for v in values] == ["qformer_query_share"] * 3
    assert all(0.0 < v["value"] < 1.0 for v in values)
    focus = [v["also"]["qformer_patch_focus"] for v in values]
    m = adapter.model
    m.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            pixels = prepared.inputs[0]["pixel_values"].to(m.dtype)
            image = m.vision_model(pixel_values=pixels).last_hidden_state
            q = m.qformer(query_embeds=m.query_tokens.expand(len(requests), -1, -1), encoder_hidden_states=image,
                          encoder_attention_mask=torch.ones(image.shape[:2], dtype=torch.long), output_attentions=True)
    finally:
        m.set_attn_implementation("sdpa")
    weights = [w for w in q.cross_attentions if w is not None]
    assert weights  # every cross-attention layer's [batch, heads, queries, vision tokens]
    entropy = torch.stack([-(w * w.log()).sum(-1).mean((1, 2)) for w in weights]).mean(0)
    expected = (1 - entropy / math.log(image.shape[1])).tolist()
    assert focus == pytest.approx(expected, abs=1e-5)
    # a property of the image alone: the same image with another prompt gives the same focus
    alone = adapter.image_attention(adapter.prepare([GenerationRequest("describe", requests[0].images)], GREEDY),
                                    GREEDY)
    assert alone[0]["also"]["qformer_patch_focus"] == pytest.approx(focus[0], abs=1e-5)


def test_idefics_v1_interleaves_images(model):
    adapter = model("idefics")
    request = GenerationRequest("what shape", (tv.random_image(5),), system="reply short")
    prepared = adapter.prepare([request], GREEDY)
    assert prepared.prompts == ["reply short\nUser:<image>what shape<end_of_utterance>\nAssistant:"]
    tok = adapter.tokenizer
    tokens = tok.convert_ids_to_tokens(prepared.inputs[0]["input_ids"][0].tolist())
    assert tokens[:6] == ["<s>", "reply", "short", "user", ":", tv.FAKE_IMAGE_TOKEN]
    assert tokens[6:8] == [tv.IMAGE_TOKEN, tv.FAKE_IMAGE_TOKEN]
    assert tuple(prepared.inputs[0]["pixel_values"].shape[:2]) == (1, 1)
    assert adapter.describe()["image_slots"] == "interleaved"


def test_prompt_format_placeholders_without_chat_template(model):
    adapter = model("llava", "hf-vlm", chat_template="none",
                    prompt_format="SYS {system} | USER: {image}{prompt} {braces} ASSISTANT:")
    request = GenerationRequest("what {x}", (tv.random_image(0), tv.random_image(1)), system="be short")
    assert adapter.prepare([request], GREEDY).prompts == [
        "SYS be short | USER: <image><image>what {x} {braces} ASSISTANT:"]
    plain = model("llava", "hf-vlm", chat_template="none")  # no {image}: placeholders go in front
    assert plain.prepare([request], GREEDY).prompts == ["be short\n<image><image>\nwhat {x}"]
    assert plain.describe()["chat_template_source"] == "none"
    assert all(g.text for g in run(plain, [request]))


def test_chat_template_file_and_fingerprint(model, folder, tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
                        "<image>{% else %}Q: {{ c['text'] }}{% endif %}{% endfor %}{% endfor %} A:")
    args = {"pretrained": str(folder("llava")), "device": "cpu", "chat_template": str(template)}
    first = load_model(ModelSpec("hf-vlm", args))
    assert first.prepare([REQUESTS[0]], GREEDY).prompts == ["<image>Q: what colour is this A:"]
    assert first.describe()["chat_template_source"] == f"file:{template}"
    template.write_text(template.read_text().replace(" A:", " Answer:"))
    second = load_model(ModelSpec("hf-vlm", args))
    assert second.fingerprint() != first.fingerprint()  # same path, other text
    base = model("llava", "hf-vlm")
    variants = [model("llava", "hf-vlm", chat_template="none"), model("llava", "hf-vlm", system_prompt="be short"),
                model("llava", "hf-vlm", prompt_format="Q: {prompt}")]
    fingerprints = {base.fingerprint(), first.fingerprint(), *(v.fingerprint() for v in variants)}
    assert len(fingerprints) == 5
    assert load_model(ModelSpec("hf-vlm", {"pretrained": str(folder("llava")), "device": "cpu",
                                           "batch_size": "2"})).fingerprint() == base.fingerprint()


def test_system_prompt_default_and_override(model):
    adapter = model("llava", "hf-vlm", system_prompt="be short")
    image = (tv.random_image(0),)
    prompts = adapter.prepare([GenerationRequest("hi", image), GenerationRequest("hi", image, system="no")],
                              GREEDY).prompts
    assert prompts == ["be short USER: <image>\nhi ASSISTANT:", "no USER: <image>\nhi ASSISTANT:"]


def test_stop_strings_truncate(model):
    adapter = model("llava")
    greedy = [g.text for g in run(adapter, REQUESTS)]
    words = greedy[1].split()
    assert len(words) >= 3
    stop = (words[2], "zzz-never")
    stopped = run(adapter, REQUESTS, GenerationConfig(max_new_tokens=8, stop=stop), batch_size=5)
    assert [g.text for g in stopped] == [truncate_at_stop(t, stop).strip() for t in greedy]
    assert stopped[1].text == " ".join(words[:2])
    # a stop string that opens a generation leaves it empty, and that is counted
    first = run(adapter, REQUESTS[:1], GenerationConfig(max_new_tokens=8, stop=(greedy[0].split()[0],)))
    assert first[0].text == "" and first[0].events == ("empty_generation",)
    assert all("empty_generation" not in g.events for g in stopped if g.text)


def test_truncate_at_stop():
    assert truncate_at_stop("a b. c\nd", ("\n", ".")) == "a b"
    assert truncate_at_stop("abc", ()) == "abc"
    assert truncate_at_stop("abc", ("", "x")) == "abc"


def test_sampling_is_seeded_and_differs_from_greedy(model):
    adapter = model("idefics2")
    sampled = GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=0.95, seed=7)
    first = [g.text for g in run(adapter, REQUESTS[:8], sampled, batch_size=8)]
    assert [g.text for g in run(adapter, REQUESTS[:8], sampled, batch_size=8)] == first
    assert first != [g.text for g in run(adapter, REQUESTS[:8], batch_size=8)]
    other_seed = GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=0.95, seed=8)
    assert [g.text for g in run(adapter, REQUESTS[:8], other_seed, batch_size=8)] != first


def test_beam_search_runs_batched(model):
    adapter = model("llava")
    beams = GenerationConfig(max_new_tokens=6, num_beams=3)
    assert [g.text for g in run(adapter, REQUESTS[:6], beams, batch_size=6)] == \
        [g.text for g in run(adapter, REQUESTS[:6], beams, batch_size=1)]


def test_bf16_on_cpu(model):
    adapter = model("llava", dtype="bf16")
    assert adapter.describe()["dtype"] == "bfloat16"
    texts = [g.text for g in run(adapter, REQUESTS[:6], batch_size=6)]
    assert all(texts)
    assert texts == [g.text for g in run(adapter, REQUESTS[:6], batch_size=1)]


def test_a_processor_that_pads_on_the_right_gets_one_request_at_a_time(model, monkeypatch):
    adapter = model("llava_next")
    expected = [g.text for g in run(adapter, REQUESTS[:4], batch_size=1)]

    def right_padded(texts, images, add_special_tokens):
        return adapter.processor(text=texts, images=images, padding=True, padding_side="right",
                                 add_special_tokens=add_special_tokens, return_tensors="pt")
    monkeypatch.setattr(adapter.prompts.slots, "encode", right_padded)
    prepared = adapter.prepare(REQUESTS[:4], GREEDY)
    assert len(prepared.inputs) == 4 and prepared.unbatched
    gens = adapter.generate(prepared, GREEDY)
    assert [g.text for g in gens] == expected and all("unbatched_request" in g.events for g in gens)


def test_device_map_is_passed_through(model):
    pytest.importorskip("accelerate")
    mapped = model("llava", device_map="cpu")
    assert str(mapped.model.device) == "cpu" and mapped.describe()["args"]["device_map"] == "cpu"
    assert [g.text for g in run(mapped, REQUESTS[:3])] == [g.text for g in run(model("llava"), REQUESTS[:3])]


def test_missing_pad_token_uses_eos(tmp_path):
    folder = tv.make_tiny_llava(tmp_path / "llava-nopad", pad_token=False)
    adapter = load_model(ModelSpec("hf-llava", {"pretrained": str(folder), "device": "cpu"}))
    described = adapter.describe()
    assert described["pad_token_policy"].startswith("eos-as-pad")
    assert described["padding_side"] == "left"
    assert adapter.tokenizer.pad_token == "</s>"
    assert [g.text for g in run(adapter, REQUESTS[:6], batch_size=6)] == \
        [g.text for g in run(adapter, REQUESTS[:6], batch_size=1)]


def test_describe_is_json(model):
    described = model("idefics2").describe()
    json.dumps(described)
    assert described["model_class"] == "Idefics2ForConditionalGeneration"
    assert described["processor_class"] == "Idefics2Processor"
    assert described["chat_template_source"] == "processor" and described["prompt_format"] is None
    assert described["parameters"] > 0 and described["generation_defaults"]["min_new_tokens"] == 4
    end_of_utterance = model("idefics2").tokenizer.convert_tokens_to_ids(tv.END_OF_UTTERANCE)
    assert described["eos_token_ids"] == [3, end_of_utterance]


def test_bad_arguments(folder, tiny_clip, tmp_path):
    llava = str(folder("llava"))
    with pytest.raises(MMBenchError, match="did you mean 'chat_template'"):
        load_model(ModelSpec("hf-vlm", {"pretrained": llava, "chat_tempalte": "none"}))
    with pytest.raises(MMBenchError, match="not an image-text-to-text model"):
        load_model(ModelSpec("hf-vlm", {"pretrained": str(tiny_clip), "device": "cpu"}))
    with pytest.raises(MMBenchError, match="does not exist"):
        load_model(ModelSpec("hf-llava", {"pretrained": str(tmp_path / "missing")}))
    with pytest.raises(MMBenchError, match="needs pretrained"):
        load_model(ModelSpec("hf-vlm", {}))
    with pytest.raises(MMBenchError, match="no such file"):
        load_model(ModelSpec("hf-vlm", {"pretrained": llava, "chat_template": str(tmp_path / "none.jinja")}))
    with pytest.raises(MMBenchError, match="no {prompt} placeholder"):
        load_model(ModelSpec("hf-vlm", {"pretrained": llava, "prompt_format": "Question:"}))
    with pytest.raises(MMBenchError, match="not a transformers model class"):
        load_model(ModelSpec("hf-vlm", {"pretrained": llava, "model_class": "NoSuchModel"}))


def test_text_only_model_is_refused(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tv.word_tokenizer()
    config = {k: v for k, v in tv.llama_text_config(len(tokenizer)).items() if k != "model_type"}
    LlamaForCausalLM(LlamaConfig(**config)).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    with pytest.raises(MMBenchError, match="not an image-text-to-text model"):
        load_model(ModelSpec("hf-vlm", {"pretrained": str(tmp_path / "llama"), "device": "cpu"}))


def test_blip2_refuses_two_images(model):
    with pytest.raises(MMBenchError, match="takes one image per prompt, got 2"):
        model("blip2").prepare([GenerationRequest("two", (tv.random_image(0), tv.random_image(1)))], GREEDY)


def test_chat_template_falls_back_to_the_tokenizers_and_images_go_first_without_a_marker():
    from types import SimpleNamespace

    from mmbench.adapters.hf_vlm_prompts import InterleavedSlots, resolve_chat_template

    # IdeficsProcessor (transformers 5) loads without its template; the tokenizer saved beside it keeps it.
    tok = SimpleNamespace(chat_template="{{ 'User: ' }}", bos_token="<s>")
    assert resolve_chat_template("auto", SimpleNamespace(chat_template=None, tokenizer=tok)).source == "tokenizer"
    own = SimpleNamespace(chat_template="{{ 'X' }}", tokenizer=tok)
    assert resolve_chat_template("auto", own).source == "processor"
    assert resolve_chat_template("auto", SimpleNamespace(chat_template=None, tokenizer=None)).text is None

    seen = []

    class Processor:  # records what the adapter hands to IdeficsProcessor
        image_token, tokenizer = "<image>", tok

        def __call__(self, text, **kw):
            seen.append(text)

    slots = InterleavedSlots(Processor())
    slots.check("User: what colour?\nAssistant:", 1)  # no marker: accepted
    with pytest.raises(MMBenchError, match="2 image placeholder"):
        slots.check("<image><image>User: hi", 1)
    slots.encode(["<s>User: what colour?\nAssistant:"], [["IMG"]], None)
    assert seen == [[["IMG", "User: what colour?\nAssistant:"]]]  # the image in front, BOS left to the processor


def test_device_map_without_accelerate_is_a_clear_error(monkeypatch):
    import importlib.util

    from mmbench.adapters import hf_loading

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    with pytest.raises(MMBenchError, match=r"needs the accelerate package: pip install 'mmbench\[multigpu\]'"):
        hf_loading.load_pretrained("some/model", revision=None, trust_remote_code=False, dtype="fp32",
                                   model_class=lambda config: None, device_map="auto")
