"""PocketSphinx: a real offline English recogniser whose acoustic model, LM and dictionary ship in its wheel.

One ``pocketsphinx.Decoder`` per adapter; utterances are decoded one after another (the engine has no
batch API), each as a whole utterance (``full_utt=True``: cepstral mean normalisation sees all of it).
The feature front end keeps state from one utterance to the next (its running cepstral mean), which changed
2 of the 56 mini-speech transcripts with the order they were decoded in; ``reinit_feat()`` before every
utterance (25 us) makes each transcript depend on its own audio only, as a fresh decoder would, so results
do not depend on batch order, batch size or what a resumed run decoded before.
The default model is the wheel's en-us acoustic model, trigram LM and CMU dictionary; ``hmm``, ``lm`` and
``dict`` point at other files, and ``lm_corpus`` builds a domain trigram LM from a text file with
``pocketsphinx.lm.ArpaBoLM``. The weights fingerprint hashes every model file the decoder loads.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from mmbench.adapters.base import Adapter, ModelArgs, hash_model_files
from mmbench.capabilities import Capability
from mmbench.errors import MMBenchError
from mmbench.specs import fingerprint

BATCHING = ("not batched: one Decoder, utterances decoded one after another, each as a whole utterance with "
            "the feature front end reset before it (transcripts independent of decoding order)")


@dataclass(frozen=True)
class PocketSphinxArgs(ModelArgs):
    hmm: str | None = None  # acoustic model folder (default: the wheel's en-us)
    lm: str | None = None  # n-gram LM, ARPA text or binary .lm.bin (default: the wheel's en-us.lm.bin)
    dict: str | None = None  # pronunciation dictionary (default: the wheel's cmudict-en-us.dict)
    # A text file, one sentence per line, from which a trigram ARPA LM is built (ArpaBoLM) to replace `lm`.
    lm_corpus: str | None = None
    # More decoder settings as key=value, separated by | (e.g. beam=1e-60|pbeam=1e-60|samprate=8000).
    options: tuple[str, ...] = ()


def pcm16(wave: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as little-endian 16-bit PCM (what ``process_raw`` reads), clipped."""
    return np.clip(np.round(np.asarray(wave, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2").tobytes()


def corpus_lm(corpus: Path, out: Path) -> Path:
    """Write a trigram ARPA LM of ``corpus`` (one sentence per line) to ``out`` with pocketsphinx's ArpaBoLM.

    Lines are lower-cased and everything but letters, digits and apostrophes becomes a space, so that the
    words match the CMU dictionary's spelling. ``add_start=True`` adds <s> / </s>, without which the decoder
    fails to initialise.
    """
    from pocketsphinx.lm import ArpaBoLM

    try:
        text = corpus.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MMBenchError(f"pocketsphinx lm_corpus {corpus} cannot be read ({exc}); pass a UTF-8 text file, "
                           f"one sentence per line") from exc
    lines = [" ".join(re.sub(r"[^\w']+", " ", line.lower()).split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise MMBenchError(f"pocketsphinx lm_corpus {corpus} has no words; pass a text file, one sentence per line")
    lm = ArpaBoLM(text="\n".join(lines), add_start=True)
    lm.compute()
    with open(out, "w", encoding="utf-8") as fh:
        lm.write(fh)
    return out


class PocketSphinx(Adapter):
    """The pocketsphinx recogniser (16 kHz by default, the rate of its en-us acoustic model); not batched."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TRANSCRIBE})
    Args: ClassVar[type] = PocketSphinxArgs
    default_batch_size = 8  # only how many utterances a preparation thread prepares ahead

    def __init__(self, args: PocketSphinxArgs, name: str = "") -> None:
        super().__init__(args, name)
        try:
            import pocketsphinx
        except ImportError as exc:
            raise MMBenchError("the pocketsphinx adapter needs the pocketsphinx package: pip install pocketsphinx") \
                from exc
        if args.pretrained:
            raise MMBenchError("pocketsphinx takes its model files as hmm=, lm= and dict= (or lm_corpus=), "
                               "not pretrained=")
        if args.lm and args.lm_corpus:
            raise MMBenchError("pocketsphinx: give lm= or lm_corpus=, not both")
        self._tmp: Path | None = None
        config = pocketsphinx.Config()  # holds the wheel's default hmm, lm and dict
        for key in ("hmm", "lm", "dict"):
            value = getattr(args, key)
            if value:
                path = Path(value).expanduser()
                if not path.exists():
                    raise MMBenchError(f"pocketsphinx {key}={value!r} not found; pass an existing "
                                       f"{'folder' if key == 'hmm' else 'file'}")
                config[key] = str(path)
        self.lm_source = f"file {config['lm']}" if not args.lm_corpus else ""
        if args.lm_corpus:
            corpus = Path(args.lm_corpus).expanduser()
            if not corpus.is_file():
                raise MMBenchError(f"pocketsphinx lm_corpus={args.lm_corpus!r} not found; pass a text file")
            self._tmp = Path(tempfile.mkdtemp(prefix="mmbench-pocketsphinx-"))
            config["lm"] = str(corpus_lm(corpus, self._tmp / "corpus.arpa"))
            self.lm_source = f"trigram ARPA built from {corpus} with pocketsphinx.lm.ArpaBoLM"
        for option in args.options:
            key, sep, value = option.partition("=")
            if not sep:
                raise MMBenchError(f"pocketsphinx option {option!r} is not key=value (e.g. beam=1e-60)")
            try:
                config[key.strip().lstrip("-")] = _typed(value.strip())
            except (KeyError, ValueError, TypeError) as exc:
                raise MMBenchError(f"pocketsphinx option {option!r} is not a decoder setting ({exc}); see "
                                   f"`pocketsphinx.Config()` for the names") from exc
        self.files = {key: config[key] for key in ("hmm", "lm", "dict")}
        try:
            self.decoder = pocketsphinx.Decoder(config)
        except RuntimeError as exc:
            raise MMBenchError(f"pocketsphinx could not initialise with hmm={self.files['hmm']}, "
                               f"lm={self.files['lm']}, dict={self.files['dict']} ({exc}); check the model "
                               f"files (an ARPA LM needs <s> and </s>)") from exc
        self.sample_rate = int(float(config["samprate"]))
        self.version = metadata.version("pocketsphinx")
        self._weights_fp: str | None = None

    # -- provenance -------------------------------------------------------------------------------
    def weights_fingerprint(self) -> str:
        """A hash of every model file the decoder loaded (acoustic model folder, LM, dictionary)."""
        if self._weights_fp is None:
            parts = [[key, hash_model_files(Path(path))] for key, path in sorted(self.files.items()) if path]
            self._weights_fp = fingerprint(["pocketsphinx", parts])
        return self._weights_fp

    def fingerprint(self) -> str:
        # The built LM's temporary path changes every run; its content is in the weights fingerprint.
        args = {k: v for k, v in dataclasses.asdict(self.args).items() if k not in ("device", "batch_size")}
        return fingerprint([type(self).__qualname__, args, self.version, self.weights_fingerprint()])

    def extra_description(self) -> dict:
        return {"engine": f"pocketsphinx {self.version}", "hmm": self.files["hmm"], "lm": self.lm_source,
                "dict": self.files["dict"], "sample_rate": self.sample_rate, "batching": BATCHING,
                "dtype": "int16 PCM"}

    # -- the protocol -----------------------------------------------------------------------------
    def prepare(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[bytes]:
        if sample_rate != self.sample_rate:
            raise MMBenchError(f"pocketsphinx expects {self.sample_rate} Hz audio, got {sample_rate} Hz")
        return [pcm16(w) for w in waveforms]

    def transcribe(self, prepared: list[bytes]) -> list[str]:
        texts = []
        for pcm in prepared:
            self.decoder.reinit_feat()  # forget the previous utterance's cepstral mean
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()  # None when nothing was recognised
            texts.append(hyp.hypstr.strip() if hyp is not None else "")
        return texts

    def close(self) -> None:
        self.decoder = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _typed(value: str) -> Any:
    """A decoder setting's value: pocketsphinx's Config wants ints, floats and bools as such."""
    lowered = value.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
