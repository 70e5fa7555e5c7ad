"""``mmbench score fid``: FID and KID of images (or features) made elsewhere, printed as JSON.

    mmbench score fid --real DIR --fake DIR [--features NAME]
    mmbench score fid --real-features R.npy --fake-features F.npy
    mmbench score fid --real DIR --ladder [--features NAME]

The output names the feature extractor and its preprocessing next to the numbers. ``--ladder`` checks an
extractor instead of scoring a generator: the folder's images are the reference and are compared with
copies of themselves at increasing corruption levels (noise, blur, colour shift); FID must rise along each.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.cli.score import emit, load_npy, nonnegative_int, positive_int
from mmbench.data.sources import IMAGE_EXTENSIONS
from mmbench.errors import ItemError, MMBenchError


def add_fid(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fid", help="FID and KID between two image folders or two feature files")
    p.add_argument("--real", type=Path, help="folder of reference images (searched recursively)")
    p.add_argument("--fake", type=Path, help="folder of generated images (searched recursively)")
    p.add_argument("--real-features", type=Path, help=".npy [n_real, d] (instead of --real)")
    p.add_argument("--fake-features", type=Path, help=".npy [n_fake, d] (instead of --fake)")
    p.add_argument("--features", default="mini-clip",
                   help="extractor for image folders: inception[:PATH] (pytorch-fid's weights file), clip:MODEL "
                        "or an image-text embedder name (default: mini-clip)")
    p.add_argument("--features-name", default="unspecified",
                   help="with feature files: the extractor that made them, written into the variant")
    p.add_argument("--fid-method", choices=("eigh", "sqrtm"), default="eigh")
    p.add_argument("--kid-subsets", type=positive_int, default=100)
    p.add_argument("--kid-subset-size", type=positive_int, default=None,
                   help="default: min(1000, n_real, n_fake); larger than either set is an error")
    p.add_argument("--kid-seed", type=nonnegative_int, default=2020)
    p.add_argument("--precision-recall", action="store_true", help="also k-NN precision and recall")
    p.add_argument("--pr-k", type=positive_int, default=3)
    p.add_argument("--ladder", action="store_true",
                   help="corruption ladder: --real against corrupted copies of itself; FID must rise with noise, "
                        "blur and colour shift")
    p.add_argument("--device", default=None, help="device for the extractor (default: cuda if available)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per extractor call")
    p.set_defaults(func=score_fid)


def image_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise MMBenchError(f"{what} folder {folder} not found")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if len(files) < 2:
        raise MMBenchError(f"{what} folder {folder} has {len(files)} image(s); FID needs at least 2 "
                           f"({', '.join(IMAGE_EXTENSIONS)})")
    return files


def load_images(files: list[Path], what: str) -> tuple[list[Any], list[str]]:
    """The decodable images and the files that are not."""
    from mmbench.data.images import load_image

    images, bad = [], []
    for f in files:
        try:
            images.append(load_image(f))
        except ItemError:
            bad.append(str(f))
    if len(images) < 2:
        raise MMBenchError(f"only {len(images)} of the {len(files)} {what} images could be decoded; FID needs 2")
    return images, bad


def score_fid(args: argparse.Namespace) -> int:
    from mmbench.metrics import image_generation as ig

    if args.ladder:
        return _ladder(args)
    extra: dict[str, Any] = {}
    if args.real_features is not None or args.fake_features is not None:
        if args.real_features is None or args.fake_features is None or args.real or args.fake:
            raise MMBenchError("pass both --real-features and --fake-features (and no --real/--fake folders)")
        real, fake = load_npy(args.real_features, "real features"), load_npy(args.fake_features, "fake features")
        variant = args.features_name
        extra["features"] = {"name": args.features_name, "source": "precomputed feature files"}
    else:
        if args.real is None or args.fake is None:
            raise MMBenchError("pass --real DIR and --fake DIR (image folders), or --real-features/--fake-features")
        from mmbench.adapters.extractors import load_extractor

        real_imgs, real_bad = load_images(image_files(args.real, "real"), "real")
        fake_imgs, fake_bad = load_images(image_files(args.fake, "fake"), "fake")
        extractor = load_extractor(args.features, device=args.device, batch_size=args.batch_size)
        try:
            real, fake = extractor.features(real_imgs), extractor.features(fake_imgs)
            info = extractor.describe()
        finally:
            extractor.close()
        variant = extractor.variant
        extra["features"] = {k: info[k] for k in ("name", "variant", "dim", "preprocessing", "weights") if k in info}
        extra["unreadable"] = {"real": real_bad, "fake": fake_bad}
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or fake.ndim != 2:
        raise MMBenchError(f"feature arrays must be [n, d]; got real {list(real.shape)}, fake {list(fake.shape)}")
    n_real, n_fake = int(real.shape[0]), int(fake.shape[0])
    size = args.kid_subset_size if args.kid_subset_size is not None else min(1000, n_real, n_fake)
    fid = ig.fid_from_features(real, fake, method=args.fid_method, features=variant)
    kid = ig.kid_from_features(real, fake, num_subsets=args.kid_subsets, subset_size=size, seed=args.kid_seed,
                               features=variant)
    metrics = [fid, kid]
    if args.precision_recall:
        metrics += list(ig.precision_recall(real, fake, k=args.pr_k, features=variant).values())
    warnings = [str(fid.extra["warning"])] if "warning" in fid.extra else []
    return emit(metrics, {"n_real": n_real, "n_fake": n_fake, "kid_std": kid.extra["std"], **extra,
                          "warnings": warnings})


def _ladder(args: argparse.Namespace) -> int:
    from mmbench.adapters.extractors import load_extractor
    from mmbench.features import CORRUPTIONS, corruption_ladder

    if args.real is None or args.fake is not None or args.real_features is not None:
        raise MMBenchError("--ladder takes --real DIR only (its images are compared with corrupted copies)")
    images, bad = load_images(image_files(args.real, "real"), "real")
    extractor = load_extractor(args.features, device=args.device, batch_size=args.batch_size)
    try:
        rows = corruption_ladder(extractor.features(images), images, extractor)
    finally:
        extractor.close()
    import json
    import sys

    kinds = list(dict.fromkeys(r["corruption"] for r in rows))
    out = {"features": extractor.variant, "n_images": len(images), "unreadable": bad,
           "corruptions": {k: CORRUPTIONS[k][2] for k in kinds},
           "monotonic": {k: next(r["monotonic"] for r in rows if r["corruption"] == k) for k in kinds},
           "ladder": rows}
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0
