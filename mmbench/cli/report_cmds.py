"""``mmbench leaderboard``, ``compare``, ``show`` and ``report``: the reporting commands (wired in by cli.main).

leaderboard: a definition applied to the store -> Markdown, LaTeX, CSV, JSON or a self-contained HTML page
(several ``--output`` files at once share one computation), plus PNG/PDF plots with ``--plots DIR``.
compare: the per-task table of NEW-minus-BASE differences with paired tests; with ``--fail-on-regression``
it exits 1 when a task is significantly worse (0 otherwise; bad input is an MMBenchError, exit 2). With
``--published BOARD:REFERENCE`` it takes one RUN and checks it against a leaderboard's published row
(report/published.py): exit 1 when a published value lies outside the run's interval.
report: one self-contained HTML page to look at a run item by item (report/run_report.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmbench.errors import MMBenchError

DEFAULT_STORE = Path("mmbench-runs") / "results.sqlite"
DEFAULT_TIME_BUDGET_S = 600.0  # e.g. FID on 2048-d features: ~16 s per recomputation here, 4 h for 1000


def _csv(text: str | None) -> list[str] | None:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    return items or None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _stats_options(p: argparse.ArgumentParser, resamples_default: int | None) -> None:
    p.add_argument("--resamples", type=_positive_int, default=resamples_default,
                   help="bootstrap resamples over items (default: 1000, or the leaderboard's setting)")
    p.add_argument("--seed", type=int, help="seed of the resampling (default: 0, or the leaderboard's setting)")
    p.add_argument("--alpha", type=_alpha, help="1 - confidence level and test level (default: 0.05)")
    p.add_argument("--time-budget", type=float, default=DEFAULT_TIME_BUDGET_S, metavar="SECONDS",
                   help="per result: a metric whose recomputation on every resample would take longer gets no "
                        f"interval (and says so) instead of running for hours (default: {DEFAULT_TIME_BUDGET_S:g})")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``show``, ``leaderboard``, ``compare`` and ``report`` subcommands to the main parser's subparsers."""
    s = sub.add_parser("show", help="a run's full results table: every metric, its variant, fingerprints, notes",
                       description="Print the full table of a run (what `mmbench run` summarises): every metric "
                                   "with a footnote saying what produced it, the data, model and task "
                                   "fingerprints, throughput and memory, and every note.")
    s.add_argument("run", metavar="RUN", help="a run folder, or a run id under --output-dir")
    s.add_argument("--output-dir", type=Path, default=Path("mmbench-runs"),
                   help="where run folders are (default: ./mmbench-runs)")
    s.set_defaults(func=cmd_show)
    p = sub.add_parser(
        "leaderboard", help="tables for papers and sites: scores with intervals, throughput, memory",
        description="Build a leaderboard from the results store: the latest result per (model, task), every "
                    "cell with a bootstrap interval. NAME is a definition (leaderboards/NAME.yaml or a .yaml "
                    "file); without it every task in the store becomes a column. Example: `mmbench "
                    "leaderboard mini --output leaderboards/mini.md --output leaderboards/mini.tex "
                    "--output leaderboards/mini.html`.")
    p.add_argument("name", nargs="?", metavar="NAME", help="leaderboard name or definition file")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store (default: {DEFAULT_STORE})")
    p.add_argument("--format", choices=["md", "latex", "csv", "json", "html"],
                   help="output format (default: from the --output suffix, else md)")
    p.add_argument("--output", type=Path, action="append", default=[],
                   help="file to write (repeatable; the format follows each suffix: .md .tex .csv .json .html)")
    p.add_argument("--plots", type=Path, metavar="DIR", help="also write the plots as PNG and PDF into DIR")
    p.add_argument("--model", help="only these models (comma-separated)")
    p.add_argument("--tag", action="append", default=[], help="only runs carrying this tag (repeatable)")
    p.add_argument("--run", action="append", default=[], help="only results of this run id (repeatable)")
    p.add_argument("--since", help="only results created at or after this time (ISO 8601, UTC)")
    p.add_argument("--until", help="only results created at or before this time (ISO 8601, UTC)")
    p.add_argument("--baseline", help="mark cells significantly better/worse than this model's row")
    p.add_argument("--leaderboard-dir", type=Path, action="append", default=[],
                   help="an extra folder of leaderboard definitions (repeatable)")
    p.add_argument("--reproduce", action="append", default=[], metavar="MODEL=REFERENCE",
                   help="check MODEL's cells against the published row REFERENCE of the definition (repeatable; "
                        "adds to the definition's `reproduce:` patterns)")
    _stats_options(p, None)
    p.set_defaults(func=cmd_leaderboard)
    _add_compare_parser(sub)
    _add_report_parser(sub)


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "compare", help="is NEW different from (worse than) BASE? paired tests per task; a CI regression gate",
        description="Compare two runs on the same items: per task and metric, NEW-BASE with its interval, "
                    "paired p-values and Holm's correction across all tests. BASE and NEW are run folders, "
                    "run ids (or unique prefixes) in the store, or model:NAME (that model's latest results). "
                    "Exit code: 0, or 1 with --fail-on-regression when a metric is significantly worse; 2 on "
                    "bad input (e.g. runs on different items). With --published LEADERBOARD:REFERENCE, compare "
                    "takes one RUN and checks each published value of that reference row against the run's "
                    "bootstrap interval: exit 1 when one lies outside. Example: `mmbench compare model:llava-v1.5-7b "
                    "--published llava-1.5:LLaVA-1.5-7B`.")
    c.add_argument("base", metavar="BASE", help="the baseline run (with --published: the run to check)")
    c.add_argument("new", metavar="NEW", nargs="?", help="the new run (not with --published)")
    c.add_argument("--published", metavar="LEADERBOARD:REFERENCE",
                   help="check the one run given against a published reference row of a leaderboard definition "
                        "(e.g. llava-1.5:LLaVA-1.5-7B); the bootstrap settings default to the definition's")
    c.add_argument("--leaderboard-dir", type=Path, action="append", default=[],
                   help="an extra folder of leaderboard definitions for --published (repeatable)")
    c.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store for run ids (default: "
                                                                     f"{DEFAULT_STORE})")
    c.add_argument("--fail-on-regression", action="store_true",
                   help="exit 1 when any tested metric is significantly worse (Holm-adjusted one-sided p < alpha)")
    c.add_argument("--max-drop", type=float, metavar="X",
                   help="a regression must also drop by more than X in the metric's units (0.01 = 1 point)")
    c.add_argument("--method", choices=["bootstrap", "permutation"],
                   help="paired bootstrap (default) or paired permutation test for the p-values")
    c.add_argument("--tasks", help="only these tasks (comma-separated)")
    c.add_argument("--metrics", help="only these metrics, as METRIC or TASK:METRIC (comma-separated; default: "
                                     "every metric with a value in both, per-type breakdowns excluded)")
    c.add_argument("--allow-missing", action="store_true",
                   help="compare what both runs have even when NEW lacks tasks or metrics BASE has (refused "
                        "by default: an unfinished NEW run must not pass the gate)")
    c.add_argument("--base-model", help="the model to take from BASE when it holds several")
    c.add_argument("--new-model", help="the model to take from NEW (with --published: from RUN) when it holds "
                                       "several")
    c.add_argument("--format", choices=["table", "md", "json"], default="table", help="output format")
    c.add_argument("--output", type=Path, help="write the output to this file instead of stdout")
    _stats_options(c, None)
    c.set_defaults(func=cmd_compare)


