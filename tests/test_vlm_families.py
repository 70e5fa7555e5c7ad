"""The image-text-to-text family presets on tiny random models built offline (tests/tiny_vlm_families_*.py):
a folder loads through its family's preset; greedy text is the same at batch sizes 1, 3 and 16; the prompt is
what the family's chat template (or processor) builds; the image tokens per item are recorded and match the
family's arithmetic; bf16/fp16 run; several images go where the prompt places them or are refused in one line;
family options reach the processor; the attention probe reads inline image tokens and cross-attention layers.

Qwen2-VL, Qwen2.5-VL, InternVL, LLaVA-OneVision and SmolVLM processors need torchvision in transformers 5 (their
video processors): those cases are marked ``vision`` and run in the openclip/vision environment (.ci/run).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import tiny_vlm_families_a as fa  # noqa: E402
import tiny_vlm_families_b as fb  # noqa: E402
import tiny_vlms as tv  # noqa: E402
from mmbench.adapters import load_model, resolve  # noqa: E402
from mmbench.adapters.vlm_families import BY_MODEL_TYPE, FAMILIES  # noqa: E402
from mmbench.capabilities import IMAGE_MARKER as M  # noqa: E402
from mmbench.capabilities import GenerationConfig, GenerationRequest  # noqa: E402
from mmbench.errors import MMBenchError  # noqa: E402
from mmbench.specs import ModelSpec  # noqa: E402

VISION = ("torchvision",)
# family -> (preset, builder, packages its processor needs beyond the core)
CASES = {
    "llava_next": ("hf-llava-next", tv.make_tiny_llava_next, ()),
    "llava_onevision": ("hf-llava-onevision", fb.make_tiny_llava_onevision, VISION),
    "qwen2_vl": ("hf-qwen2-vl", fa.make_tiny_qwen2_vl, VISION),
    "qwen2_5_vl": ("hf-qwen2.5-vl", fa.make_tiny_qwen2_5_vl, VISION),
    "internvl": ("hf-internvl", fa.make_tiny_internvl, VISION),
    "idefics3": ("hf-idefics3", fb.make_tiny_idefics3, ()),
    "smolvlm": ("hf-idefics3", fb.make_tiny_smolvlm, ("torchvision", "num2words")),
    "paligemma": ("hf-paligemma", fb.make_tiny_paligemma, ()),
    "gemma3": ("hf-gemma3", fa.make_tiny_gemma3, ()),
    "mllama": ("hf-mllama", fa.make_tiny_mllama, ()),
    "instructblip": ("hf-instructblip", fb.make_tiny_instructblip, ()),
}
CHAT = ("llava_next", "llava_onevision", "qwen2_vl", "qwen2_5_vl", "internvl", "idefics3", "smolvlm", "gemma3",
        "mllama")
INTERLEAVING = ("llava_onevision", "qwen2_vl", "qwen2_5_vl", "internvl", "idefics3", "smolvlm", "gemma3", "mllama")
# image tokens the language model reads for one 40x40 and one 64x64 image (worked out from each tiny config:
# Qwen 16-pixel cells with min/max 1024/4096 pixels; InternVL 4 per tile, 4 tiles + thumbnail for 64x64;
# Gemma 3 a fixed 4; Mllama 17 vision tokens per 32-pixel tile, cross-attended; Idefics3 4 per tile + global;
# PaliGemma (32/8)^2; InstructBLIP 4 queries)
IMAGE_TOKENS = {"qwen2_vl": (4, 16), "qwen2_5_vl": (4, 16), "internvl": (4, 20), "gemma3": (4, 4),
                "mllama": (17, 17), "idefics3": (20, 20), "smolvlm": (20, 20), "paligemma": (16, 16),
                "instructblip": (4, 4)}


def _param(family: str):
    needs = CASES[family][2]
    marks = [pytest.mark.vision] if needs else []
    missing = [p for p in needs if importlib.util.find_spec(p) is None]
    if missing:
        marks.append(pytest.mark.skip(reason=f"{family}'s processor needs {', '.join(missing)} (vision extra)"))
    return pytest.param(family, marks=marks, id=family)


def families(names=tuple(CASES)):
    return [_param(f) for f in names]


REQUESTS = tv.varied_requests(16)
GREEDY = GenerationConfig(max_new_tokens=6)
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest's: tiny models are faster on one thread


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = CASES[family][1](tmp_path_factory.mktemp(family) / family)
        return built[family]
    return get


@pytest.fixture(scope="module")
def model(folder):
    loaded: dict = {}

    def get(family: str, **args: str):
        key = (family, tuple(sorted(args.items())))
        if key not in loaded:
            loaded[key] = load_model(ModelSpec(CASES[family][0], {"pretrained": str(folder(family)),
                                                                  "device": "cpu", **args}))
        return loaded[key]
    return get


def run(adapter, requests, config=GREEDY, batch_size=16):
    return tv.run_requests(adapter, requests, config, batch_size)


def test_every_family_has_a_preset_and_a_registered_architecture():
    from mmbench.adapters import AUTO_ARCHITECTURES
    from mmbench.registry import MODELS

    for family in FAMILIES:
        assert family.preset in MODELS.names()
        assert family.preset in AUTO_ARCHITECTURES.values()
    assert {f for f in CASES} <= set(BY_MODEL_TYPE)


@pytest.mark.parametrize("family", families())
def test_a_folder_loads_through_its_family_preset(model, folder, family):
    cls, raw = resolve(ModelSpec(str(folder(family))))
    family_name = BY_MODEL_TYPE[family].name
    assert family_name in raw["family"].split("|")
    info = model(family).describe()
    assert info["model_family"] == family_name and info["family_preset"] == CASES[family][0]
    assert set(info["family_options"]) == set(BY_MODEL_TYPE[family].options)


@pytest.mark.parametrize("family", families())
def test_greedy_is_the_same_at_batch_sizes_1_3_16(model, family):
    adapter = model(family)
    texts = {bs: [g.text for g in run(adapter, REQUESTS, batch_size=bs)] for bs in (1, 3, 16)}
    assert all(texts[1]) and texts[1] == texts[3] == texts[16]
    assert len(set(texts[1])) > 1  # not one text for everything: the comparison can fail
    tokens = {bs: [g.extra["image_tokens"] for g in run(adapter, REQUESTS[:6], batch_size=bs)] for bs in (1, 6)}
    assert tokens[1] == tokens[6] and min(tokens[1]) > 0


@pytest.mark.parametrize("family", families(CHAT))
@pytest.mark.parametrize("system", [None, "be short"])
def test_the_prompt_is_the_familys_chat_template(model, family, system):
    adapter = model(family)
    request = GenerationRequest("what colour is this", (tv.random_image(0),), system=system)
    messages = ([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []) + [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what colour is this"}]}]
    expected = adapter.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    gen = run(adapter, [request])[0]
    assert gen.prompt_sent == expected
    # the text reaches the model once: no second BOS when the template writes it
    ids = adapter.prepare([request], GREEDY).inputs[0]["input_ids"][0].tolist()
    bos = adapter.tokenizer.bos_token_id
    assert ids[:2] != [bos, bos]


def test_paligemma_prefix_is_built_by_its_processor(model):
    adapter = model("paligemma")
    request = GenerationRequest("answer what colour", (tv.random_image(0),))
    prepared = adapter.prepare([request], GREEDY)
    assert prepared.prompts == ["<image>answer what colour"]
    ids = prepared.inputs[0]["input_ids"][0].tolist()
    image_id, bos = adapter.model.config.image_token_id, adapter.tokenizer.bos_token_id
    assert ids[:17] == [image_id] * 16 + [bos]  # <image> x 16, BOS, then the prefix: PaliGemma's layout
    assert adapter.tokenizer.decode(ids[17:]).startswith("answer what colour")
    system = adapter.prepare([GenerationRequest("what", (tv.random_image(0),), system="be short")], GREEDY)
    assert system.prompts == ["<image>be short\nwhat"]  # the images open the prefix
    assert adapter.describe()["chat_template_source"] == "none"


@pytest.mark.parametrize("family", families(tuple(IMAGE_TOKENS)))
def test_image_tokens_per_item_follow_the_familys_arithmetic(model, family):
    small, large = (tv.random_image(1, (40, 40)),), (tv.random_image(2, (64, 64)),)
    gens = run(model(family), [GenerationRequest("what colour", small), GenerationRequest("what colour", large)])
    assert [g.extra["image_tokens"] for g in gens] == list(IMAGE_TOKENS[family])


@pytest.mark.parametrize("family", families())
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_precision_loads_and_generates(model, family, dtype):
    adapter = model(family, dtype=dtype)
    assert adapter.describe()["dtype"] == {"bf16": "bfloat16", "fp16": "float16"}[dtype]
    assert all(g.text for g in run(adapter, REQUESTS[:3]))


@pytest.mark.parametrize("family", families(INTERLEAVING))
def test_several_images_go_where_the_prompt_places_them(model, family):
    adapter = model(family)
    a, b = tv.random_image(3, (40, 40)), tv.random_image(4, (48, 40))
    request = GenerationRequest(f"is {M} bigger than {M} please", (a, b))
    seen = []
    real = adapter.processor.apply_chat_template
    adapter.processor.apply_chat_template = lambda m, **kw: seen.append(m) or real(m, **kw)
    try:
        gen = run(adapter, [request])[0]
    finally:
        del adapter.processor.apply_chat_template
    assert [c["type"] for c in seen[0][-1]["content"]] == ["text", "image", "text", "image", "text"]
    if family in ("qwen2_vl", "qwen2_5_vl", "internvl", "gemma3", "idefics3", "smolvlm"):
        # these templates write each image where it stands in the message
        assert gen.prompt_sent.index("is") < gen.prompt_sent.index("bigger")
        head, _, tail = gen.prompt_sent.partition("bigger")
        assert head.rstrip().endswith(_image_mark(adapter, head)) and "please" in tail
    singles = [run(adapter, [GenerationRequest("x", (im,))])[0].extra["image_tokens"] for im in (a, b)]
    if family != "llava_onevision":  # OneVision sends several images at base resolution (no tiles)
        assert gen.extra["image_tokens"] == sum(singles)
    swapped = run(adapter, [GenerationRequest(f"is {M} bigger than {M} please", (b, a))])[0]
    assert gen.text and swapped.text


def _image_mark(adapter, text: str) -> str:
    """The last image marker the template wrote before ``text`` ends (e.g. <|vision_end|>, <end_of_image>)."""
    marks = [m for m in ("<|vision_end|>", "<IMG_CONTEXT>\n", "<IMG_CONTEXT>", "<start_of_image>", "<image>",
                         "<|image|>") if m.strip() in text]
    return max(marks, key=lambda m: text.rfind(m.strip())).strip()


def test_front_only_and_one_image_families_refuse_in_one_line(model):
    pali, iblip = model("paligemma"), model("instructblip")
    a, b = tv.random_image(3), tv.random_image(4)
    assert run(pali, [GenerationRequest("compare", (a, b))])[0].extra["image_tokens"] == 32
    with pytest.raises(MMBenchError, match="hf-paligemma takes its images in front of the prompt only"):
        pali.prepare([GenerationRequest(f"is {M} bigger than {M}", (a, b))], GREEDY)
    with pytest.raises(MMBenchError, match="hf-instructblip takes one image per prompt, got 2"):
        iblip.prepare([GenerationRequest("compare", (a, b))], GREEDY)


@pytest.mark.parametrize("family,option,value,size,before,after", [
    pytest.param("qwen2_vl", "max_pixels", "1024", 64, 16, 4, marks=_param("qwen2_vl").marks),
    pytest.param("qwen2_5_vl", "min_pixels", "4096", 40, 4, 16, marks=_param("qwen2_5_vl").marks),
    pytest.param("idefics3", "do_image_splitting", "false", 64, 20, 4),
    # the anyres grid goes to the processor and to the model's config (which unpads the features by it)
    pytest.param("llava_next", "image_grid_pinpoints", "64x64", 64, 36, 88),
    pytest.param("internvl", "crop_to_patches", "false", 64, 20, 4, marks=_param("internvl").marks),
])
def test_family_options_reach_the_processor_and_are_recorded(model, family, option, value, size, before, after):
    image = (tv.random_image(5, (size, size)),)
    counts = [run(model(family, **args), [GenerationRequest("what", image)])[0].extra["image_tokens"]
              for args in ({}, {option: value})]
    assert counts == [before, after]
    info = model(family, **{option: value}).describe()
    recorded = info["family_options"][option]
    assert (recorded == [[64, 64]] if option == "image_grid_pinpoints" else str(recorded).lower() == value)
    assert info["args"][option] is not None


def test_gemma3_pan_and_scan_is_passed_with_every_call(model):
    adapter = model("gemma3", do_pan_and_scan="true")
    assert adapter.prompts.slots.call_kwargs == {"do_pan_and_scan": True}
    assert adapter.describe()["family_options"] == {"do_pan_and_scan": True}
    assert model("gemma3").describe()["family_options"] == {"do_pan_and_scan": False}  # the processor's default


def test_an_option_of_another_family_is_refused_in_one_line(folder):
    with pytest.raises(MMBenchError, match="min_pixels= does not apply .* it is an option of hf-qwen2-vl, "
                                           "hf-qwen2.5-vl"):
        load_model(ModelSpec("hf-paligemma", {"pretrained": str(folder("paligemma")), "min_pixels": "100"}))
    with pytest.raises(MMBenchError, match="hf-gemma3 expects a gemma3 model; .* is paligemma: use hf-paligemma"):
        load_model(ModelSpec("hf-gemma3", {"pretrained": str(folder("paligemma"))}))


def test_a_family_newer_than_the_installed_transformers_is_refused(folder, monkeypatch):
    import transformers

    path = str(folder("gemma3"))
    monkeypatch.setattr(transformers, "__version__", "4.49.0")
    with pytest.raises(MMBenchError, match=r"gemma3 model \(hf-gemma3\), which needs transformers>=4.50.0; "
                                           r"installed: 4.49.0\. Fix: pip install -U 'transformers>=4.50.0'"):
        load_model(ModelSpec(path, {"device": "cpu"}))


@pytest.mark.parametrize("family", families(("qwen2_vl", "llava_onevision", "internvl", "idefics3", "paligemma",
                                             "gemma3", "llava_next", "instructblip")))
def test_attention_probe_reads_inline_image_tokens(model, family):
    adapter = model(family)
    prepared = adapter.prepare(REQUESTS[:3], GREEDY)
    gens = adapter.generate(prepared, GREEDY)
    values = adapter.image_attention(prepared, GREEDY, [g.token_ids for g in gens])
    # InstructBLIP's inline image tokens are its Q-Former's query outputs (with the queries' patch focus)
    measure = "qformer_query_share" if family == "instructblip" else "image_attention_share"
    assert [v["measure"] for v in values] == [measure] * 3
    assert all(0.0 <= v["also"]["qformer_patch_focus"] <= 1.0 for v in values) if family == "instructblip" else True
    assert all(0.0 < v["value"] < 1.0 for v in values)
    again = adapter.image_attention(adapter.prepare(REQUESTS[:1], GREEDY), GREEDY)  # generating anew: same value
    assert again[0]["value"] == pytest.approx(values[0]["value"], rel=1e-4)


def test_attention_probe_measures_llama_vision_cross_attention_like_flamingo(model):
    adapter = model("mllama")
    prepared = adapter.prepare(REQUESTS[:3], GREEDY)
    values = adapter.image_attention(prepared, GREEDY)
    assert [v["measure"] for v in values] == ["xattn_gate_ratio"] * 3 and all(v["value"] > 0 for v in values)
    alone = adapter.image_attention(adapter.prepare(REQUESTS[1:2], GREEDY), GREEDY)
    assert alone[0]["value"] == pytest.approx(values[1]["value"], rel=1e-4)


def test_device_map_gives_the_same_text(model):
    pytest.importorskip("accelerate")
    mapped = model("gemma3", device_map="cpu")
    assert [g.text for g in run(mapped, REQUESTS[:3])] == [g.text for g in run(model("gemma3"), REQUESTS[:3])]


def test_the_samples_log_records_image_tokens_per_item(folder, tmp_path, capsys):
    from mmbench.cli.main import main
    from mmbench.results import RunResult

    data = tmp_path / "data"
    data.mkdir()
    rows = []
    for i, size in enumerate([(40, 40), (64, 48), (48, 64)]):
        tv.random_image(i, size).save(data / f"{i}.png")
        rows.append({"id": f"q{i}", "image": f"{i}.png", "question": "what colour", "answers": ["red"] * 10})
    (data / "vqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.yaml").write_text("task: fam-vqa\nkind: vqa\nmax_new_tokens: 4\n"
                                     "data: {format: jsonl, path: vqa.jsonl}\n")
    code = main(["run", "--model", str(folder("mllama")), "--tasks", "fam-vqa", "--include-path", str(tmp_path),
                 "--data-dir", str(data), "--output-dir", str(tmp_path / "out"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    run_dir = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    result = RunResult.read(run_dir).results[0]
    samples = [json.loads(x) for x in (run_dir / result.files["samples"]).read_text().splitlines()]
    assert [s["image_tokens"] for s in samples] == [17, 34, 34]  # 1 tile; 2 tiles for the oblong images
    assert result.model_info["model_family"] == "mllama"


def test_list_models_shows_each_presets_family_and_description(cli):
    code, out, _ = cli("list", "models")
    assert code == 0
    rows: dict[str, list[str]] = {}
    name = None
    for line in out.splitlines():  # wrapped cells continue on lines whose first cell is empty
        if not line.startswith("| ") or "---" in line:
            continue
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if cells[0]:
            name, rows[cells[0]] = cells[0], cells[1:]
        else:
            rows[name] = [f"{a} {b}".strip() for a, b in zip(rows[name], cells[1:])]
    assert rows["hf-qwen2.5-vl"][0] == "qwen2_5_vl" and rows["hf-qwen2.5-vl"][2].startswith("Qwen2.5-VL")
    assert rows["hf-mllama"][0] == "mllama" and "cross-attention layers" in rows["hf-mllama"][2].replace("- ", "-")
    assert rows["mini-flamingo"][0] == "idefics"  # a preset of a preset: the nearest family
    assert rows["hf-vlm"][0] == "-" and rows["hf-vlm"][2]  # the adapter's own docstring
