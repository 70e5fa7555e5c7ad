"""Native video input of the hf-vlm families that have it (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision, LLaVA-NeXT-Video),
on tiny random models built offline (tests/tiny_vlm_video.py): the adapter takes ``GenerationRequest.video``;
``prepare`` gives exactly what the family's processor gives for the same frames without resampling them; the
video tokens follow each family's arithmetic; greedy text is the same at any batch size over video, image and
video+image requests; the sampled frames' rate reaches Qwen2.5-VL's time positions; family options reach video
frames; and a family without native video (LLaVA) gets a video task's frames as images, end to end.

The video processors need torchvision in transformers 5: those cases are marked ``vision`` (as in
tests/test_vlm_families.py) and skip cleanly without it; the LLaVA cases run in the main environment.
"""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import tiny_vlms as tv  # noqa: E402
from mmbench.adapters import load_model, resolve  # noqa: E402
from mmbench.adapters.base import Adapter  # noqa: E402
from mmbench.adapters.vlm_families import BY_MODEL_TYPE, VIDEO_AND_IMAGES  # noqa: E402
from mmbench.capabilities import IMAGE_MARKER as M  # noqa: E402
from mmbench.capabilities import GenerationConfig, GenerationRequest, VideoInput  # noqa: E402
from mmbench.errors import MMBenchError  # noqa: E402
from mmbench.specs import ModelSpec  # noqa: E402

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None
PRESETS = {"qwen2_vl": "hf-qwen2-vl", "qwen2_5_vl": "hf-qwen2.5-vl", "llava_onevision": "hf-llava-onevision",
           "llava_next_video": "hf-llava-next"}
# video tokens for 4 frames of 40x40 and 6 frames of 48x40, worked out from each tiny config:
# Qwen: frames resized to multiples of 16 px (1024..4096 pixels), 8-px patches merged 2x2, 2 frames per temporal
#   patch: 40x40 -> 32x32 -> 4 tokens x 2 = 8; 48x40 -> 48x32 -> 6 tokens x 3 = 18
# OneVision: 32x32 frames, 4x4 patches pooled to 2x2 per frame, + 1 newline: 4*4+1 = 17, 6*4+1 = 25
# LLaVA-NeXT-Video: 32x32 crops, 4x4 patches average-pooled (stride 2) to 2x2 per frame: 16, 24
VIDEO_TOKENS = {"qwen2_vl": (8, 18), "qwen2_5_vl": (8, 18), "llava_onevision": (17, 25), "llava_next_video": (16, 24)}
GREEDY = GenerationConfig(max_new_tokens=6)
pytestmark = pytest.mark.usefixtures("one_thread")


def vision(*families: str):
    marks = [pytest.mark.vision]
    if not HAS_TORCHVISION:
        marks.append(pytest.mark.skip(reason="the video processors need torchvision (vision extra)"))
    return [pytest.param(f, marks=marks, id=f) for f in families]