REPORT_TIME_BUDGET_S = 60.0  # per result; a page should not wait 10 minutes for one FID interval


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    from mmbench.report.run_report_items import COMPARE_RULE, DEFAULT_MAX_IMAGES

    r = sub.add_parser(
        "report", help="one self-contained HTML page to look at a run: scores with intervals, every item with its "
                       "image, prompt, output and score",
        description="Write one HTML file (no network access, everything inline) showing a run: per (model, task) "
                    "the headline metric and every other metric with a bootstrap interval, what produced each "
                    "number, and a browser over the items (image or audio, the exact prompt sent, the output, "
                    "the references, the score) with filters for wrong, failed and changed items and a text "
                    "search. RUN is a run folder, a run id under --output-dir, or a run id (prefix) or model:NAME "
                    f"in --store. With --compare OTHER: {COMPARE_RULE}. Example: `mmbench report "
                    "mmbench-runs/RUN_ID --compare mmbench-runs/BASE_ID --output report.html`.")
    r.add_argument("run", metavar="RUN", help="a run folder, or a run id under --output-dir or in --store")
    r.add_argument("--compare", metavar="OTHER", help="a second run (same forms as RUN) to compare item by item")
    r.add_argument("--output", type=Path, required=True, help="the HTML file to write")
    r.add_argument("--output-dir", type=Path, default=Path("mmbench-runs"),
                   help="where run folders are (default: ./mmbench-runs)")
    r.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store for run ids (default: "
                                                                     f"{DEFAULT_STORE})")
    r.add_argument("--data-dir", type=Path, help="where the tasks' data are, to show the items' images and audio "
                                                 "(default: the run's --data-dir)")
    r.add_argument("--max-images", type=_positive_int, default=DEFAULT_MAX_IMAGES, metavar="N",
                   help=f"embed at most N distinct images and audio clips (thumbnails); later items are shown "
                        f"without them, and the page says so (default: {DEFAULT_MAX_IMAGES})")
    r.add_argument("--resamples", type=_positive_int, default=1000,
                   help="bootstrap resamples over items (default: 1000)")
    r.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    r.add_argument("--alpha", type=_alpha, default=0.05, help="1 - confidence level of the intervals (default: 0.05)")
    r.add_argument("--time-budget", type=float, default=REPORT_TIME_BUDGET_S, metavar="SECONDS",
                   help="per result: a metric whose recomputation on every resample would take longer gets no "
                        f"interval, and the page says why (default: {REPORT_TIME_BUDGET_S:g})")
    r.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from mmbench.report.run_report import write_report

    if args.output.is_dir():
        raise MMBenchError(f"--output {args.output} is a folder; name the .html file to write")
    path = write_report(args.output, args.run, compare=args.compare, output_dir=args.output_dir, store=args.store,
                        data_dir=args.data_dir, max_images=args.max_images, resamples=args.resamples,
                        seed=args.seed, alpha=args.alpha, time_budget_s=args.time_budget)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _formats(args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    from mmbench.report.render import SUFFIXES

    if not args.output:
        return [(args.format or "md", None)]
    if args.format and len(args.output) > 1:
        raise MMBenchError("--format applies to one --output; with several, each file's suffix names its format")
    out = []
    for path in args.output:
        fmt = args.format or SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise MMBenchError(f"cannot tell the format of {path} from its suffix: use one of "
                               f"{', '.join(sorted(SUFFIXES))} or pass --format")
        out.append((fmt, path))
    return out


def _write(text: str, path: Path | None) -> None:
    if path is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def _reproduce(pairs: list[str]) -> dict[str, str]:
    """--reproduce MODEL=REFERENCE (repeatable) as {model: reference}."""
    out = {}
    for text in pairs:
        model, sep, reference = text.partition("=")
        if not sep or not model.strip() or not reference.strip():
            raise MMBenchError(f"--reproduce expects MODEL=REFERENCE (a row of the leaderboard = a published row "
                               f"of its definition), got {text!r}")
        out[model.strip()] = reference.strip()
    return out


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from mmbench.report.leaderboard import auto_definition, build_leaderboard, load_definition
    from mmbench.report.render import TEXT_RENDERERS
    from mmbench.report.select import open_store

    outputs = _formats(args)
    selection = {"models": _csv(args.model), "tags": args.tag or None, "since": args.since, "until": args.until,
                 "run_ids": args.run or None}
    store = open_store(args.store)
    try:
        definition = load_definition(args.name, args.leaderboard_dir) if args.name else \
            auto_definition(store, **selection)
        lb = build_leaderboard(definition, store, resamples=args.resamples, seed=args.seed, alpha=args.alpha,
                               baseline=args.baseline, time_budget_s=args.time_budget,
                               reproduce=_reproduce(args.reproduce), **selection)
    finally:
        store.close()
    for fmt, path in outputs:
        if fmt == "html":
            from mmbench.report.html import to_html

            text = to_html(lb)
        else:
            text = TEXT_RENDERERS[fmt](lb)
        _write(text, path)
    if args.plots:
        from mmbench.report.plots import save_plots

        for path in save_plots(lb, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _emit_comparison(comparison, args: argparse.Namespace) -> None:
    import json

    if args.format == "json":
        text = json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False, default=str)
    else:
        text = comparison.table("github" if args.format == "md" else "simple")
    _write(text, args.output)


def cmd_compare(args: argparse.Namespace) -> int:
    from mmbench.report.compare import compare_runs
    from mmbench.report.stats import DEFAULT_RESAMPLES

    if args.published is not None:
        return cmd_compare_published(args)
    if args.new is None:
        raise MMBenchError("compare needs two runs, BASE and NEW, or one RUN with --published LEADERBOARD:REFERENCE "
                           "(e.g. `mmbench compare RUN --published llava-1.5:LLaVA-1.5-7B`)")
    comparison = compare_runs(args.base, args.new, store=args.store, tasks=_csv(args.tasks),
                              metrics=_csv(args.metrics), alpha=args.alpha if args.alpha is not None else 0.05,
                              resamples=args.resamples or DEFAULT_RESAMPLES, seed=args.seed or 0,
                              method=args.method or "bootstrap", max_drop=args.max_drop,
                              base_model=args.base_model, new_model=args.new_model, time_budget_s=args.time_budget,
                              allow_missing=args.allow_missing)
    _emit_comparison(comparison, args)
    return 1 if args.fail_on_regression and not comparison.passed else 0


def _split_published(text: str) -> tuple[str, str]:
    """LEADERBOARD:REFERENCE (the leaderboard may be a .yaml path); one-line error when malformed."""
    for suffix in (".yaml:", ".yml:"):
        if suffix in text:
            board, _, reference = text.partition(suffix)
            return board + suffix[:-1], reference
    board, sep, reference = text.partition(":")
    if not sep or not board or not reference:
        raise MMBenchError(f"--published expects LEADERBOARD:REFERENCE (a leaderboard name or .yaml file, then one "
                           f"of its published rows), e.g. llava-1.5:LLaVA-1.5-7B; got {text!r}")
    return board, reference


def cmd_compare_published(args: argparse.Namespace) -> int:
    """``compare RUN --published BOARD:REFERENCE``: exit 0 when every published value the run has a score
    for lies inside its interval, 1 when one lies outside (the RESULT line names them)."""
    from mmbench.report.leaderboard import load_definition
    from mmbench.report.published import compare_published, find_reference
    from mmbench.report.select import run_records

    wrong = [name for name, given in (("a second run (NEW)", args.new is not None),
                                      ("--base-model", args.base_model), ("--max-drop", args.max_drop is not None),
                                      ("--method", args.method), ("--tasks", args.tasks), ("--metrics", args.metrics),
                                      ("--allow-missing", args.allow_missing)) if given]
    if wrong:
        raise MMBenchError(f"--published compares one RUN with a leaderboard's published row: drop "
                           f"{', '.join(wrong)} (usage: mmbench compare RUN --published LEADERBOARD:REFERENCE "
                           f"[--new-model MODEL])")
    board, reference = _split_published(args.published)
    definition = load_definition(board, args.leaderboard_dir)
    find_reference(definition, reference)  # a wrong name fails before any run is read
    comparison = compare_published(run_records(args.base, args.store), definition, reference,
                                   model=args.new_model, resamples=args.resamples, seed=args.seed,
                                   alpha=args.alpha, time_budget_s=args.time_budget, run_label=str(args.base))
    _emit_comparison(comparison, args)
    return 0 if comparison.passed else 1


def cmd_show(args: argparse.Namespace) -> int:
    from mmbench.report.console import results_table
    from mmbench.results import RunResult

    folder = Path(args.run).expanduser()
    if not (folder / "results.json").is_file():
        folder = args.output_dir / args.run
    if not (folder / "results.json").is_file():
        raise MMBenchError(f"run {args.run!r}: no results.json in {args.run} or {folder}; pass a run folder (printed "
                           f"at the end of `mmbench run`) or a run id with --output-dir")
    print(results_table(RunResult.read(folder), str(folder)))
    return 0
