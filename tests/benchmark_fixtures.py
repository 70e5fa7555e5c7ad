"""Small copies of standard benchmarks in their exact official release layouts and in the Hugging Face hub
cache layout of their lmms-lab copies (parquet files with embedded images, a README declaring the configs
and splits, a refs/main -> snapshot folder), plus a scripted VLM whose answers are known in advance.

Each benchmark is a list of QUESTIONS (question, answer the scripted model gives, references, fields), so the
expected scores can be worked out by hand in the tests.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import ClassVar

from PIL import Image

from mmbench.adapters.base import Adapter, ModelArgs
from mmbench.capabilities import Capability, Generation

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}


def image(colour: str, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), COLOURS[colour]).save(buf, fmt)
    return buf.getvalue()


def write(path: Path, data: bytes | str | object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data)
    else:
        path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------------------------ the scripted model

class ScriptedArgs(ModelArgs):
    pass


class Scripted(Adapter):
    """Answers each prompt with the answer scripted for the question it contains (the longest match); a
    prompt with no scripted question (captioning) gets "a <colour of the image> shape"."""

    capabilities: ClassVar[frozenset] = frozenset({Capability.GENERATE_TEXT})
    answers: ClassVar[dict[str, str]] = {}

    def prepare(self, requests, config):
        return list(requests)

    def generate(self, prepared, config):
        out = []
        for r in prepared:
            hits = [q for q in self.answers if q in r.prompt]
            if hits:
                text = self.answers[max(hits, key=len)]
            else:
                rgb = r.images[0].convert("RGB").getpixel((0, 0)) if r.images else None
                colour = min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], rgb))) if rgb else "no"
                text = f"a {colour} shape"
            out.append(Generation(text, prompt_sent=r.prompt))
        return out


# ------------------------------------------------------------------------------------ the benchmarks
# (question, scripted answer, references, extra fields, image colour)

VQAV2 = [
    ("how many dogs are there?", "two", ["2"] * 10, {"answer_type": "number", "question_type": "how many"}, "red"),
    ("is it sunny?", "yes", ["yes"] * 2 + ["no"] * 8, {"answer_type": "yes/no", "question_type": "is it"}, "green"),
    ("what color is the car?", "Red.", ["red"] * 10, {"answer_type": "other", "question_type": "what color"}, "blue"),
]
VQAV2_EXPECTED = {"vqa_accuracy": (1.0 + 0.6 + 1.0) / 3, "vqa_accuracy[answer_type=yes/no]": 0.6}

TEXTVQA = [  # EvalAI rules: "dog's" -> "dog 's" on both sides; "1,000" -> "1000" on both sides
    ("whose bone is it?", "dog's", ["dog's"] * 10, {"ocr": ["DOG'S", "BONE"]}, "red"),
    ("what is the price?", "1000", ["1,000"] * 10, {"ocr": ["$1,000"]}, "green"),
    ("what does the sign say?", "nope", ["stop"] * 10, {"ocr": ["STOP"]}, "blue"),
]
TEXTVQA_EXPECTED = 2 / 3

VIZWIZ = [  # prediction normalised, references compared as given
    ("what is this?", "Unanswerable", ["unanswerable"] * 10, {"answer_type": "unanswerable", "answerable": 0}, "red"),
    ("what colour is the mug?", "red", ["red"] * 10, {"answer_type": "other", "answerable": 1}, "green"),
    ("how many coins?", "3", ["three"] * 10, {"answer_type": "number", "answerable": 1}, "blue"),
    ("which flavour is it?", "unanswerable", ["mint"] * 10, {"answer_type": "other", "answerable": 1}, "yellow"),
]
VIZWIZ_EXPECTED = {"vqa_accuracy": 0.5, "vqa_accuracy[answer_type=other]": 0.5,
                   "vqa_accuracy[answer_type=unanswerable]": 1.0, "vqa_accuracy[answer_type=number]": 0.0,
                   "vqa_accuracy[answerable=0]": 1.0, "vqa_accuracy[answerable=1]": 1 / 3,
                   "unanswerable_precision": 0.5, "unanswerable_recall": 1.0, "unanswerable_f1": 2 / 3,
                   "unanswerable_ap": 0.5}

GQA = [  # (question, answer, [gold], {structural}, colour); the prediction is stripped, rstrip('.'), lowercased
    ("is there a cat?", "Yes.", ["yes"], {"structural": "verify"}, "red"),
    ("which side is the cup on?", "Left ", ["left"], {"structural": "query"}, "green"),
    ("what is on the floor?", "the table", ["table"], {"structural": "query"}, "blue"),
]
GQA_EXPECTED = {"gqa_accuracy": 2 / 3, "gqa_accuracy[answer_kind=binary]": 1.0,
                "gqa_accuracy[answer_kind=open]": 0.5}

DOCVQA = [  # ANLS: 1 - 1/5 = 0.8; exactly 0.5 is kept; best of two references 1 - 1/3
    ("what is the greeting?", "helo", ["Hello"], {}, "red"),
    ("what are the initials?", "ac", ["ab"], {}, "green"),
    ("what is the code?", "abd", ["xyz", "abc"], {}, "blue"),
]
DOCVQA_EXPECTED = (0.8 + 0.5 + (1 - 1 / 3)) / 3

INFOVQA = [  # whitespace and case normalised before the distance; an empty answer scores 0
    ("what is the total?", "42", ["42"], {}, "red"),
    ("which continent?", "south  America", ["south america"], {}, "green"),
    ("what year?", "", ["1999"], {}, "blue"),
]

CHARTQA = [  # (question, answer, [label], {split}, colour): relaxed accuracy
    ("what share voted?", " 0.45 ", ["45%"], {"split": "human"}, "red"),  # "45%" = 0.45: right
    ("how many units?", "50%", ["50"], {"split": "human"}, "green"),  # 0.5 vs 50: wrong
    ("what is the minimum?", "0.0", ["0"], {"split": "augmented"}, "blue"),  # zero target: string equality
    ("what is the maximum?", "105", ["100"], {"split": "augmented"}, "yellow"),  # exactly 5%: right
    ("is it rising?", "yes", ["Yes"], {"split": "augmented"}, "red"),  # case-insensitive
]
CHARTQA_EXPECTED = {"relaxed_accuracy": 0.6, "relaxed_accuracy[split=human]": 0.5,
                    "relaxed_accuracy[split=augmented]": 2 / 3, "relaxed_accuracy[mean over split]": (0.5 + 2 / 3) / 2}

CAPTION_IMAGES = [  # (image id, colour, references, NoCaps domain)
    (11, "red", ["a red square", "a big red shape", "red colour"], "in-domain"),
    (12, "green", ["a green square", "something green", "a green shape"], "near-domain"),
    (13, "blue", ["a blue square", "the blue thing", "blue"], "out-domain"),
    (14, "yellow", ["a yellow square", "a yellow thing", "yellow shape"], "near-domain"),
]


def scripted_answers() -> dict[str, str]:
    return {q: a for bench in (VQAV2, TEXTVQA, VIZWIZ, GQA, DOCVQA, INFOVQA, CHARTQA) for q, a, *_ in bench}


# ------------------------------------------------------------------------------------ official layouts

def write_official(root: Path) -> Path:
    """Every benchmark's official release files under ``root`` (the --data-dir of the task files)."""
    # VQAv2 val, test-dev (+ the full test2015 list) and OK-VQA: COCO images named by id
    for split, prefix in (("val2014", "COCO_val2014_"), ("test2015", "COCO_test2015_")):
        for i, (*_, colour) in enumerate(VQAV2):
            write(root / "coco" / split / f"{prefix}{i + 1:012d}.jpg", image(colour, "JPEG"))
    qs = [{"image_id": i + 1, "question": q, "question_id": 100 + i} for i, (q, *_) in enumerate(VQAV2)]
    anns = [{"question_id": 100 + i, "image_id": i + 1, "multiple_choice_answer": refs[0], **fields,
             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(refs)]}
            for i, (_, _, refs, fields, _) in enumerate(VQAV2)]
    write(root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json", {"questions": qs, "data_subtype": "val2014"})
    write(root / "vqav2" / "v2_mscoco_val2014_annotations.json", {"annotations": anns})
    write(root / "vqav2" / "v2_OpenEnded_mscoco_test-dev2015_questions.json", {"questions": qs[:2]})
    write(root / "vqav2" / "v2_OpenEnded_mscoco_test2015_questions.json",
          {"questions": qs + [{"image_id": 1, "question": "extra?", "question_id": 999}]})
    ok_anns = [{**a, "answers": [{"answer": x["answer"], "raw_answer": x["answer"], "answer_confidence": "yes",
                                  "answer_id": x["answer_id"]} for x in a["answers"]]} for a in anns]
    write(root / "okvqa" / "OpenEnded_mscoco_val2014_questions.json", {"questions": qs})
    write(root / "okvqa" / "mscoco_val2014_annotations.json", {"annotations": ok_anns})
    # TextVQA: the annotations file, the Rosetta OCR file, train_images/<image_id>.jpg
    data, ocr = [], []
    for i, (q, _, refs, fields, colour) in enumerate(TEXTVQA):
        image_id = f"{i:016x}"
        write(root / "textvqa" / "train_images" / f"{image_id}.jpg", image(colour, "JPEG"))
        data.append({"question_id": 34602 + i, "question": q, "image_id": image_id, "answers": refs,
                     "image_classes": ["sign"], "flickr_original_url": "", "set_name": "val"})
        ocr.append({"image_id": image_id, "ocr_tokens": fields["ocr"], "ocr_info": []})
    write(root / "textvqa" / "TextVQA_0.5.1_val.json", {"dataset_type": "val", "dataset_name": "textvqa", "data": data})
    write(root / "textvqa" / "TextVQA_Rosetta_OCR_v0.2_val.json", {"data": ocr})
    # VizWiz: annotations/{val,test}.json (a list), images in val/ and test/
    val, test = [], []
    for i, (q, _, refs, fields, colour) in enumerate(VIZWIZ):
        write(root / "vizwiz" / "val" / f"VizWiz_val_{i:08d}.jpg", image(colour, "JPEG"))
        write(root / "vizwiz" / "test" / f"VizWiz_test_{i:08d}.jpg", image(colour, "JPEG"))
        val.append({"image": f"VizWiz_val_{i:08d}.jpg", "question": q, **fields,
                    "answers": [{"answer": a, "answer_confidence": "yes"} for a in refs]})
        test.append({"image": f"VizWiz_test_{i:08d}.jpg", "question": q})
    write(root / "vizwiz" / "annotations" / "val.json", val)
    write(root / "vizwiz" / "annotations" / "test.json", test)
    # GQA: {qid: {...}} with one unbalanced question that the evaluation ignores
    gqa = {}
    for i, (q, _, refs, fields, colour) in enumerate(GQA):
        write(root / "gqa" / "images" / f"n{i}.jpg", image(colour, "JPEG"))
        gqa[f"20{i:06d}"] = {"imageId": f"n{i}", "question": q, "answer": refs[0], "fullAnswer": refs[0],
                             "isBalanced": True, "types": {"structural": fields["structural"], "semantic": "attr"}}
    gqa["20999999"] = {"imageId": "n0", "question": "unbalanced?", "answer": "no", "isBalanced": False,
                       "types": {"structural": "verify"}}
    write(root / "gqa" / "testdev_balanced_questions.json", gqa)
    # DocVQA (image relative to the split folder) and InfographicVQA (image_local_name)
    rows = []
    for i, (q, _, refs, _, colour) in enumerate(DOCVQA):
        write(root / "docvqa" / "val" / "documents" / f"doc{i}_1.png", image(colour))
        rows.append({"questionId": 49150 + i, "question": q, "question_types": ["form"], "image": f"documents/doc{i}_1.png",
                     "docId": 14465 + i, "ucsf_document_id": "x", "ucsf_document_page_no": "1", "answers": refs,
                     "data_split": "val"})
    write(root / "docvqa" / "val" / "val_v1.0_withQT.json",
          {"dataset_name": "docvqa", "dataset_split": "val", "dataset_version": "1.0", "data": rows})
    rows = []
    for i, (q, _, refs, _, colour) in enumerate(INFOVQA):
        write(root / "infovqa" / "infographicsvqa_images" / f"{20470 + i}.jpeg", image(colour, "JPEG"))
        rows.append({"questionId": 65718 + i, "question": q, "image_local_name": f"{20470 + i}.jpeg",
                     "image_url": "", "ocr_output_file": f"{20470 + i}.json", "answers": refs,
                     "answer_type": ["single span"], "evidence": ["text"], "operation/reasoning": []})
    write(root / "infovqa" / "infographicsVQA_val_v1.0_withQT.json",
          {"dataset_name": "infographicVQA", "dataset_split": "val", "data": rows})
    # ChartQA: test/test_{human,augmented}.json + test/png/
    for split in ("human", "augmented"):
        entries = []
        for i, (q, _, refs, fields, colour) in enumerate(CHARTQA):
            if fields["split"] == split:
                write(root / "chartqa" / "test" / "png" / f"{split}{i}.png", image(colour))
                entries.append({"imgname": f"{split}{i}.png", "query": q, "label": refs[0]})
        write(root / "chartqa" / "test" / f"test_{split}.json", entries)
    # Captions: Karpathy COCO and Flickr30k split files, NoCaps val (COCO format with domains)
    coco_images, flickr_images, nocaps_images, nocaps_anns = [], [], [], []
    for image_id, colour, refs, domain in CAPTION_IMAGES:
        write(root / "coco" / "val2014" / f"COCO_val2014_{image_id:012d}.jpg", image(colour, "JPEG"))
        write(root / "flickr30k" / "flickr30k-images" / f"{image_id}.jpg", image(colour, "JPEG"))
        write(root / "nocaps" / "validation" / f"{image_id:016x}.jpg", image(colour, "JPEG"))
        sentences = [{"raw": r, "tokens": r.split(), "imgid": image_id, "sentid": k} for k, r in enumerate(refs)]
        coco_images.append({"filepath": "val2014", "filename": f"COCO_val2014_{image_id:012d}.jpg", "imgid": image_id,
                            "split": "test", "sentences": sentences, "cocoid": image_id})
        flickr_images.append({"filename": f"{image_id}.jpg", "imgid": image_id, "split": "test", "sentences": sentences})
        nocaps_images.append({"id": image_id, "file_name": f"{image_id:016x}.jpg", "domain": domain,
                              "open_images_id": f"{image_id:016x}", "height": 24, "width": 24})
        nocaps_anns += [{"image_id": image_id, "id": image_id * 10 + k, "caption": r} for k, r in enumerate(refs)]
    coco_images.append({**coco_images[0], "split": "train", "imgid": 99, "cocoid": 99})  # not in the test split
    write(root / "coco" / "dataset_coco.json", {"images": coco_images, "dataset": "coco"})
    write(root / "flickr30k" / "dataset_flickr30k.json", {"images": flickr_images, "dataset": "flickr30k"})
    write(root / "nocaps" / "nocaps_val_4500_captions.json",
          {"info": {}, "licenses": [], "images": nocaps_images, "annotations": nocaps_anns})
    return root


# ------------------------------------------------------------------------------------ the HF cache layout

def _parquet(path: Path, columns: dict, features: dict) -> None:
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=datasets.Features(features)).to_parquet(str(path))