def clip(seed: int, n: int = 4, size=(40, 40), fps: float = 2.0, start: float = 0.0) -> VideoInput:
    frames = tuple(tv.random_image(seed * 100 + i, size) for i in range(n))
    return VideoInput(frames, tuple(start + i / fps for i in range(n)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    built: dict = {}

    def get(family: str):
        if family not in built:
            import tiny_vlm_video as tvv

            builders = {**tvv.BUILDERS, "llava": tv.make_tiny_llava, "llava_next": tv.make_tiny_llava_next}
            if family == "qwen2_vl_image_template":  # the image builder's template: no video part
                import tiny_vlm_families_a as fa

                builders[family] = fa.make_tiny_qwen2_vl
            built[family] = builders[family](tmp_path_factory.mktemp(family) / family)
        return built[family]
    return get


@pytest.fixture(scope="module")
def model(folder):
    loaded: dict = {}

    def get(family: str, **args: str):
        key = (family, tuple(sorted(args.items())))
        if key not in loaded:
            loaded[key] = load_model(ModelSpec(str(folder(family)), {"device": "cpu", **args}))
        return loaded[key]
    return get


def run(adapter, requests, batch_size=16):
    return tv.run_requests(adapter, requests, GREEDY, batch_size)


def spy_calls(adapter, monkeypatch) -> list[dict]:
    """Record the keyword arguments of every processor call the adapter makes."""
    calls: list[dict] = []
    real = type(adapter.processor).__call__
    monkeypatch.setattr(type(adapter.processor), "__call__",
                        lambda self, *a, **kw: calls.append(kw) or real(self, *a, **kw))
    return calls


def video_messages(prompt: str, n_images: int = 0) -> list[dict]:
    return [{"role": "user", "content": [{"type": "video"}, *[{"type": "image"}] * n_images,
                                         {"type": "text", "text": prompt}]}]


# -- the families with native video ---------------------------------------------------------------

@pytest.mark.parametrize("family", vision(*PRESETS))
def test_the_family_takes_video_natively_and_says_so(model, folder, family):
    adapter = model(family)
    assert adapter.accepts_video and not type(adapter).accepts_video and not Adapter.accepts_video
    info = adapter.describe()
    assert info["family_preset"] == PRESETS[family] and info["model_family"] == BY_MODEL_TYPE[family].name
    assert resolve(ModelSpec(str(folder(family))))[1]["family"].split("|")[0] == BY_MODEL_TYPE[family].name
    assert info["video_input"].startswith("native: ") and "do_sample_frames=False" in info["video_input"]
    assert BY_MODEL_TYPE[family].video_mode(family) == VIDEO_AND_IMAGES


@pytest.mark.parametrize("family", vision(*PRESETS))
def test_prepare_gives_what_the_processor_gives_for_the_same_frames(model, family):
    adapter = model(family)
    video = clip(1)  # frames at 0, 0.5, 1.0, 1.5 s
    prepared = adapter.prepare([GenerationRequest("what colour is this", video=video)], GREEDY)
    processor = adapter.processor
    prompt = processor.apply_chat_template(video_messages("what colour is this"), add_generation_prompt=True,
                                           tokenize=False)
    assert prepared.prompts == [prompt]
    direct = processor(text=[prompt], videos=[list(video.frames)], do_sample_frames=False,
                       video_metadata=[{"total_num_frames": 4, "fps": 2.0, "frames_indices": [0, 1, 2, 3]}],
                       padding=True, padding_side="left", return_tensors="pt")
    got = prepared.inputs[0]
    assert set(got.keys()) == set(direct.keys())
    assert {"input_ids", "pixel_values_videos"} <= set(got.keys())
    for key in direct:
        assert torch.equal(got[key], direct[key]), key
    if family.startswith("qwen"):
        assert got["video_grid_thw"].tolist() == [[2, 4, 4]]  # 4 frames -> 2 temporal patches of 4x4 patches
    if family == "qwen2_5_vl":  # 2 frames per temporal patch at 2 fps: one second each
        assert got["second_per_grid_ts"].tolist() == [1.0]
        # without the timing the processor assumes 24 fps: positions 12x too dense
        bare = processor(text=[prompt], videos=[list(video.frames)], do_sample_frames=False, return_tensors="pt")
        assert bare["second_per_grid_ts"].tolist() == [pytest.approx(2 / 24)]
    else:  # the other families encode no time: the metadata changes nothing
        bare = processor(text=[prompt], videos=[list(video.frames)], do_sample_frames=False, return_tensors="pt")
        assert torch.equal(bare["input_ids"], got["input_ids"])
        assert torch.equal(bare["pixel_values_videos"], got["pixel_values_videos"])


@pytest.mark.parametrize("family", vision(*PRESETS))
def test_video_tokens_follow_the_familys_arithmetic(model, family):
    adapter = model(family)
    gens = run(adapter, [GenerationRequest("what colour", video=clip(2)),
                         GenerationRequest("what colour", video=clip(3, 6, (48, 40), fps=4.0))])
    assert [g.extra["video_tokens"] for g in gens] == list(VIDEO_TOKENS[family])
    # image_tokens counts every visual position the language model reads: here the video's
    assert [g.extra["image_tokens"] for g in gens] == list(VIDEO_TOKENS[family])
    image_only = run(adapter, [GenerationRequest("what colour", (tv.random_image(5),))])[0]
    both = run(adapter, [GenerationRequest("what colour", (tv.random_image(5),), video=clip(2))])[0]
    assert "video_tokens" not in image_only.extra
    assert both.extra["video_tokens"] == VIDEO_TOKENS[family][0]
    assert both.extra["image_tokens"] == image_only.extra["image_tokens"] + VIDEO_TOKENS[family][0]


def mixed_requests() -> list[GenerationRequest]:
    """12 requests: videos (4 or 6 frames, three sizes), images, video + image, prompts of 1 to 10 words."""
    prompts = tv.VARIED_PROMPTS
    out = []
    for i in range(12):
        kind = i % 3
        video = clip(10 + i, 6 if i % 4 == 3 else 4, tv.VARIED_SIZES[i % 4][::-1] if i % 2 else (40, 40))
        image = (tv.random_image(50 + i, tv.VARIED_SIZES[i % 4]),)
        prompt = prompts[i % 8] + " please" * (i % 3)
        out.append(GenerationRequest(prompt, video=video) if kind == 0 else
                   GenerationRequest(prompt, image) if kind == 1 else GenerationRequest(prompt, image, video=video))
    return out


@pytest.mark.parametrize("family", vision(*PRESETS))
def test_greedy_is_the_same_at_batch_sizes_1_4_12_over_video_and_image_requests(model, family):
    adapter = model(family)
    requests = mixed_requests()
    gens = {bs: run(adapter, requests, batch_size=bs) for bs in (1, 4, 12)}
    texts = {bs: [g.text for g in out] for bs, out in gens.items()}
    assert all(texts[1]) and texts[1] == texts[4] == texts[12]
    assert len(set(texts[1])) > 3  # the text depends on the input: the comparison can fail
    extras = {bs: [(g.extra["image_tokens"], g.extra.get("video_tokens")) for g in out] for bs, out in gens.items()}
    assert extras[1] == extras[4] == extras[12]
    assert [v is not None for _, v in extras[1]] == [r.video is not None for r in requests]


@pytest.mark.parametrize("family", vision(*PRESETS))
def test_frames_are_not_sampled_again_and_the_timing_is_the_samplings(model, family, monkeypatch):
    adapter = model(family)
    calls = spy_calls(adapter, monkeypatch)
    # a checkpoint whose video processor samples frames itself (as Qwen3-VL's does by default, at 2 fps)
    monkeypatch.setattr(adapter.processor.video_processor, "do_sample_frames", True)
    monkeypatch.setattr(adapter.processor.video_processor, "num_frames", 2, raising=False)
    requests = [GenerationRequest("what", video=clip(4)),  # 0, 0.5, 1.0, 1.5 s: 2 fps
                GenerationRequest("what", video=clip(5, fps=4.0, start=1.0)),  # 1.0, 1.25, 1.5, 1.75 s: 4 fps
                GenerationRequest("what", video=VideoInput(clip(6).frames, (0.0, 0.5, 1.25, 1.75)))]  # uneven
    prepared = adapter.prepare(requests, GREEDY)
    assert prepared.video_tokens == [VIDEO_TOKENS[family][0]] * 3  # all 4 frames of each were encoded
    (kwargs,) = calls
    assert kwargs["do_sample_frames"] is False
    metadata = kwargs["video_metadata"]
    assert [m["fps"] for m in metadata] == [2.0, 4.0, pytest.approx(3 / 1.75)]  # frames over the span they cover
    assert [m["total_num_frames"] for m in metadata] == [4, 4, 4]
    # the frames' positions on that rate give back the sampled times (processors that write times read them)
    for m, r in zip(metadata, requests):
        assert [i / m["fps"] for i in m["frames_indices"]] == pytest.approx(list(r.video.timestamps))
    if family == "qwen2_5_vl":  # temporal_patch_size (2) frames per position step: 2/fps seconds
        inputs = prepared.inputs[0]
        assert inputs["second_per_grid_ts"].tolist() == pytest.approx([1.0, 0.5, 2 * 1.75 / 3])


@pytest.mark.parametrize("family", vision("qwen2_5_vl"))
def test_qwen2_5_vl_time_positions_follow_the_frame_rate(model, family):
    adapter = model(family)
    frames = clip(7).frames
    inputs = {fps: adapter.prepare([GenerationRequest("what", video=VideoInput(frames, tuple(i / fps for i in
                                                                                         range(4))))], GREEDY)
              for fps in (2.0, 0.5)}
    rope = {}
    for fps, prepared in inputs.items():
        batch = prepared.inputs[0]
        ids = batch["input_ids"]
        rope[fps], _ = adapter.model.model.get_rope_index(
            ids, video_grid_thw=batch["video_grid_thw"], second_per_grid_ts=batch["second_per_grid_ts"],
            attention_mask=batch["attention_mask"], mm_token_type_ids=batch.get("mm_token_type_ids"))
    video = inputs[2.0].inputs[0]["input_ids"][0] == adapter.model.config.video_token_id
    steps = {fps: sorted(set(r[0, 0][video].tolist())) for fps, r in rope.items()}  # temporal positions
    tokens_per_second = adapter.model.config.vision_config.tokens_per_second
    assert steps[2.0][1] - steps[2.0][0] == tokens_per_second * 1  # one second per temporal patch at 2 fps
    assert steps[0.5][1] - steps[0.5][0] == tokens_per_second * 4  # four seconds at 0.5 fps


@pytest.mark.parametrize("family", vision("qwen2_vl", "llava_onevision"))
def test_a_video_goes_in_front_of_images_and_text(model, family):
    adapter = model(family)
    a, b = tv.random_image(8), tv.random_image(9, (48, 40))
    prepared = adapter.prepare([GenerationRequest(f"is {M} bigger than {M} please", (a, b), video=clip(8))], GREEDY)
    seen = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "is "}, {"type": "image"},
                                         {"type": "text", "text": " bigger than "}, {"type": "image"},
                                         {"type": "text", "text": " please"}]}]
    assert prepared.prompts == [adapter.processor.apply_chat_template(seen, add_generation_prompt=True,
                                                                      tokenize=False)]
    video, image = ("<|video_pad|>", "<|image_pad|>") if family == "qwen2_vl" else ("<video>", "<image>")
    order = re.findall(r"<\|video_pad\|>|<\|image_pad\|>|<video>|<image>|\bis\b|\bbigger\b", prepared.prompts[0])
    assert order == [video, "is", image, "bigger", image]


