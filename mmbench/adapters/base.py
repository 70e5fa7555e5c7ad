"""The adapter base: typed model options from ``--model-args``, device/dtype handling and provenance."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from mmbench.capabilities import Capability
from mmbench.errors import MMBenchError
from mmbench.specs import fingerprint

DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
          "bf16": "bfloat16", "bfloat16": "bfloat16", "auto": "auto"}


@dataclass(frozen=True)
class ModelArgs:
    """Options every adapter accepts. Adapters subclass this to add their own fields."""

    pretrained: str | None = None  # a hub name or a local folder
    revision: str | None = None
    device: str = "auto"  # auto: cuda when available, else cpu
    dtype: str = "fp32"
    batch_size: int | None = None  # overrides the task default and --batch-size for this model
    trust_remote_code: bool = False  # only when the user asks for it


def _coerce(value: str, typ: Any, key: str, cls_name: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value.lower() in ("none", "null", ""):
            return None
        typ = args[0]
    try:
        if typ is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ in (int, float, str):
            return typ(value)
        if typing.get_origin(typ) is tuple:
            return tuple(v for v in value.split("|") if v)
    except ValueError:
        raise MMBenchError(f"model arg {key}={value!r} for {cls_name}: expected {getattr(typ, '__name__', typ)}")
    return value


def parse_model_args(args_cls: type, raw: Mapping[str, Any], cls_name: str) -> Any:
    """Build an Args dataclass from string options, naming the accepted keys on a wrong one."""
    hints = typing.get_type_hints(args_cls)
    names = [f.name for f in dataclasses.fields(args_cls)]
    values = {}
    for key, value in raw.items():
        if key not in names:
            import difflib
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise MMBenchError(f"unknown model arg {key!r} for {cls_name}: {hint}accepted: {', '.join(names)}")
        values[key] = _coerce(value, hints[key], key, cls_name) if isinstance(value, str) else value
    if "dtype" in values and values["dtype"] not in DTYPES:
        raise MMBenchError(f"model arg dtype={values['dtype']!r}: use one of fp32, fp16, bf16, auto")
    return args_cls(**values)


DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")


def check_device(device: str, what: str = "device") -> None:
    """A device name mmbench can place a model on, else a one-line error."""
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise MMBenchError(f"{what} {device!r} is not a device: use auto, cpu, cuda, cuda:N or mps")


def resolve_device(device: str) -> str:
    import torch

    if device in ("auto", "", None):
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MMBenchError(f"device {device!r} requested but CUDA is not available here; use device=cpu")
    if device.startswith("cuda:") and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise MMBenchError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                           f"device(s)")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MMBenchError("device 'mps' requested but MPS is not available here; use device=cpu")
    return device


def torch_dtype(name: str) -> Any:
    import torch

    resolved = DTYPES[name]
    return "auto" if resolved == "auto" else getattr(torch, resolved)


def inputs_to(inputs: Mapping[str, Any], device: Any, dtype: Any) -> dict:
    """A processor's output ready for the model: tensors moved to ``device`` (without blocking when the runner
    page-locked them, so the copy overlaps the previous batch's compute), floating ones (pixels, audio
    features) cast to the model's ``dtype``; everything else passed through."""
    import torch

    out = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=value.is_pinned())
            if value.is_floating_point():
                value = value.to(dtype)
        out[key] = value
    return out


def hash_model_files(path: Path, full_limit: int = 64 << 20) -> str:
    """Fingerprint a local model folder: every file's name and size, and its bytes (files over 64 MiB: the
    first and last MiB only, so a 14 GB checkpoint is fingerprinted in milliseconds)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(path) if path.is_dir() else f.name}:{size}\n".encode())
        with open(f, "rb") as fh:
            if size <= full_limit:
                h.update(fh.read())
            else:
                h.update(fh.read(1 << 20))
                fh.seek(size - (1 << 20))
                h.update(fh.read())
    return h.hexdigest()[:16]


class Adapter:
    """Base of all model adapters. Subclasses set ``capabilities`` and ``Args`` and implement a protocol
    from mmbench.capabilities."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Args: ClassVar[type] = ModelArgs
    default_batch_size: ClassVar[int | None] = None
    # an image+prompt->text adapter that takes GenerationRequest.video natively (its processor encodes the
    # frames as one video); the others get a video's frames as images (mmbench/tasks/video_input.py)
    accepts_video: bool = False

    def __init__(self, args: ModelArgs, name: str = "") -> None:
        self.args = args
        self.name = name or type(self).__name__
        self.device = resolve_device(args.device)

    @classmethod
    def from_args(cls, raw: Mapping[str, Any], name: str = "") -> "Adapter":
        return cls(parse_model_args(cls.Args, raw, name or cls.__name__), name=name)

    # -- provenance -------------------------------------------------------------------------------
    def weights_fingerprint(self) -> str:
        """Identifies the weights: local files are hashed; hub models use name + resolved revision."""
        p = self.args.pretrained
        if p and Path(p).expanduser().exists():
            return hash_model_files(Path(p).expanduser())
        return fingerprint([p, self.args.revision, getattr(self, "resolved_revision", None)])

    def describe(self) -> dict:
        """What produced the outputs: adapter, weights, options, sizes. Written into every result."""
        d = {"adapter": f"{type(self).__module__}.{type(self).__qualname__}", "name": self.name,
             "capabilities": sorted(c.value for c in self.capabilities),
             "args": dataclasses.asdict(self.args), "device": self.device,
             "weights_fingerprint": self.weights_fingerprint()}
        d.update(self.extra_description())
        return d

    def extra_description(self) -> dict:
        return {}

    @property
    def family(self) -> str:
        """The model family a task's per-family prompt may be keyed on (e.g. the transformers model_type
        "llava", "blip-2", "qwen2_vl"); empty when the adapter has no such notion."""
        return ""

    def fingerprint(self) -> str:
        """Everything that can change an output: cache key component for per-item outputs."""
        args = self.fingerprint_args()
        # processors, chat-template rendering and model code change between library versions
        from mmbench.provenance import package_versions

        versions = {k: v for k, v in package_versions().items() if k in ("transformers", "tokenizers")}
        return fingerprint([type(self).__qualname__, args, self.weights_fingerprint(), versions])

    def fingerprint_args(self) -> dict:
        """The args that can change an output (device, batch size and device map do not, beyond float noise)."""
        args = dataclasses.asdict(self.args)
        for k in ("device", "batch_size", "device_map"):
            args.pop(k, None)
        return args

    def close(self) -> None:
        """Release resources (processes, GPU memory)."""


@dataclass(frozen=True)
class ModelPreset:
    """A registered name for an adapter (or another preset) with fixed options (e.g. ``mini-clip`` = hf-clip +
    a folder); plain data, resolved to its Adapter class by mmbench.adapters.resolve."""

    adapter: str
    args: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    family: str = ""  # the model family it loads (shown by `mmbench list models`); empty: the adapter's own

    def fixed_args(self) -> dict[str, str]:
        """The preset's args as the strings --model-args would give (what the adapter's Args parse)."""
        return {k: v if isinstance(v, str) else str(v) for k, v in self.args.items()}
