"""Entry point: parses the command line and maps user errors to one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import faulthandler
import sys
from pathlib import Path

from mmbench import __version__
from mmbench.errors import MMBenchError
from mmbench.logs import DEFAULT_VERBOSITY, VERBOSITIES

DEFAULT_SUITE = "mini"


class Parser(argparse.ArgumentParser):
    """argparse with errors on one line (the rule for every bad input): the message, the command it is
    about and where its usage is, instead of the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an integer nor 'auto'")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_int(text: str) -> int:
    from mmbench.cli.score import positive_int as check

    return check(text)


def nonnegative_int(text: str) -> int:
    from mmbench.cli.score import nonnegative_int as check

    return check(text)


def _limit(text: str) -> int | float:
    """--limit: a count (>= 1) or a fraction of each task's items (0 < x < 1, rounded up, as lm-eval does)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a count nor a fraction") from None
    if 0 < value < 1:
        return value
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a count >= 1 or a fraction between 0 and 1, got {text}")
    return int(value)


# lm-evaluation-harness spellings: its underscores are accepted for every option (--model_args, --batch_size,
# --include_path, --gen_kwargs, ...); these differ by more than the spelling
LM_EVAL_RENAMES = {"--output_path": "--output-dir"}
LM_EVAL_NO_OPS = {"--log_samples": "the samples are always written (samples_<task>.jsonl in the run folder)"}
LM_EVAL_REFUSED = {"--num_fewshot": "mmbench evaluates zero-shot with each benchmark's own prompt; few-shot "
                                    "examples are not supported"}


def lm_eval_spellings(argv: list[str]) -> list[str]:
    """argv with lm-eval's option spellings turned into mmbench's (a no-op flag dropped with a note on stderr;
    a flag mmbench cannot honour refused in one line)."""
    out = []
    for token in argv:
        name, eq, value = token.partition("=")
        if not name.startswith("--") or "_" not in name:
            out.append(token)
            continue
        if name in LM_EVAL_REFUSED:
            raise MMBenchError(f"{name}: {LM_EVAL_REFUSED[name]}")
        if name in LM_EVAL_NO_OPS:
            print(f"mmbench: note: {name} is not needed: {LM_EVAL_NO_OPS[name]}", file=sys.stderr)
            continue
        name = LM_EVAL_RENAMES.get(name, name.replace("_", "-"))
        out.append(name + eq + value)
    return out


def _csv(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate models on tasks (no arguments: the built-in mini suite)",
                       description="Evaluate every model on every task that fits its capabilities and print "
                                   "the results table. With no --model/--tasks/--suite, runs the built-in "
                                   f"'{DEFAULT_SUITE}' suite.")
    p.add_argument("--model", help="model name(s), comma-separated, or a local model folder")
    p.add_argument("--tasks", help="task name(s) or task YAML file(s), comma-separated")
    p.add_argument("--suite", help="a named suite of models and tasks (see `mmbench list suites`)")
    p.add_argument("--model-args", default="", help="k=v,k2=v2 options for the model(s): pretrained, revision, "
                                                     "device, dtype (fp32/fp16/bf16), batch_size, alias (the "
                                                     "name results are filed under), ...")
    p.add_argument("--batch-size", type=_batch_size, help="items per batch, or 'auto': start large and halve on "
                                                           "out-of-memory (default: the task's or model's default)")
    p.add_argument("--limit", type=_limit, help="evaluate only the first N items of each task, or a fraction of "
                                       "them (0.1: the first 10%%, rounded up); not comparable to full-set scores")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--data-dir", type=Path, help="folder holding local copies of the tasks' data")
    p.add_argument("--output-dir", type=Path, default=Path("mmbench-runs"),
                   help="where run folders and the per-item cache go (default: ./mmbench-runs)")
    p.add_argument("--store", type=Path, help="results store (SQLite; default: <output-dir>/results.sqlite)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--include-path", type=Path, action="append", default=[],
                   help="an extra folder of task YAML files (repeatable)")
    p.add_argument("--tag", action="append", default=[], help="a tag stored with the run (repeatable)")
    p.add_argument("--gen-kwargs", default="", help="decoding settings for generative tasks, overriding the task "
                                                    "files: max_new_tokens=16,do_sample=true,temperature=0.7,...")
    p.add_argument("--system-prompt", help="system prompt for generative tasks (overrides the task files)")
    p.add_argument("--prompt", help="user prompt template for generative tasks, e.g. '{question} Answer briefly.'")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the per-item cache")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first (model, task) that fails (default: "
                                                            "record it with its reason, go on, exit 1 at the end)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbosity", choices=VERBOSITIES, default=DEFAULT_VERBOSITY,
                   help="quiet (default): the progress bar, warnings and the summary; info: also a line per model "
                        "loaded and per (model, task) done; debug: also mmbench's details and everything third-party "
                        "libraries print (transformers, Java tokenizers), which otherwise go to the run's run.log")
    p.add_argument("--threads", type=positive_int, help="torch's CPU threads while a model runs (default: the usable "
                                               "cores the preparation threads leave on a CPU run)")
    p.add_argument("--num-workers", type=positive_int, help="threads decoding and preprocessing batches ahead of the "
                                                   "model (default: a quarter of the usable cores on a CPU run, all "
                                                   "but one with a GPU)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from mmbench.report.console import summary_table
    from mmbench.runner import Runner
    from mmbench.specs import ModelSpec, RunOptions, RunSpec, parse_kv_args
    from mmbench.tasks.catalog import TaskCatalog

    catalog = TaskCatalog(args.include_path)
    model_names, task_names = _csv(args.model), _csv(args.tasks)
    suite_name = args.suite or (None if (model_names or task_names) else DEFAULT_SUITE)
    if suite_name:
        suite = catalog.suite(suite_name)
        model_names = model_names or list(suite.models)
        task_names = task_names or list(suite.tasks)
    elif not model_names or not task_names:
        missing = "--tasks" if model_names else "--model"
        raise MMBenchError(f"{missing} is missing: give both --model and --tasks, or --suite NAME "
                           f"(no arguments at all runs the built-in '{DEFAULT_SUITE}' suite)")
    if args.limit is not None and args.limit <= 0:
        raise MMBenchError(f"--limit must be a count >= 1 or a fraction between 0 and 1, got {args.limit}")
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise MMBenchError(f"--data-dir {args.data_dir} is not a folder")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        raise MMBenchError(f"--output-dir {args.output_dir} is a file; pass a folder (it is created if missing)")
    if args.store is not None and args.store.is_dir():
        raise MMBenchError(f"--store {args.store} is a folder; pass the SQLite file to use (created if missing)")
    if args.device is not None:
        from mmbench.adapters.base import check_device

        check_device(args.device, "--device")
    model_args = parse_kv_args(args.model_args)
    alias = model_args.pop("alias", None)  # --model-args alias=NAME files the results under NAME
    if alias and len(model_names) > 1:
        raise MMBenchError("model arg alias= names one model; run the models separately to alias each")
    overrides = run_overrides(args)
    spec = RunSpec(
        models=tuple(ModelSpec(n, model_args, alias) for n in model_names),
        tasks=tuple(catalog.task_spec(t).with_overrides(overrides, "--gen-kwargs") for t in task_names),
        options=RunOptions(batch_size=args.batch_size, limit=args.limit, device=args.device,
                           data_dir=args.data_dir, output_dir=args.output_dir, store=args.store,
                           cache=not args.no_cache, seed=args.seed, tags=tuple(args.tag),
                           show_progress=not args.no_progress and sys.stderr.isatty(), fail_fast=args.fail_fast,
                           num_workers=args.num_workers, threads=args.threads),
        suite=suite_name)
    from mmbench.logs import RunLog

    with RunLog(args.verbosity) as run_log:
        runner = Runner(spec.options, command=["mmbench", *getattr(args, "argv", sys.argv[1:])], run_log=run_log)
        run, run_dir = runner.run(spec, strict=suite_name is None)
    if run is not None:  # under torchrun only rank 0 holds the results
        print(summary_table(run, str(run_dir)))
        if run.failures:  # the run went on past them; the exit code says it was not all good
            pairs = "; ".join(f"{f['model']} / {f['task']}: {f['error'][:160]}" for f in run.failures)
            print(f"mmbench: {len(run.failures)} (model, task) pair(s) failed (results of the others are kept in "
                  f"{run_dir}): {pairs}", file=sys.stderr)
            return 1
    return 0


def run_overrides(args: argparse.Namespace) -> dict:
    """Per-run settings for generative tasks (--gen-kwargs, --system-prompt, --prompt) as task-file keys with
    YAML-typed values, checked here (bad ones fail before anything loads); cmd_run applies them to every task
    with TaskSpec.with_overrides (probes: to the wrapped task; kinds without decoding settings: untouched)."""
    import yaml

    from mmbench.capabilities import DecodingSettings
    from mmbench.specs import parse_kv_args

    overrides = {}
    for key, text in parse_kv_args(args.gen_kwargs, "--gen-kwargs").items():
        try:
            overrides[key] = yaml.safe_load(text) if isinstance(text, str) else text
        except yaml.YAMLError as exc:
            raise MMBenchError(f"--gen-kwargs {key}={text!r}: not a value ({str(exc).splitlines()[0]})") from None
    DecodingSettings.parse(overrides, "--gen-kwargs")  # unknown names (accepted ones listed), types, ranges
    if "stop" in overrides and isinstance(overrides["stop"], str):
        overrides["stop"] = [overrides["stop"]]
    if args.system_prompt is not None:
        overrides["system"] = args.system_prompt
    if args.prompt is not None:
        overrides["prompt"] = args.prompt
    return overrides


def add_list_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered models, tasks, suites, task kinds, metrics, data formats")
    p.add_argument("what", choices=["models", "tasks", "suites", "kinds", "metrics", "data-formats"])
    p.add_argument("--include-path", type=Path, action="append", default=[])
    p.set_defaults(func=cmd_list)


LIST_WIDTH = 100


def _brief(text: str, limit: int = 90) -> str:
    """A description's first clause (`mmbench list`): up to the first '; ' or ': ', at most ``limit`` chars."""
    text = " ".join(str(text or "").split())
    for stop in ("; ", ": "):
        if stop in text:
            text = text.split(stop)[0]
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def fitted_table(rows: list[list], headers: list[str], width: int = LIST_WIDTH) -> str:
    """A GitHub-style table no wider than ``width`` columns: the widest columns are wrapped until it fits."""
    from tabulate import tabulate

    rows = [[str(c) for c in r] for r in rows]
    natural = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    widths = list(natural)
    # the last column (a description) gives way first, down to 40 columns; then the widest of the others
    while sum(widths) + 3 * len(widths) + 1 > width and widths[-1] > 40:
        widths[-1] -= 1
    floor = [max(len(h), min(n, 24)) for h, n in zip(headers, natural)]  # names and headers are not wrapped
    while sum(widths) + 3 * len(widths) + 1 > width:
        shrinkable = [i for i in range(len(widths) - 1) if widths[i] > floor[i]]
        if not shrinkable:
            break
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
    while sum(widths) + 3 * len(widths) + 1 > width and widths[-1] > 16:  # the description, as a last resort
        widths[-1] -= 1
    return tabulate(rows, headers=headers, tablefmt="github",
                    maxcolwidths=[w if w < n else None for w, n in zip(widths, natural)])