@pytest.mark.parametrize("family", vision("qwen2_vl"))
def test_family_options_apply_to_video_frames(model, family):
    video = clip(9, size=(64, 64))
    counts = [run(model(family, **args), [GenerationRequest("what", video=video)])[0].extra["video_tokens"]
              for args in ({}, {"max_pixels": "1024"})]
    # 64x64 frames: 8x8 patches -> 16 tokens per temporal patch; at most 1024 pixels: 32x32 -> 4; 2 temporal patches
    assert counts == [32, 8]
    assert model(family, max_pixels="1024").processor.video_processor.size["longest_edge"] == 1024


@pytest.mark.parametrize("family", vision("qwen2_vl_image_template"))
def test_a_chat_template_that_drops_the_video_is_refused_in_one_line(model, family):
    adapter = model(family)
    assert adapter.accepts_video  # the family and processor take video; this checkpoint's template does not
    with pytest.raises(MMBenchError, match=r"the prompt has 0 video placeholder\(s\) '<\|video_pad\|>' for 1 "
                                           r"video\(s\); fix the chat template") as err:
        adapter.prepare([GenerationRequest("what", video=clip(1))], GREEDY)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("family", vision("llava_next_video"))
def test_llava_next_video_loads_through_the_llava_next_preset(model, folder, family, monkeypatch):
    import transformers

    cls, raw = resolve(ModelSpec(str(folder(family))))
    assert raw["family"].split("|")[0] == "llava_next"
    info = model(family).describe()
    assert info["model_family"] == "llava_next" and info["family_preset"] == "hf-llava-next"
    # images tile as in LLaVA-NeXT (same tiny vision config and pinpoints): the same image tokens
    requests = [GenerationRequest("what", (tv.random_image(1, size),)) for size in ((64, 32), (40, 40), (64, 64))]
    counts = [[g.extra["image_tokens"] for g in run(model(f), requests)] for f in (family, "llava_next")]
    assert counts[0] == counts[1] and min(counts[0]) > 16  # base 16 patches + tiles + newlines
    monkeypatch.setattr(transformers, "__version__", "4.41.2")
    with pytest.raises(MMBenchError, match=r"is a llava_next_video model \(hf-llava-next\), which needs "
                                           r"transformers>=4\.42\.0; installed: 4\.41\.2"):
        load_model(ModelSpec(str(folder(family)), {"device": "cpu"}))


