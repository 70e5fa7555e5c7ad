"""One generic registry for models, task kinds, tasks, metrics and data formats.

Entries are registered with a decorator or lazily as ``"module:attr"`` strings (imported on first use), and
third-party packages add entries through Python entry points. A wrong name gets "did you mean ...?".
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

from mmbench.errors import MMBenchError, UnknownNameError

T = TypeVar("T")


def import_object(target: str) -> object:
    """Import ``"package.module:attr"`` (attr may be dotted, and may end in ``[key]``: an entry of a dict)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise MMBenchError(f"bad lazy reference {target!r}: expected 'package.module:attribute'")
    attr, _, key = attr.partition("[")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj[key.rstrip("]")] if key else obj  # type: ignore[index]


class Registry(Generic[T]):
    """Name -> object, with lazy entries, aliases, entry-point discovery and suggestions on a miss."""

    def __init__(self, kind: str, entry_point_group: str | None = None,
                 check: Callable[[str, object], None] | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        # refuses an entry that is not what this registry holds (one-line MMBenchError); lazy and entry-point
        # entries are checked when first imported
        self.check = check
        self._objects: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points_loaded = entry_point_group is None

    # -- registration ---------------------------------------------------------------------------
    def register(self, name: str, obj: T | None = None, *, lazy: str | None = None,
                 aliases: tuple[str, ...] = (), overwrite: bool = False) -> Callable[[T], T]:
        """Register ``obj`` (or use as a decorator, or pass ``lazy="module:attr"``) under ``name``."""
        if not overwrite and (name in self._objects or name in self._lazy):
            raise ValueError(f"{self.kind} {name!r} is already registered")
        for alias in aliases:
            self._aliases[alias] = name
        if lazy is not None:
            self._lazy[name] = lazy
            self._objects.pop(name, None)
            return lambda o: o
        if obj is not None:
            self._check(name, obj)
            self._objects[name] = obj
            self._lazy.pop(name, None)
            return lambda o: o

        def decorator(o: T) -> T:
            self._check(name, o)
            self._objects[name] = o
            self._lazy.pop(name, None)
            return o

        return decorator

    # -- lookup ---------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._objects and ep.name not in self._lazy:
                self._lazy[ep.name] = ep.value

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(set(self._objects) | set(self._lazy))

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        name = self._aliases.get(name, name)
        return name in self._objects or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        self._load_entry_points()
        name = self._aliases.get(name, name)
        if name in self._objects:
            return self._objects[name]
        if name in self._lazy:
            try:
                obj = import_object(self._lazy[name])
            except ImportError as exc:
                raise MMBenchError(f"{self.kind} {name!r} could not be imported ({exc}); "
                                   f"install the package or extra it needs") from exc
            self._check(name, obj)
            self._objects[name] = obj  # type: ignore[assignment]
            return obj  # type: ignore[return-value]
        raise UnknownNameError(self.unknown_message(name))

    def _check(self, name: str, obj: object) -> None:
        if self.check is not None:
            self.check(name, obj)

    def unregister(self, name: str) -> None:
        """Remove an entry (tests restore the registries with it)."""
        self._objects.pop(name, None)
        self._lazy.pop(name, None)
        for alias in [a for a, n in self._aliases.items() if n == name]:
            del self._aliases[alias]

    def unknown_message(self, name: str) -> str:
        candidates = self.names() + sorted(self._aliases)
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            f"run `mmbench list {self.kind}s` to see them"
        return f"unknown {self.kind} {name!r}: {hint}"


# -- the registries ---------------------------------------------------------------------------------------
# Built-in entries are lazy strings, so importing mmbench imports no model code, torch or transformers.

def _check_model(name: str, obj: object) -> None:
    """An Adapter subclass implementing the protocol of every capability it declares, or a ModelPreset."""
    from mmbench.adapters.base import Adapter, ModelPreset
    from mmbench.capabilities import PROTOCOLS

    if isinstance(obj, ModelPreset):
        return
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise MMBenchError(f"model {name!r} is registered as {obj!r}: register an Adapter subclass or a "
                           f"ModelPreset")
    for capability in obj.capabilities:
        protocol = PROTOCOLS[capability]
        missing = [m for m in dir(protocol) if not m.startswith("_") and callable(getattr(protocol, m, None))
                   and not callable(getattr(obj, m, None))]
        if missing:
            raise MMBenchError(f"model {name!r} ({obj.__qualname__}) declares {capability.value!r} but does not "
                               f"implement {', '.join(missing)}")


def _subclass_check(what: str, base: str) -> Callable[[str, object], None]:
    def check(name: str, obj: object) -> None:
        cls = import_object(base)
        if not (isinstance(obj, type) and issubclass(obj, cls)):  # type: ignore[arg-type]
            raise MMBenchError(f"{what} {name!r} is registered as {obj!r}: register a {base.split(':')[1]} subclass")
    return check


def _check_callable(name: str, obj: object) -> None:
    if not callable(obj):
        raise MMBenchError(f"data format {name!r} is registered as {obj!r}: register a loader function")


#: model name -> an Adapter class (configured by --model-args) or a ModelPreset (an adapter + fixed args)
MODELS: Registry = Registry("model", "mmbench.models", check=_check_model)
#: task kind -> a Task class; task *names* come from YAML files (see mmbench.tasks.catalog)
TASK_KINDS: Registry = Registry("task kind", "mmbench.task_kinds",
                                check=_subclass_check("task kind", "mmbench.tasks.base:Task"))
#: data format -> a loader function(config, context) -> DataSet
DATA_FORMATS: Registry = Registry("data format", "mmbench.data_formats", check=_check_callable)
#: metric name -> a Metric subclass (mmbench.metrics.api): what task files list under `metrics:`
METRICS: Registry = Registry("metric", "mmbench.metrics", check=_subclass_check("metric", "mmbench.metrics.api:Metric"))

for _name, _target in {
    "hf-clip": "mmbench.adapters.hf_clip:HFDualEncoder",
    "open-clip": "mmbench.adapters.open_clip:OpenCLIP",
    "hf-vlm": "mmbench.adapters.hf_vlm:HFImageTextToText",
    # the image-text-to-text family presets (mmbench/adapters/vlm_families.py lists what each one knows)
    **{name: f"mmbench.adapters.hf_vlm:PRESETS[{name}]" for name in (
        "hf-llava", "hf-llava-next", "hf-llava-onevision", "hf-qwen2-vl", "hf-qwen2.5-vl", "hf-internvl",
        "hf-idefics", "hf-idefics3", "hf-paligemma", "hf-gemma3", "hf-mllama", "hf-blip2", "hf-instructblip")},
    "hf-whisper": "mmbench.adapters.speech_hf:Whisper",
    "hf-speech": "mmbench.adapters.speech_hf:HFSpeechRecognizer",
    "pocketsphinx": "mmbench.adapters.pocketsphinx:PocketSphinx",
    "openai-chat": "mmbench.adapters.openai_api:OpenAIChat",
    "openai-audio": "mmbench.adapters.openai_api:OpenAIAudio",
    "diffusers": "mmbench.adapters.diffusers_t2i:DiffusersTextToImage",
    "image-folder": "mmbench.adapters.image_folder:ImageFolderGenerator",
    "mini-clip": "mmbench.mini.zoo:MINI_CLIP",
    "mini-llava": "mmbench.mini.zoo:MINI_LLAVA",
    "mini-flamingo": "mmbench.mini.zoo:MINI_FLAMINGO",
    "mini-blip2": "mmbench.mini.zoo:MINI_BLIP2",
    "mini-llava-blind": "mmbench.mini.zoo:MINI_LLAVA_BLIND",
    "mini-video": "mmbench.mini.zoo:MINI_VIDEO",
    "mini-diffusion": "mmbench.mini.zoo:MINI_DIFFUSION",
}.items():
    MODELS.register(_name, lazy=_target)

for _name, _target in {
    "zeroshot-classification": "mmbench.tasks.classification:ZeroShotClassification",
    "retrieval": "mmbench.tasks.retrieval:ImageTextRetrieval",
    "vqa": "mmbench.tasks.vqa:VisualQuestionAnswering",
    "video-qa": "mmbench.tasks.video:VideoQuestionAnswering",
    "video-retrieval": "mmbench.tasks.video:VideoTextRetrieval",
    "multiple-choice": "mmbench.tasks.multiple_choice:MultipleChoice",
    "captioning": "mmbench.tasks.captioning:ImageCaptioning",
    "asr": "mmbench.tasks.asr:SpeechRecognition",
    "text-to-image": "mmbench.tasks.text_to_image:TextToImage",
    "probe": "mmbench.tasks.probe:ModalityProbe",
    "embedding-probe": "mmbench.tasks.probe_embedding:EmbeddingProbe",
}.items():
    TASK_KINDS.register(_name, lazy=_target)

for _name, _target in {
    "imagefolder": "mmbench.data.sources:load_imagefolder",
    "wds": "mmbench.data.wds:load_wds",
    "hf": "mmbench.data.sources:load_hf",
    "jsonl": "mmbench.data.sources:load_jsonl",
    "coco-captions": "mmbench.data.sources:load_coco_captions",
    "karpathy": "mmbench.data.sources:load_karpathy",
    "vqav2": "mmbench.data.vqa_sources:load_vqav2",
    "textvqa": "mmbench.data.vqa_sources:load_textvqa",
    "vizwiz": "mmbench.data.vqa_sources:load_vizwiz",
    "gqa": "mmbench.data.vqa_sources:load_gqa",
    "gqa-hf": "mmbench.data.vqa_sources:load_gqa_hf",
    "docvqa": "mmbench.data.vqa_sources:load_docvqa",
    "chartqa": "mmbench.data.vqa_sources:load_chartqa",
    "mmbench-tsv": "mmbench.data.mc_sources:load_mmbench_tsv",
    "mmbench-hf": "mmbench.data.mc_sources:load_mmbench_hf",
    "mmmu": "mmbench.data.mc_sources:load_mmmu",
    "scienceqa": "mmbench.data.mc_sources:load_scienceqa",
    "seed-bench": "mmbench.data.mc_sources:load_seed_bench",
    "seed-bench-hf": "mmbench.data.mc_sources:load_seed_bench_hf",
    "ai2d": "mmbench.data.ai2d_sources:load_ai2d",
    "ai2d-hf": "mmbench.data.ai2d_sources:load_ai2d_hf",
    "mmstar": "mmbench.data.mc_sources:load_mmstar",
    "pope": "mmbench.data.yesno_sources:load_pope",
    "pope-hf": "mmbench.data.yesno_sources:load_pope_hf",
    "mme": "mmbench.data.yesno_sources:load_mme",
    "mme-hf": "mmbench.data.yesno_sources:load_mme_hf",
    "mini-shapes": "mmbench.mini.source:load_mini_shapes",
    "librispeech": "mmbench.data.speech_sources:load_librispeech",
    "hf-audio": "mmbench.data.speech_sources:load_hf_audio",
    "mini-speech": "mmbench.mini.speech:load_mini_speech",
    "mini-motion": "mmbench.mini.motion:load_mini_motion",
    "msvd-qa": "mmbench.data.video_sources:load_msvd_qa",
    "msrvtt-qa": "mmbench.data.video_sources:load_msrvtt_qa",
    "activitynet-qa": "mmbench.data.video_sources:load_activitynet_qa",
    "activitynet-qa-hf": "mmbench.data.video_sources:load_activitynet_qa_hf",
    "nextqa": "mmbench.data.video_sources:load_nextqa",
    "msrvtt-retrieval": "mmbench.data.video_sources:load_msrvtt_retrieval",
    "mvbench": "mmbench.data.video_mc_sources:load_mvbench",
    "videomme": "mmbench.data.video_mc_sources:load_videomme",
}.items():
    DATA_FORMATS.register(_name, lazy=_target)

for _name, _target in {
    "vqa_accuracy": "mmbench.metrics.answer_metrics:VQAAccuracy",
    "exact_match": "mmbench.metrics.answer_metrics:ExactMatch",
    "anls": "mmbench.metrics.answer_metrics:ANLS",
    "relaxed_accuracy": "mmbench.metrics.answer_metrics:RelaxedAccuracy",
    "gqa_accuracy": "mmbench.metrics.answer_metrics:GQAAccuracy",
    "mc_accuracy": "mmbench.metrics.choice_metrics:MultipleChoiceAccuracy",
    "mmmu_accuracy": "mmbench.metrics.choice_metrics:MMMUAccuracy",
    "pope": "mmbench.metrics.choice_metrics:POPE",
    "mme": "mmbench.metrics.choice_metrics:MME",
    "unanswerable": "mmbench.metrics.answer_metrics:Unanswerable",
    "coco_captions": "mmbench.metrics.captions:COCOCaptionMetrics",
    "wer": "mmbench.metrics.wer:WordErrorRate",
    "classification": "mmbench.metrics.classification:Classification",
    "recall_at_k": "mmbench.metrics.retrieval:RetrievalRecall",
    "fid": "mmbench.metrics.generation_metrics:FID",
    "kid": "mmbench.metrics.generation_metrics:KID",
    "clip_score": "mmbench.metrics.generation_metrics:ClipScore",
    "precision_recall": "mmbench.metrics.generation_metrics:PrecisionRecall",
}.items():
    METRICS.register(_name, lazy=_target)
