"""Time COCO caption scoring: mmbench's CaptionScorer against pycocoevalcap called directly.

The direct way is what COCOEvalCap does for every evaluation: PTB-tokenise, then Bleu(4), a new Meteor()
(a Java start-up that loads a 62 MB paraphrase table), Rouge() and Cider(). CaptionScorer starts METEOR once
and reuses it, so from the second evaluation on it saves the start-up. The captions are synthetic (seeded):
one scene per image, 5 references and 1 prediction drawn around it from a vocabulary of a few hundred words.

    python benchmarks/bench_caption_scoring.py [--n 5000] [--evaluations 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time

from mmbench.metrics.captions import CaptionScorer

_ADJECTIVES = ("red blue green yellow white black brown small large young old tall wooden metal busy empty "
               "crowded sunny snowy wet dry bright dark colorful tiny huge shiny dirty clean striped").split()
_SUBJECTS = ("man woman boy girl child dog cat horse cow sheep bird elephant giraffe zebra bear person "
             "skier surfer skateboarder player chef baby couple group train bus truck car bicycle motorcycle "
             "airplane boat kite pizza sandwich cake plate bowl laptop phone clock vase").split()
_VERBS = ("sitting on|standing on|standing next to|walking along|walking across|riding|holding|eating|"
          "looking at|playing with|lying on|parked on|parked near|flying over|jumping over|crossing|"
          "running through|waiting at|leaning against|hanging from|resting on|carrying|pulling|watching|"
          "driving down|sleeping on|grazing in|swimming in|climbing|throwing").split("|")
_PLACES = ("street road beach field park table bench bed couch sidewalk grass snow water river lake ocean "
           "kitchen counter desk shelf fence wall window building tower bridge track runway station market "
           "garden forest mountain hill desert yard room floor ground stage court airport harbor dock "
           "playground zoo farm barn tent").split()
_TAILS = ("", "", " in the rain", " at night", " during the day", " near a tree", " with a friend",
          " in front of a building", " under a blue sky", " next to a car", ".", " !")


def _phrase(rng: random.Random, noun: str) -> str:
    adjective = rng.choice(_ADJECTIVES) + " " if rng.random() < 0.5 else ""
    return f"{rng.choice(('a', 'the', 'a', 'one'))} {adjective}{noun}"


def synthetic_captions(n: int, seed: int) -> tuple[dict[int, str], dict[int, list[str]]]:
    """``n`` images, each with 5 references and 1 prediction around one scene (seeded)."""
    rng = random.Random(seed)

    def caption(scene: tuple[str, str, str]) -> str:
        subject, verb, place = (x if rng.random() < 0.75 else rng.choice(pool)
                                for x, pool in zip(scene, (_SUBJECTS, _VERBS, _PLACES)))
        text = f"{_phrase(rng, subject)} {verb} {_phrase(rng, place)}{rng.choice(_TAILS)}"
        return text[0].upper() + text[1:] if rng.random() < 0.5 else text

    refs, preds = {}, {}
    for image_id in range(n):
        scene = (rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_PLACES))
        refs[image_id] = [caption(scene) for _ in range(5)]
        preds[image_id] = caption(scene)
    return preds, refs


def score_directly(preds: dict, refs: dict) -> dict[str, float]:
    """One evaluation the usual pycocoevalcap way (new scorers, a new METEOR process)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in refs[i]] for i in refs})
    res = tokenizer.tokenize({i: [{"caption": preds[i]}] for i in refs})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"Bleu_{k + 1}": float(v) for k, v in enumerate(bleu)}
    meteor = Meteor()
    out["METEOR"] = float(meteor.compute_score(gts, res)[0])
    del meteor  # its __del__ ends the Java process, as when COCOEvalCap goes out of scope
    out["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr-D"] = float(Cider().compute_score(gts, res)[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="images (captions) per evaluation")
    parser.add_argument("--evaluations", type=int, default=3, help="evaluations of the same captions per way")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    preds, refs = synthetic_captions(args.n, args.seed)
    vocabulary = {w for caps in refs.values() for c in caps for w in c.lower().split()}
    print(f"{args.n} images x 5 references, vocabulary {len(vocabulary)} words, {args.evaluations} evaluations")

    ours, theirs, ours_scores, their_scores = [], [], [], []
    with CaptionScorer() as scorer:
        for _ in range(args.evaluations):
            start = time.perf_counter()
            result = scorer.score(preds, refs)
            ours.append(time.perf_counter() - start)
            ours_scores.append({v.name: v.value for v in result.values if v.value is not None})
    for _ in range(args.evaluations):
        start = time.perf_counter()
        their_scores.append(score_directly(preds, refs))
        theirs.append(time.perf_counter() - start)

    print(f"\n{'evaluation':>12} {'CaptionScorer s':>16} {'pycocoevalcap s':>16} {'ratio':>7}")
    for k, (a, b) in enumerate(zip(ours, theirs), 1):
        print(f"{k:>12} {a:>16.2f} {b:>16.2f} {b / a:>7.2f}")
    print(f"{'total':>12} {sum(ours):>16.2f} {sum(theirs):>16.2f} {sum(theirs) / sum(ours):>7.2f}")

    diffs = [abs(o[name] - t[name]) for o, t in zip(ours_scores, their_scores) for name in t]
    equal = max(diffs) <= 1e-9
    print(f"\nscores equal (|diff| <= 1e-9): {'yes' if equal else 'NO'} (max |diff| = {max(diffs):.3g})")
    print("  " + "  ".join(f"{name}={value:.4f}" for name, value in their_scores[0].items()))
    if not equal:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