def write_video_task(tmp_path, n: int = 3):
    """A video-qa task over ``n`` motion clips (tests/test_video_tasks.py's: 8 frames of 64x64 at 4 fps)."""
    import yaml
    from test_video_tasks import write_motion

    data = tmp_path / "data"
    data.mkdir()
    rows = []
    for i in range(n):
        write_motion(data / f"clip{i}.mp4", ("right", "left")[i % 2], "red")
        rows.append({"id": f"v{i}", "video": f"clip{i}.mp4", "question": "which way does the square move?",
                     "answers": [("right", "left")[i % 2]]})
    (data / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = tmp_path / "vqa-video.yaml"
    task.write_text(yaml.safe_dump({"task": "vqa-video", "kind": "video-qa", "max_new_tokens": 4,
                                    "video": {"frames": 4},
                                    "data": {"format": "jsonl", "path": str(data / "qa.jsonl")}}))
    return task


def run_task(model_path, task, tmp_path, capsys):
    from mmbench.cli.main import main
    from mmbench.results import RunResult

    code = main(["run", "--model", str(model_path), "--tasks", str(task), "--output-dir", str(tmp_path / "out"),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    run_dir = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    result = RunResult.read(run_dir).results[0]
    samples = [json.loads(x) for x in (run_dir / result.files["samples"]).read_text().splitlines()]
    return result, samples


@pytest.mark.parametrize("family", vision("qwen2_5_vl"))
def test_a_video_task_sends_its_video_natively_to_qwen(folder, family, tmp_path, capsys):
    pytest.importorskip("av", reason="PyAV not installed (pip install 'mmbench[video]')")
    result, samples = run_task(folder(family), write_video_task(tmp_path), tmp_path, capsys)
    assert result.task_info["video"]["sent_as"] == "video (the model's own encoding)"
    assert result.model_info["video_input"].startswith("native: ")
    for s in samples:
        assert s["prompt_sent"].count("<|video_pad|>") == 1 and "<|image_pad|>" not in s["prompt_sent"]
        assert s["image_tokens"] == 32  # 64x64 frames: 8x8 patches merged to 16 tokens, x 2 temporal patches
        assert s["video"]["frame_times"] == [0.0, 0.5, 1.25, 1.75]


# -- a family without native video (main environment) ---------------------------------------------

def test_llava_takes_no_video_natively_and_refuses_one_in_one_line(model):
    adapter = model("llava")
    assert adapter.accepts_video is False
    assert adapter.describe()["video_input"].startswith("frames as images")
    with pytest.raises(MMBenchError, match=r"hf-llava \(llava\) takes no video natively: send the video's frames "
                                           r"as images") as err:
        adapter.prepare([GenerationRequest("what", video=clip(1, size=(32, 32)))], GREEDY)
    assert "\n" not in str(err.value)


def test_a_video_task_sends_its_frames_as_images_to_llava(folder, tmp_path, capsys):
    pytest.importorskip("av", reason="PyAV not installed (pip install 'mmbench[video]')")
    result, samples = run_task(folder("llava"), write_video_task(tmp_path), tmp_path, capsys)
    assert result.task_info["video"]["sent_as"] == "frames as images"
    assert result.model_info["video_input"].startswith("frames as images")
    assert len(samples) == 3
    for s in samples:
        assert s["prompt_sent"].count("<image>") == 4  # the 4 sampled frames, each an image in front
        assert s["image_tokens"] == 4 * 16  # 32-px CLIP, 8-px patches, CLS dropped: 16 per frame
        assert s["video"]["frame_indices"] == [0, 2, 5, 7]