def cmd_list(args: argparse.Namespace) -> int:
    from mmbench.registry import DATA_FORMATS, METRICS, MODELS, TASK_KINDS

    if args.what == "models":
        from mmbench.adapters import capabilities_of, summary
        from mmbench.specs import ModelSpec

        rows = []
        for name in MODELS.names():
            try:
                caps = ", ".join(sorted(c.value for c in capabilities_of(ModelSpec(name))))
                description, family = summary(name)
            except MMBenchError as exc:  # e.g. an extra that is not installed
                caps, description, family = f"(unavailable: {exc})", "", ""
            rows.append([name, family or "-", caps, description])
        print(fitted_table(rows, ["model", "family", "capabilities", "description"]))
    elif args.what in ("tasks", "suites"):
        from mmbench.tasks.catalog import TaskCatalog

        catalog = TaskCatalog(args.include_path)
        if args.what == "tasks":
            rows = [[d["task"], d["kind"], ", ".join(d["aliases"]), _brief(d["description"])]
                    for d in map(catalog.describe, catalog.task_names())]
            print(fitted_table(rows, ["task", "kind", "aliases", "description"]))
            print("\nEvery task also runs as probe:<task> (e.g. probe:mini-vqa): the modality-collapse probe, the "
                  "task\nunder input ablations (image blank, noise, shuffled or removed; text shuffled).")
        else:
            rows = [[s.name, ", ".join(s.models), ", ".join(s.tasks)] for s in map(catalog.suite, catalog.suite_names())]
            print(fitted_table(rows, ["suite", "models", "tasks"]))
    elif args.what == "metrics":
        import dataclasses

        from mmbench.metrics.api import metric_class

        rows = []
        for name in METRICS.names():
            cls = metric_class(name)
            options = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Options))
            rows.append([name, ", ".join(cls.value_names()),
                         f"{cls.description}. Scores {cls.inputs}; options: {options or 'none'}"])
        print(fitted_table(rows, ["metric", "values", "description"]))
        import textwrap

        print("\n" + textwrap.fill(
            "A task file's `metrics:` names the first column; the results and `mmbench compare --metrics` name the "
            "values (second column: {k} is a number from the options, e.g. t2i_R@5; a breakdown adds "
            "[field=label], e.g. vqa_accuracy[question_type=what color]).", 100))
    else:
        registry = {"kinds": TASK_KINDS, "data-formats": DATA_FORMATS}[args.what]
        print("\n".join(registry.names()))
    return 0


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve an image+prompt->text model behind an OpenAI-compatible API")
    p.add_argument("--model", required=True)
    p.add_argument("--model-args", default="")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=int, default=16, help="requests batched into one model call")
    p.add_argument("--fail-rate", type=float, default=0.0,
                   help="answer this share of requests with 503/429 (to test clients' retries)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from mmbench.adapters import load_model
    from mmbench.serve import ServeOptions, make_server
    from mmbench.specs import ModelSpec, parse_kv_args

    spec = ModelSpec(args.model, parse_kv_args(args.model_args))
    adapter = load_model(spec)
    options = ServeOptions(host=args.host, port=args.port, max_batch=args.max_batch, fail_rate=args.fail_rate)
    server = make_server(adapter, options, spec.display_name)
    print(f"serving {spec.display_name} at http://{args.host}:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.worker.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mmbench.cli import report_cmds, score

    parser = Parser(prog="mmbench", description="Evaluate multimodal models.")
    parser.add_argument("--version", action="version", version=f"mmbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_run_parser(sub)
    add_list_parser(sub)
    score.add_parser(sub)
    report_cmds.add_parsers(sub)
    add_serve_parser(sub)
    mini = sub.add_parser("mini", help="the built-in mini suite: retrain its models, check a run against the cards")
    mini_sub = mini.add_subparsers(dest="mini_command", metavar="SUBCOMMAND", required=True)
    train = mini_sub.add_parser("train", help="retrain the mini model zoo from scratch (args passed through)",
                                add_help=False)
    train.set_defaults(func=cmd_mini_train)
    check = mini_sub.add_parser("check", help="does a run reproduce the model cards' scores exactly? (exit 1 if not)",
                                add_help=False)
    check.set_defaults(func=cmd_mini_check)
    return parser


def cmd_mini_check(args: argparse.Namespace, extra: list[str]) -> int:
    from mmbench.mini.check import main as check_main

    return check_main(extra)


def cmd_mini_train(args: argparse.Namespace, extra: list[str]) -> int:
    from mmbench.mini.train.options import parse_args

    options = parse_args(extra)  # --help and bad options answer before torch is imported
    from mmbench.mini.train.driver import main as train_main

    return int(train_main(args=options) or 0)


def main(argv: list[str] | None = None) -> int:
    if not faulthandler.is_enabled():  # a native crash (a model's kernel, a worker's teardown) shows where it was
        faulthandler.enable()  # on file descriptor 2: run.log during a run, the terminal otherwise
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:  # `mmbench run` runs the built-in suite; `mmbench` alone only says what there is
        parser.print_help()
        return 0
    try:  # argparse exits on a bad option (after printing its one line) and on --help: return the code instead
        argv = argv[:1] + lm_eval_spellings(argv[1:]) if argv[0] not in ("mini",) else argv
        args, extra = parser.parse_known_args(argv)
        args.argv = list(argv)  # what the run records as its command (main() may be called with other arguments)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except MMBenchError as exc:
        print(f"mmbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        if getattr(args, "func", None) in (cmd_mini_train, cmd_mini_check):
            try:
                return args.func(args, extra)
            except SystemExit as exc:  # their own argument parsers
                return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        if extra:
            sub_prog = f"mmbench {args.command}" if getattr(args, "command", None) else "mmbench"
            print(f"{sub_prog}: error: unrecognized arguments: {' '.join(extra)} (see `{sub_prog} --help`)",
                  file=sys.stderr)
            return 2
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except MMBenchError as exc:
        print(f"mmbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mmbench: interrupted; finished items are cached: run the same command again to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`mmbench score ... | head`): stop quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