def _repo(hub: Path, repo: str, configs: dict[str, dict[str, dict]]) -> None:
    """A dataset repository in the hub cache: {config: {split: (columns, features)}} as parquet files under
    <config>/ (or data/ for the default config) and a README declaring them, as the lmms-lab repos do."""
    folder = hub / f"datasets--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = folder / "snapshots" / commit
    readme = ["---", "configs:"]
    for config, splits in configs.items():
        sub = "data" if config == "default" else config
        readme += [f"- config_name: {config}", "  data_files:"]
        for split, (columns, features) in splits.items():
            _parquet(snapshot / sub / f"{split}-00000-of-00001.parquet", columns, features)
            readme += [f"  - split: {split}", f"    path: {sub}/{split}-*"]
    write(snapshot / "README.md", "\n".join(readme + ["---", f"# {repo} (test fixture)", ""]))
    write(folder / "refs" / "main", commit)


def _img(colour: str) -> dict:
    return {"bytes": image(colour), "path": None}


def write_hf_cache(hub: Path) -> Path:
    """The lmms-lab copies of the benchmarks, as ``load_dataset`` leaves them in the hub cache."""
    from datasets import Image, List, Value

    s, i64 = Value("string"), Value("int64")
    vqa_answer = {"answer": s, "answer_confidence": s, "answer_id": i64}
    cols = {"question_id": [100 + i for i in range(len(VQAV2))], "question": [q for q, *_ in VQAV2],
            "answers": [[{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(r)]
                        for _, _, r, _, _ in VQAV2],
            "answer_type": [f["answer_type"] for *_, f, _ in VQAV2],
            "question_type": [f["question_type"] for *_, f, _ in VQAV2],
            "image": [_img(c) for *_, c in VQAV2]}
    feats = {"question_id": i64, "question": s, "answers": List(vqa_answer), "answer_type": s,
             "question_type": s, "image": Image()}
    test = {k: v[:2] for k, v in cols.items() if k in ("question_id", "question", "image")}
    _repo(hub, "lmms-lab/VQAv2", {"default": {"validation": (cols, feats), "testdev": (
        test, {k: feats[k] for k in test})}})
    ok = {**cols, "question_id": [str(q) for q in cols["question_id"]],
          "answers": [list(r) for _, _, r, _, _ in VQAV2]}
    _repo(hub, "lmms-lab/OK-VQA", {"default": {"val2014": (ok, {**feats, "question_id": s, "answers": List(s)})}})
    _repo(hub, "lmms-lab/textvqa", {"default": {"validation": (
        {"question_id": [34602 + i for i in range(len(TEXTVQA))], "question": [q for q, *_ in TEXTVQA],
         "answers": [r for _, _, r, _, _ in TEXTVQA], "ocr_tokens": [f["ocr"] for *_, f, _ in TEXTVQA],
         "image": [_img(c) for *_, c in TEXTVQA]},
        {"question_id": Value("int32"), "question": s, "answers": List(s), "ocr_tokens": List(s), "image": Image()})}})
    _repo(hub, "lmms-lab/VizWiz-VQA", {"default": {"val": (
        {"question_id": [f"VizWiz_val_{i:08d}" for i in range(len(VIZWIZ))], "question": [q for q, *_ in VIZWIZ],
         "answers": [r for _, _, r, _, _ in VIZWIZ], "category": [f["answer_type"] for *_, f, _ in VIZWIZ],
         "image": [_img(c) for *_, c in VIZWIZ]},
        {"question_id": s, "question": s, "answers": List(s), "category": s, "image": Image()})}})
    _repo(hub, "lmms-lab/GQA", {
        "testdev_balanced_instructions": {"testdev": (
            {"id": [f"20{i:06d}" for i in range(len(GQA))], "imageId": [f"n{i}" for i in range(len(GQA))],
             "question": [q for q, *_ in GQA], "answer": [r[0] for _, _, r, _, _ in GQA],
             "isBalanced": [True] * len(GQA)},
            {"id": s, "imageId": s, "question": s, "answer": s, "isBalanced": Value("bool")})},
        "testdev_balanced_images": {"testdev": (
            {"id": [f"n{i}" for i in reversed(range(len(GQA)))], "image": [_img(c) for *_, c in reversed(GQA)]},
            {"id": s, "image": Image()})}})
    doc = {"questionId": [str(49150 + i) for i in range(len(DOCVQA))], "question": [q for q, *_ in DOCVQA],
           "answers": [r for _, _, r, _, _ in DOCVQA], "image": [_img(c) for *_, c in DOCVQA]}
    info = {"questionId": [str(65718 + i) for i in range(len(INFOVQA))], "question": [q for q, *_ in INFOVQA],
            "answers": [r for _, _, r, _, _ in INFOVQA], "image": [_img(c) for *_, c in INFOVQA]}
    dfeat = {"questionId": s, "question": s, "answers": List(s), "image": Image()}
    _repo(hub, "lmms-lab/DocVQA", {"DocVQA": {"validation": (doc, dfeat)},
                                   "InfographicVQA": {"validation": (info, dfeat)}})
    _repo(hub, "lmms-lab/ChartQA", {"default": {"test": (
        {"type": [f"{f['split']}_test" for *_, f, _ in CHARTQA], "question": [q for q, *_ in CHARTQA],
         "answer": [r[0] for _, _, r, _, _ in CHARTQA], "image": [_img(c) for *_, c in CHARTQA]},
        {"type": s, "question": s, "answer": s, "image": Image()})}})
    _repo(hub, "lmms-lab/NoCaps", {"default": {"validation": (
        {"image": [_img(c) for _, c, _, _ in CAPTION_IMAGES], "image_id": [i for i, *_ in CAPTION_IMAGES],
         "image_file_name": [f"{i:016x}.jpg" for i, *_ in CAPTION_IMAGES],
         "annotations_captions": [r for _, _, r, _ in CAPTION_IMAGES]},
        {"image": Image(), "image_id": Value("int32"), "image_file_name": s, "annotations_captions": List(s)})}})
    return hub
