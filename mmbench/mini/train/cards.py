"""Model cards: each model folder gets README.md (for people) and card.json (the same facts, for tests and tools),
and the models folder gets MODELS.md, the index."""

from __future__ import annotations

import json
from pathlib import Path

from mmbench.mini import shapes
from mmbench.mini.train import common

CARD_FILE = "card.json"
# The scores MODELS.md shows (the bars of the issue, and the LM's perplexity).
HEADLINE = ("zeroshot_top1", "t2i_recall@5", "i2t_recall@5", "vqa_accuracy", "cider", "pope_f1", "mc_accuracy",
            "val_perplexity", "exact_match", "exact_match_1frame", "temporal_verdict",
            "mini-generation (guidance 2.0)")


def write_card(folder: Path, card: dict) -> None:
    """Write ``card`` (plain data) as card.json and render it as README.md."""
    common.write_json(folder / CARD_FILE, card)
    (folder / "README.md").write_text(render(card))


def read_card(folder: Path) -> dict:
    return json.loads((folder / CARD_FILE).read_text())


def _table(rows: dict) -> list[str]:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows.items()]
    return lines


def render(card: dict) -> str:
    """The human-readable card."""
    lines = [f"# {card['name']}", "", card["summary"], "", "## Architecture", ""]
    lines += _table({"class": f"`{card['class']}`", "processor": f"`{card['processor']}`",
                     **{k: v for k, v in card["architecture"].items()}})
    p = card["parameters"]
    lines += ["", "## Parameters", "", f"- total: {p['total']:,}", f"- trainable in this model's training: "
              f"{p['trainable']:,}"]
    lines += [f"- {k}: {v:,}" for k, v in p.items() if k not in ("total", "trainable")]
    lines += ["", "## Training", ""]
    t = card["training"]
    lines += _table({"data": t["data"], "initialisation": t["init"], "frozen": t["frozen"],
                     "steps x batch": f"{t['steps']} x {t['batch_size']}", "peak learning rate": t["peak_lr"],
                     "seed": t["seed"], "wall-clock seconds": round(t["seconds"], 1),
                     "CPU seconds / 2 threads": round(t["cpu_seconds"] / 2, 1),
                     "loss (10 slices)": ", ".join(str(x) for x in t["losses"])})
    lines += ["", "## Scores (fixed test splits, shipped float16 weights loaded as float32)", ""]
    lines += _table({k: v for k, v in card["scores"].items() if not isinstance(v, (dict, list))})
    for k, v in card["scores"].items():
        if isinstance(v, dict):
            lines += ["", f"{k}: " + ", ".join(f"{a}={b}" for a, b in v.items())]
    if card.get("bridge_probe"):
        probe = card["bridge_probe"]
        lines += ["", "## What the bridge passes on", "", probe["description"] + ":", ""]
        lines += _table({k: ", ".join(f"{a} {b}" for a, b in v.items()) for k, v in probe.items()
                         if isinstance(v, dict)})
    if card.get("examples"):
        lines += ["", "Example outputs:", ""]
        lines += [f"- `{json.dumps(e)}`" for e in card["examples"]]
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in card["notes"]]
    lines += ["", "## Usage", "", "```python", *card["usage"], "```", "",
              f"Data: mini-shapes v{shapes.VERSION}; test splits generated with seed {shapes.DEFAULT_SEED}. "
              "Retrain: `python -m mmbench.mini.train`.", ""]
    return "\n".join(lines)


def write_index(path: Path, cards: list[dict], total_seconds: float | None, total_cpu: float | None) -> None:
    """MODELS.md at ``path``: one row per model with its headline scores and size."""
    lines = ["# The mini model zoo", "",
             "Tiny reference models trained by mmbench on mini-shapes (`mmbench/mini/shapes.py`), shipped so that",
             "the built-in suite runs offline. Each folder loads with `from_pretrained(folder)` and has a card",
             "(README.md, card.json). Retrain all: `python -m mmbench.mini.train` (or `mmbench mini train`).", "",
             "| model | class | parameters | trainable | size (bytes) | scores |", "|---|---|---|---|---|---|"]
    for c in cards:
        scores = ", ".join(f"{k}={c['scores'][k]}" for k in HEADLINE if k in c["scores"])
        lines.append(f"| [{c['name']}]({c['name']}/README.md) | `{c['class']}` | {c['parameters']['total']:,} | "
                     f"{c['parameters']['trainable']:,} | {c['bytes']:,} | {scores} |")
    if total_seconds is not None:
        n_zoo = sum(c["name"] != "mini-diffusion" for c in cards)
        lines += ["", f"Last full retraining: {total_seconds / 60:.1f} min wall-clock "
                      f"({total_cpu / 2 / 60:.1f} min of CPU time per thread, 2 threads), including data generation "
                      f"and evaluation, for the {n_zoo} models of `mmbench mini train`; mini-diffusion has its own "
                      "command (`python -m mmbench.mini.train.diffusion --out FOLDER`, about 8 min)."]
    else:  # a partial retraining (--only): each model's own training time, from its card
        timed = [f"{c['name']} {c['training']['seconds'] / 60:.1f} min" for c in cards
                 if isinstance(c.get("training"), dict) and "seconds" in c["training"]]
        lines += ["", "Training time per model (wall-clock on 2 CPU threads, from the cards; evaluation not "
                      "included): " + ", ".join(timed) + ". mini-diffusion has its own command "
                      "(`python -m mmbench.mini.train.diffusion --out FOLDER`)."]
    path.write_text("\n".join(lines) + "\n")
