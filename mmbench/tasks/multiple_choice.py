"""Multiple-choice questions (MMBench, MMMU, ScienceQA-IMG, SEED-Bench, AI2D, MMStar): options lettered in
the prompt as the benchmark's protocol writes them, the letter read back by the benchmark's own rule (the
``rule`` option of ``mc_accuracy``; ``mmmu_accuracy`` for MMMU), the unparseable share beside the accuracy.

``circular: true`` is MMBench's CircularEval: a question with k options is asked k times with the options
rotated one place each time (or the rotations the data file lists, as MMBench's TSV does), and it counts
only if every pass is right. A question without options (MMMU's open questions) is asked with
``open_prompt``. ``judge:`` names any text generator (e.g. an ``openai-chat`` endpoint such as a local vLLM)
that reads the letter where the rule finds none, as MMBench's protocol uses a GPT judge; its model, prompt
and replies are cached with each item and recorded in the samples. The default is rule-based and offline.

Items: ``question``, ``options`` (list), ``answer`` (letter or 0-based index; for an open question the
reference answer or list of answers), ``image`` or ``images`` (several: sent in front, in order; ``images:
first`` sends only the first, the fallback for single-image models; ``images: interleaved`` puts each where the
prompt's ``<image n>`` tag stands, ``image_numbers`` giving each image's n), optional ``hint`` and ``passes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from mmbench.capabilities import IMAGE_MARKER, GenerationConfig, GenerationRequest
from mmbench.data.images import load_image
from mmbench.errors import ItemError, MMBenchError
from mmbench.metrics import choice, mmmu
from mmbench.metrics.api import CHOICES
from mmbench.metrics.choice_metrics import read_pass
from mmbench.specs import ModelNeed
from mmbench.tasks.base import Batch, ScoreReport, decode_each, fill_prompt, template_fields
from mmbench.tasks.generative import GenerativeConfig, GenerativeTask, image_tokens
from mmbench.tasks.video_input import VideoParts, video_record_of

IMAGE_MODES = ("all", "first", "none", "interleaved")
# MMMU's image references in questions and options; with images: interleaved each becomes its image's place
IMAGE_TAG = re.compile(r"<image (\d+)>")
# Written for mmbench after the structure of VLMEvalKit's judge prompt (role, task, two examples, the item).
JUDGE_PROMPT = (
    "You grade answers to multiple-choice questions. Given a question, its options and an answer written in "
    "free form, reply with the letter of the option the answer means. If the answer means none of the "
    "options, reply Z. Reply with one upper-case letter only.\n\n"
    "Question: What fruit is in the picture?\nOptions:\nA. apple\nB. banana\nC. cherry\n"
    "Answer: it looks like a ripe yellow banana\nReply: B\n\n"
    "Question: What fruit is in the picture?\nOptions:\nA. apple\nB. banana\nC. cherry\n"
    "Answer: a bicycle\nReply: Z\n\n"
    "Question: {question}\nOptions:\n{options}\nAnswer: {answer}\nReply:")
JUDGE_PROMPT_VERSION = 1


@dataclass(frozen=True)
class MultipleChoiceConfig(GenerativeConfig):
    prompt: str = "{hint}{question}\n{options}\nAnswer with the option's letter from the given choices directly."
    open_prompt: str = "{hint}{question}\nAnswer the question using a single word or phrase."
    hint_format: str = "{hint}\n"  # how a non-empty hint enters {hint}; empty hints give ""
    option_format: str = "{letter}. {option}"
    option_separator: str = "\n"
    circular: bool = False
    images: str = "all"  # all (in front) | first | none | interleaved (each where its <image n> tag stands)
    judge: Mapping[str, Any] | None = None  # {model: NAME, args: {key: value}}
    max_new_tokens: int = 16


class MultipleChoice(GenerativeTask):
    kind: ClassVar[str] = "multiple-choice"
    Config: ClassVar[type] = MultipleChoiceConfig
    metric_inputs: ClassVar[str] = CHOICES
    default_metrics: ClassVar[tuple] = ("mc_accuracy",)
    submission_formats: ClassVar[tuple[str, ...]] = ("mmbench", "mmmu")

    def __init__(self, spec, ctx) -> None:
        super().__init__(spec, ctx)
        c = self.config
        for what, template, allowed in (("hint_format", c.hint_format, {"hint"}),
                                        ("option_format", c.option_format, {"letter", "option"})):
            unknown = set(template_fields(self.name, template, what)) - allowed
            if unknown:
                raise MMBenchError(f"task {self.name!r}: {what} {template!r} uses {{{sorted(unknown)[0]}}}; it can "
                                   f"use {', '.join('{' + a + '}' for a in sorted(allowed))}")
        template_fields(self.name, c.open_prompt, "open_prompt")
        if c.images not in IMAGE_MODES:
            raise MMBenchError(f"task {self.name!r}: images {c.images!r} is not one of {', '.join(IMAGE_MODES)}")
        if c.judge is not None and (not isinstance(c.judge, Mapping) or not isinstance(c.judge.get("model"), str)
                                    or set(c.judge) - {"model", "args"}):
            raise MMBenchError(f"task {self.name!r}: judge must be {{model: NAME, args: {{...}}}}, got {c.judge!r}")

    # -- items and passes --------------------------------------------------------------------------------
    def check_items(self, items: list[dict]) -> None:
        for it in items:
            self.passes(it)

    def passes(self, item: dict) -> list[dict]:
        """The (options, answer) the item is asked with: the data's own passes, CircularEval's rotations, or
        the options as given; an open question (no options) is one pass with the reference answer."""
        where = f"task {self.name!r}: item {item['id']!r}"
        options = item.get("options")
        if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
            raise MMBenchError(f"{where}: options {str(options)[:60]!r} are not a list of strings")
        if not options:
            if item.get("answer") in (None, "", []) and self.metrics:
                raise MMBenchError(f"{where}: an open question (no options) needs its reference `answer`")
            return [{"options": [], "answer": item.get("answer")}]
        choice.check_options(options, where)
        if item.get("passes"):  # the data's own rotations; without circular, only the first (original) pass
            listed = item["passes"] if self.config.circular else item["passes"][:1]
            return [{"options": list(p["options"]), "answer": None if p.get("answer") is None and not self.metrics
                     else choice.letter_of(p.get("answer"), len(p["options"]), where)} for p in listed]
        if item.get("answer") is None:
            if self.metrics:
                raise MMBenchError(f"{where}: no `answer` (a letter or an option index)")
            return [{"options": list(options), "answer": None}]
        answer = choice.letter_of(item["answer"], len(options), where)
        if self.config.circular:
            return [{"options": o, "answer": a} for o, a in choice.rotations(list(options), answer)]
        return [{"options": list(options), "answer": answer}]

    def prompt_for(self, item: dict, options: list[str]) -> str:
        c = self.config
        fields = self.prompt_fields(item)
        hint = item.get("hint")
        fields["hint"] = c.hint_format.format(hint=hint) if isinstance(hint, str) and hint.strip() else ""
        fields["options"] = c.option_separator.join(
            c.option_format.format(letter=choice.LETTERS[i], option=o) for i, o in enumerate(options))
        return fill_prompt(self.name, self.template if options else c.open_prompt, fields, item["id"])

    def prompt(self, item: dict) -> str:
        return self.prompt_for(item, self.passes(item)[0]["options"])

    def images(self, item: dict) -> tuple:
        if self.config.images == "none":
            return ()
        refs = item.get("images") if item.get("images") is not None else (
            [] if item.get("image") is None else [item["image"]])
        if "images" not in item and "image" not in item:
            raise ItemError("no image: the item has no `image` or `images` field")
        refs = list(refs)[:1] if self.config.images == "first" else list(refs)
        return tuple(load_image(r) for r in refs)

    # -- steps -------------------------------------------------------------------------------------------
    def visual(self, item: dict) -> VideoParts:
        """A video item's frames (as the generative kinds send them), else the item's images."""
        if "video" in item:
            return super().visual(item)
        return VideoParts(self.images(item), None, "", {})

    def prepare(self, model: Any, items: list[dict]) -> Batch:
        ok, parts, failed = decode_each(items, self.visual)
        requests, counts = [], []
        for it, part in zip(ok, parts):
            passes = self.passes(it)
            for p in passes:
                prompt, own = part.prefix + self.prompt_for(it, p["options"]), part.images
                if self.config.images == "interleaved" and "video" not in it:
                    prompt, own = interleave(prompt, own, it.get("image_numbers"))
                requests.append(GenerationRequest(prompt=prompt, images=own, system=self.config.system,
                                                  video=part.video))
            counts.append(len(passes))
        payload = model.prepare(requests, self.generation_config()) if requests else None
        return Batch(ok, (payload, counts), failed, [p.record for p in parts])

    def predict(self, model: Any, batch: Batch) -> list[dict]:
        payload, counts = batch.payload
        gens = model.generate(payload, self.generation_config())
        if len(gens) != sum(counts):
            return gens  # the runner reports the count mismatch
        outputs, start = [], 0
        for it, n in zip(batch.items, counts):
            own = gens[start:start + n]
            start += n
            outputs.append({"passes": [{"text": g.text, "prompt_sent": g.prompt_sent, **image_tokens(g)} for g in own],
                            "events": [e for g in own for e in g.events]})
        for out, record in zip(outputs, batch.extras):
            if record:
                out["video"] = record
        if self.config.judge is not None:
            self.judge(batch.items, outputs)
        return outputs

    # -- the judge ------------------------------------------------------------------------------------------
    def needs(self) -> dict:
        if self.config.judge is None:
            return {}
        args = tuple(sorted((str(k), str(v)) for k, v in dict(self.config.judge.get("args") or {}).items()))
        return {"judge": ModelNeed("text-generator", self.config.judge["model"], args=args)}

    def rule(self) -> str:
        return next((m.options.rule for m in self.metrics if m.name == "mc_accuracy"), "letter")

    def judge(self, items: list[dict], outputs: list[dict]) -> None:
        """Ask the judge for the letter of every pass the rule cannot read, in questions no pass has already
        failed (a failed pass decides the question, as MMBench's evaluation skips the judge then)."""
        judge, rule, todo = self.run.models["judge"], self.rule(), []
        for it, out in zip(items, outputs):
            passes = self.passes(it)
            if not passes[0]["options"]:
                continue
            reads = [read_pass(rule, a, p["options"], it["id"]) for a, p in zip(out["passes"], passes)]
            if any(r.letter is not None and r.letter != p["answer"] for r, p in zip(reads, passes)):
                continue
            todo += [(a, it, p) for a, p, r in zip(out["passes"], passes, reads) if r.letter is None]
        if not todo:
            return
        config = GenerationConfig(max_new_tokens=8)
        prompts = [JUDGE_PROMPT.format(question=it.get("question", ""), answer=a["text"], options="\n".join(
            f"{choice.LETTERS[i]}. {o}" for i, o in enumerate(p["options"]))) for a, it, p in todo]
        replies = judge.generate(judge.prepare([GenerationRequest(prompt=q) for q in prompts], config), config)
        for (answer, _, p), prompt, reply in zip(todo, prompts, replies):
            letter = choice.read_vlmevalkit(reply.text, p["options"]).letter
            answer.update({"judge": letter, "judge_prompt": prompt, "judge_reply": reply.text})

    def output_config(self) -> dict:
        out = super().output_config()
        if self.config.judge is not None:
            out["judge_prompt_version"] = JUDGE_PROMPT_VERSION
        return out

    # -- scoring -------------------------------------------------------------------------------------------
    def score(self, items: list[dict], outputs: list[dict | None]) -> ScoreReport:
        passes = [self.passes(it) for it in items]
        # A failed item (image unreadable) scores as unanswered passes: wrong.
        answers = [[{"text": ""} for _ in ps] if o is None else o["passes"] for o, ps in zip(outputs, passes)]
        targets = [{**it, "passes": ps} for it, ps in zip(items, passes)]
        reports = self.run_metrics(answers, targets) if self.metrics else []
        samples = {}
        for i, (it, out) in enumerate(zip(items, outputs)):
            sample = {"question": it.get("question"), "reference": it.get("answer"),
                      "passes": None if out is None else out["passes"], **video_record_of(out)}
            for r in reports:
                sample.update({k: v[i] for k, v in r.per_item.items()})
            read = sample.get("choice", sample.get("parsed"))
            # what the model answered, as one string (a probe compares it across conditions); unscored: the text
            if read is None:
                read = [a["text"] for a in (out or {}).get("passes", [])]
            sample["answer"] = "/".join(str(x) for x in read) if isinstance(read, list) else str(read)
            samples[it["id"]] = sample
        notes = [n for r in reports for n in r.notes]
        if not reports:
            notes.append(f"no reference answers: the answers are written to the {self.config.submission} "
                         f"submission file (artifacts) for the benchmark's evaluation server; no score here")
        return ScoreReport(metrics=[v for r in reports for v in r.values], item_ids=[it["id"] for it in items],
                           stats={k: v for r in reports for k, v in r.stats.items()}, aggregator=self.aggregator,
                           notes=notes, samples=samples, artifacts=self.artifacts(items, answers))

    def artifacts(self, items: list[dict], answers: list[list[dict]]) -> dict:
        """The evaluation server's file for a test split: MMBench's (one row per pass, index + prediction +
        the options shown) or MMMU's ({id: answer})."""
        if self.config.submission == "mmbench":
            rows = []
            for it, passes in zip(items, answers):
                base = it.get("question_id", it["id"])
                # MMBench numbers pass p of question i as i + p * 1e6 (its TSV lists them; rotations made here
                # get the same numbers)
                indices = it.get("pass_indices") or [base if p == 0 else int(base) + p * 1_000_000
                                                     for p in range(len(passes))]
                for index, p, a in zip(indices, self.passes(it), passes):
                    rows.append({"index": index, "question": it.get("question"), "prediction": a["text"],
                                 **{choice.LETTERS[j]: o for j, o in enumerate(p["options"])}})
            return {"submission.json": rows}
        if self.config.submission == "mmmu":  # MMMU's {id: parsed prediction}: a letter, or open candidates
            return {"submission.json": {
                str(it.get("question_id", it["id"])): choice.read_mmmu(a[0]["text"], it["options"], it["id"]).letter
                if it["options"] else mmmu.parse_open(a[0]["text"]) for it, a in zip(items, answers)}}
        return {}


def interleave(prompt: str, images: tuple, numbers: list[int] | None) -> tuple[str, tuple]:
    """The prompt with each ``<image n>`` tag replaced by the place of image n (IMAGE_MARKER) and the images in
    the order their places come (a tag used twice places its image twice, as VLMEvalKit's interleaved MMMU
    prompt does); images no tag names go in front. ``numbers``: the tag number of each image (default 1..n)."""
    index = {n: i for i, n in enumerate(numbers or range(1, len(images) + 1))}
    order: list[int] = []

    def place(match: re.Match) -> str:
        i = index.get(int(match.group(1)))
        if i is None or i >= len(images):
            return match.group(0)  # an image the item does not have: the tag stays text
        order.append(i)
        return IMAGE_MARKER

    text = IMAGE_TAG.sub(place, prompt)
    unused = [i for i in range(len(images)) if i not in order]
    return IMAGE_MARKER * len(unused) + text, tuple(images[i] for i in unused + order)
