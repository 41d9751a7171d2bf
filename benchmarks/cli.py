"""optbench: run the benchmarks of the fused optimizers, and rebuild their tables and plots.

Results go to one folder per benchmark under --out (default results/; results/quick/ with --quick).
Finished work units are kept on disk, so an interrupted command resumes where it stopped when run
again; --fresh starts over. `optbench COMMAND --help` lists a command's options.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence

from benchmarks import optimizer_specs, problems, result_set

PARTS = ("functions", "saddles", "cnn", "speed")
"""The benchmarks, in the order `all` runs them; each writes to OUT/<part>/."""

QUICK_OUT = os.path.join("results", "quick")

SWEEP = {"seeds": 50, "steps": 1000}
QUICK_SWEEP = {"seeds": 4, "steps": 100, "trials": 6, "refine_trials": 2, "tuning_seeds": 2}
"""functions: a full run gives every optimizer 48 + 16 trials over its own hyperparameters on 16 tuning
seeds and reports 50 held-out seeds at 1000 steps; saddles: 9 lrs on the 50 held-out seeds. A quick run
tries 6 + 2 trials on 2 tuning seeds and reports 4 seeds at 100 steps."""

CNN_DATASET = "mnist1d"
"""The default CNN problem (benchmarks/cnn/README.md says why); its seeds, epochs and lr search are
benchmarks.cnn's per-dataset budget (mnist1d: 10 held-out seeds; quick: 2)."""

SPEED = {"rounds": None}  # each workload's own (benchmarks.speed.shapes.default_rounds)
SPEED_DTYPES = ("float32", "bfloat16", "float16")
QUICK_SPEED = {"workloads": ["1M"], "rounds": 3}
"""speed (alone or within `all`) measures benchmarks.speed.shapes.DEFAULT_WORKLOADS in their default
rounds: the published table."""


class UsageError(Exception):
    """Bad input found after parsing: reported as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): `PROG: error: MESSAGE`, exit status 2."""

    def error(self, message: str) -> None:
        hint = "" if "choose from" in message else f" (see `{self.prog} --help`)"
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the command names beside their help: argparse measures them one indent short."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.dest == "command":
            names = max(map(len, action.choices))
            self._action_max_length = max(self._action_max_length, self._current_indent + 2 + names)


MAX_SEEDS, MAX_STEPS, MAX_EPOCHS, MAX_ROUNDS = 5000, 100_000, 1000, 10_000
"""Bounds of the counts, each 50x or more its default, and why (measured on the CPU with every optimizer
and problem): at all the limits at once a run still fits a 24 GiB machine, if not an afternoon."""
_LIMITS = {
    "sweep seeds": (
        MAX_SEEDS,
        "a sweep holds about 1.5 MB of runs and loss curves per held-out seed in memory, 8 GB at the limit",
    ),
    "cnn seeds": (MAX_SEEDS, "each seed is one more training run per optimizer"),
    "steps": (
        MAX_STEPS,
        "steps run one after another and the trajectories keep each one: "
        f"{MAX_STEPS} steps take hours and about 1 GB",
    ),
    "epochs": (MAX_EPOCHS, "the largest budget is 30 epochs, and every epoch is one more pass per run"),
    "jobs": (256, "each job is a worker process holding its own copy of the data"),
    "rounds": (MAX_ROUNDS, f"each round times every implementation once: {MAX_ROUNDS} rounds take hours"),
}


def _count(limit: str) -> Callable[[str], int]:
    """The type of a count option: a positive integer up to _LIMITS[limit]."""
    most, why = _LIMITS[limit]

    def count(text: str) -> int:
        shown = repr(text if len(text) <= 40 else text[:37] + "...")
        try:
            value = int(text)
        except ValueError:  # also a number of more digits than int() parses
            value = most + 1 if text.strip().isdecimal() else 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be a positive integer (1, 2, 3, ...), got {shown}")
        if value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, got {shown}: {why}")
        return value

    return count


def _folder(text: str) -> str:
    """--out: a folder name; '' would write into the current directory unasked."""
    if not text:
        raise argparse.ArgumentTypeError("must name a folder, got ''; give --out . for the current directory")
    return text


# -- the parser -------------------------------------------------------------------------------------
def _run_options() -> argparse.ArgumentParser:
    """Options of every command that runs a benchmark."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("output and run control")
    group.add_argument(
        "--out",
        type=_folder,
        metavar="DIR",
        help=f"results folder, one subfolder per benchmark (default: results/; {QUICK_OUT}/ with --quick)",
    )
    group.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run of seconds")
    group.add_argument(
        "--fresh", action="store_true", help="discard finished work units in DIR instead of resuming"
    )
    group.add_argument("--no-plots", action="store_true", help="write the CSVs and tables only")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parent


def _optimizer_options(what: str, seeds: str = "sweep seeds") -> argparse.ArgumentParser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("optimizers and seeds")
    group.add_argument(
        "--optimizers",
        nargs="+",
        metavar="NAME",
        choices=[*optimizer_specs.SPECS, "torch"],
        help=f"from {', '.join(optimizer_specs.SPECS)}; 'torch' adds every torch.optim counterpart "
        f"(default: {', '.join(optimizer_specs.DEFAULT)})",
    )
    group.add_argument("--seeds", type=_count(seeds), metavar="N", help=what)
    return parent


def _cnn_run_options(group) -> None:
    from benchmarks.cnn.schedules import SCHEDULES

    group.add_argument(
        "--schedule",
        default="constant",
        choices=SCHEDULES,
        help="cnn: lr schedule (step: x0.1 at 50%% and 75%% of the steps; cosine: to 0 after a 5%% "
        "linear warmup) (default: constant)",
    )
    group.add_argument(
        "--jobs",
        type=_count("jobs"),
        metavar="N",
        help="cnn: runs at once (default: one per core on mnist1d and digits, 1 on the image sets)",
    )


def _device_option() -> argparse.ArgumentParser:
    parent = _Parser(add_help=False)
    parent.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="optbench", description=__doc__, formatter_class=_Formatter)
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )
    run = _run_options()
    sweep_seeds = "held-out seeds per reported row (default: 50; quick: 4)"
    cnn_seeds = "held-out seeds at the chosen lr (default: the dataset's budget, 10 on mnist1d; quick: 2)"
    steps_help = "step budget of every run (default: 1000; quick: 100)"

    for name, choices, help_text in (
        (
            "functions",
            problems.FUNCTIONS,
            "convergence on test functions (Rosenbrock, Beale, ill-conditioned quadratics, a ravine, "
            "noisy variants)",
        ),
        ("saddles", problems.SADDLES, "escape from saddles (a 10-D strict saddle, 5x² − y², monkey saddle)"),
    ):
        sub = commands.add_parser(
            name,
            parents=[run, _optimizer_options(sweep_seeds)],
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}: functions: every optimizer tuned with the "
            f"same number of trials over its own hyperparameters on tuning seeds, then reported on held-out "
            f"seeds; saddles: escape against lr on held-out seeds (benchmarks/convergence/). "
            f"Writes OUT/{name}/: runs.csv, curves.csv, trajectories.csv, sweep.json, and last manifest.json "
            f"(their sizes, rows and checksums); then convergence.md and *.png. Each stage of the sweep is "
            f"a work unit in OUT/{name}/units/, named by its settings, so runs with other settings into the "
            f"same DIR keep theirs.",
        )
        group = sub.add_argument_group(f"{name} options")
        group.add_argument(
            "--problems",
            nargs="+",
            metavar="NAME",
            choices=choices,
            help=f"from {', '.join(choices)} (default: all)",
        )
        group.add_argument("--steps", type=_count("steps"), metavar="N", help=steps_help)

    sub = commands.add_parser(
        "cnn",
        parents=[run, _optimizer_options(cnn_seeds, "cnn seeds"), _device_option()],
        help="a small CNN trained on MNIST-1D (or digits; MNIST, Fashion-MNIST, CIFAR-10 from local files)",
        description="A small CNN trained by each optimizer: lr searched on 3 seeds and a validation split, "
        "then held-out seeds at the chosen lr (benchmarks/cnn/). Writes OUT/cnn/: cnn_epochs.csv, cnn.md, "
        "*.png; each training run is a work unit in OUT/cnn/runs/, named by all its settings.",
    )
    group = sub.add_argument_group("cnn options")
    group.add_argument(
        "--dataset",
        default=CNN_DATASET,
        help="mnist1d (generated by the mnist1d package), digits (bundled with scikit-learn), mnist, "
        f"fashion-mnist or cifar10 (local files) (default: {CNN_DATASET})",
    )
    group.add_argument(
        "--data-dir", metavar="DIR", help="folder with the dataset's files (mnist, fashion-mnist, cifar10)"
    )
    group.add_argument(
        "--epochs", type=_count("epochs"), metavar="N", help="epochs per run (default: the dataset's budget)"
    )
    _cnn_run_options(group)

    from benchmarks.speed.rules import RULES
    from benchmarks.speed.shapes import DEFAULT_WORKLOADS, FEWER_ROUNDS, ROUNDS, WORKLOADS

    defaults = "; ".join(f"on {device}: {' '.join(names)}" for device, names in DEFAULT_WORKLOADS.items())
    sub = commands.add_parser(
        "speed",
        parents=[run, _device_option()],
        help="time per optimizer step against torch.optim and other peers, and the memory-bandwidth floor",
        description="Time per step of each rule's implementations next to the memory-bandwidth floor "
        "(benchmarks/speed/): ours, torch.optim fused / foreach / for-loop, torch.compile'd foreach, "
        "DeepSpeed's CPU Adam, bitsandbytes' 32-bit optimizers, pytorch_optimizer's DiffGrad and "
        "AdaBelief and the AdaBelief authors' package. A "
        "peer whose package is missing (or that cannot run on the device) is left out and named in "
        "the table. Each speedup is a ratio of medians with its bootstrap interval over the "
        "interleaved rounds (parity when it holds 1). Writes OUT/speed/: speed_<device>.csv, .md, "
        ".png (time per step) and _speedup.png (speedups with their intervals); each (rule, "
        "workload) is a work unit in OUT/speed/units/.",
    )
    group = sub.add_argument_group("speed options")
    group.add_argument(
        "--rules",
        nargs="+",
        metavar="RULE",
        choices=list(RULES),
        help=f"from {', '.join(RULES)} (default: all)",
    )
    group.add_argument(
        "--workloads",
        nargs="+",
        metavar="NAME",
        choices=list(WORKLOADS),
        help=f"from {', '.join(WORKLOADS)} (default {defaults}; quick: {' '.join(QUICK_SPEED['workloads'])})",
    )
    group.add_argument(
        "--rounds",
        type=_count("rounds"),
        metavar="N",
        help="rounds of interleaved steps; one timed step of each implementation per round, "
        f"the unit the speedups' intervals resample (default: {ROUNDS}, "
        + ", ".join(f"{w} {n}" for w, n in FEWER_ROUNDS.items())
        + f"; quick: {QUICK_SPEED['rounds']})",
    )
    group.add_argument(
        "--dtype",
        default="float32",
        choices=list(SPEED_DTYPES),
        help="params' dtype (default: float32); bfloat16 and float16 also time ours with "
        "master_weights=True (ours-master) and write speed_<device>_<dtype>.csv (.md, .png, _speedup.png)",
    )

    sub = commands.add_parser(
        "all",
        parents=[run, _optimizer_options(f"{sweep_seeds}; for cnn: {cnn_seeds}"), _device_option()],
        help=f"functions, saddles, cnn ({CNN_DATASET}) and speed on their defaults",
        description=f"functions, saddles, cnn ({CNN_DATASET}) and speed, one after the other, on their "
        "defaults; --device applies to cnn and speed (the convergence sweeps run on the CPU in float64). "
        "Rerun to resume.",
    )
    group = sub.add_argument_group("budgets")
    group.add_argument(
        "--steps", type=_count("steps"), metavar="N", help=f"functions and saddles: {steps_help}"
    )
    group.add_argument(
        "--epochs",
        type=_count("epochs"),
        metavar="N",
        help=f"cnn: epochs per run (default: the {CNN_DATASET} budget)",
    )
    _cnn_run_options(group)

    sub = commands.add_parser(
        "report",
        help="tables and plots again from the CSVs, re-running nothing",
        description="Rebuilds the tables and plots from the CSVs under --out (nothing is re-run; the same "
        "CSVs give byte-identical tables). A result set is read only as its manifest lists it: a file cut "
        "short, replaced or edited, or a set a killed run left half-written, is refused (exit status 2); "
        "results written before manifests are read with a warning.",
    )
    sub.add_argument(
        "parts",
        nargs="*",
        metavar="PART",
        help=f"from {', '.join(PARTS)} (default: every one with a CSV under DIR)",
    )
    sub.add_argument(
        "--out", type=_folder, metavar="DIR", default="results", help="results folder (default: results/)"
    )
    sub.add_argument("--no-plots", action="store_true", help="tables only")
    parser.commands = commands.choices  # name -> the command's parser
    return parser


# -- checks -----------------------------------------------------------------------------------------
def writable_dir(path: str) -> str:
    """Creates `path` if needed and checks that files can be written in it."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        reason = e.strerror or str(e)
        raise UsageError(
            f"cannot write to the output directory {path!r} ({reason}); give --out a writable DIR"
        ) from None
    return path


def checked_device(name: str) -> str:
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    available = ["cpu", *(["cuda"] if gpus else []), *(f"cuda:{i}" for i in range(gpus))]
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or not (device.type == "cpu" or (device.type == "cuda" and (device.index or 0) < gpus)):
        raise UsageError(f"device {name!r} is not available here; choose from {', '.join(available)}")
    return name


def _load_cnn():
    try:
        import benchmarks.cnn as cnn
    except ImportError as e:
        raise UsageError(f"the CNN benchmark (benchmarks.cnn) cannot be imported: {e}") from None
    return cnn


def checked_dataset(cnn, name: str) -> str:
    if name not in cnn.DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(cnn.DATASETS)}")
    return name


# -- the commands -----------------------------------------------------------------------------------
def _pick(value, quick: bool, full, fast):
    """An option's value: as given, else the quick or the full default."""
    if value is not None:
        return value
    return fast if quick else full


def _out(args) -> str:
    return args.out if args.out is not None else (QUICK_OUT if args.quick else "results")


def _say(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def run_convergence(args, part: str) -> list[str]:
    from benchmarks.convergence import run_sweep, write_report

    out = writable_dir(os.path.join(_out(args), part))
    names = getattr(args, "problems", None) or list(
        problems.FUNCTIONS if part == "functions" else problems.SADDLES
    )
    kwargs = {k: QUICK_SWEEP[k] for k in ("trials", "refine_trials", "tuning_seeds")} if args.quick else {}
    runs = run_sweep(
        args.optimizers,
        names,
        seeds=_pick(args.seeds, args.quick, SWEEP["seeds"], QUICK_SWEEP["seeds"]),
        steps=_pick(args.steps, args.quick, SWEEP["steps"], QUICK_SWEEP["steps"]),
        out_dir=out,
        progress=not args.no_progress,
        resume=not args.fresh,
        **kwargs,
    )
    loaded = runs.attrs["units_loaded"]
    stages = 1 if part == "saddles" else 3
    seconds = runs.attrs["seconds"]
    _say(f"{part}: {len(runs)} runs, {seconds:.1f} s of compute ({loaded} of {stages} stages loaded)")
    data = [os.path.join(out, name) for name in (*SET_FILES, result_set.MANIFEST)]
    return data + write_report(data[0], out, plots=not args.no_plots)


def run_cnn_part(args, cnn=None, dataset: str = CNN_DATASET, data_dir: str | None = None) -> list[str]:
    cnn = cnn or _load_cnn()
    dataset = checked_dataset(cnn, dataset)
    out = writable_dir(os.path.join(_out(args), "cnn"))
    if args.fresh:  # run_cnn resumes from the run files in OUT/cnn/runs/
        shutil.rmtree(os.path.join(out, "runs"), ignore_errors=True)
    try:
        rows = cnn.run_cnn(
            args.optimizers,
            args.seeds,
            args.epochs,
            dataset,
            data_dir,
            out,
            device=args.device,
            quick=args.quick,
            progress=not args.no_progress,
            schedule=args.schedule,
            jobs=args.jobs,
        )
    except cnn.DataNotFoundError as e:
        message = " ".join(str(e).split())
        raise UsageError(
            f"{message}; give --data-dir DIR with them, or --dataset {CNN_DATASET} (generated)"
        ) from None
    except cnn.DataFileError as e:
        message = " ".join(str(e).split())
        raise UsageError(
            f"damaged {dataset} file {message}; replace it with a good copy, or use --dataset {CNN_DATASET} "
            "(generated)"
        ) from None
    attrs = rows.attrs
    if "ran" in attrs and "loaded" in attrs:
        _say(f"cnn: {len(attrs['ran'])} runs trained, {len(attrs['loaded'])} loaded from {out}/runs")
    csv = os.path.join(out, "cnn_epochs.csv")
    return [csv, *_cnn_report(cnn, csv, out, plots=not args.no_plots)]


def _cnn_report(cnn, csv: str, out: str, plots: bool) -> list[str]:
    return cnn.write_cnn_report(csv, out) if plots else cnn.write_cnn_report(csv, out, plots=False)


def run_speed_part(args, workloads: list[str] | None = None, rounds: int | None = None) -> list[str]:
    import torch

    from benchmarks.speed.report import write_report, write_speed_csv
    from benchmarks.speed.rules import RULES
    from benchmarks.speed.run import run_speed
    from benchmarks.speed.shapes import DEFAULT_WORKLOADS

    device_type = torch.device(args.device).type
    out = writable_dir(os.path.join(_out(args), "speed"))
    workloads = _pick(workloads, args.quick, DEFAULT_WORKLOADS[device_type], QUICK_SPEED["workloads"])
    dtype = getattr(args, "dtype", "float32")
    df = run_speed(
        getattr(args, "rules", None) or list(RULES),
        workloads,
        args.device,
        rounds=_pick(rounds, args.quick, SPEED["rounds"], QUICK_SPEED["rounds"]),
        progress=not args.no_progress,
        units_dir=os.path.join(out, "units"),
        resume=not args.fresh,
        dtype=getattr(torch, dtype),
    )
    _say(f"speed: {len(df)} rows ({df.attrs['units_loaded']} of {df.attrs['units']} measurements loaded)")
    suffix = "" if dtype == "float32" else f"_{dtype}"
    csv = write_speed_csv(df, out, f"speed_{device_type}{suffix}.csv")
    return [csv, *write_report(csv, out, plots=not args.no_plots)]


def cmd_functions(args) -> list[str]:
    return run_convergence(args, "functions")


def cmd_saddles(args) -> list[str]:
    return run_convergence(args, "saddles")


def cmd_cnn(args) -> list[str]:
    checked_device(args.device)
    return run_cnn_part(args, dataset=args.dataset, data_dir=args.data_dir)


def cmd_speed(args) -> list[str]:
    checked_device(args.device)
    return run_speed_part(args, args.workloads, args.rounds)


def cmd_all(args) -> list[str]:
    """Each part in turn, printing its files as soon as it is done; returns nothing more to print."""

    checked_device(args.device)
    cnn = _load_cnn()  # fail now rather than after the sweeps
    for part in PARTS:
        writable_dir(os.path.join(_out(args), part))
    for part in ("functions", "saddles"):
        _say(f"== {part}")
        _say(*run_convergence(args, part))
    _say("== cnn")
    _say(*run_cnn_part(args, cnn))
    if args.optimizers is not None:  # the rules that time them; None: every rule
        from benchmarks.speed.rules import rules_timing

        args.rules = rules_timing(args.optimizers)
    _say("== speed")
    _say(*run_speed_part(args))
    return _readme(args)


def cmd_report(args) -> list[str]:
    out = args.out
    found = {
        "functions": [os.path.join(out, "functions", "runs.csv")],
        "saddles": [os.path.join(out, "saddles", "runs.csv")],
        "cnn": [os.path.join(out, "cnn", "cnn_epochs.csv")],
        "speed": sorted(glob.glob(os.path.join(glob.escape(out), "speed", "speed_*.csv"))),
    }
    # A sweep's set is there when its runs.csv or its manifest is (which then names what is missing).
    found = {
        part: [
            p
            for p in paths
            if os.path.lexists(p) or (part in _SWEEPS and os.path.exists(_beside(p, result_set.MANIFEST)))
        ]
        for part, paths in found.items()
    }
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        raise UsageError(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    parts = list(dict.fromkeys(args.parts)) or [part for part in PARTS if found[part]]
    missing = [part for part in parts if not found[part]]
    if not parts or missing:
        have = [part for part in PARTS if found[part]]
        raise UsageError(
            f"no results for {', '.join(missing or PARTS)} under {out!r} "
            f"(parts with CSVs there: {', '.join(have) or 'none'}); run `optbench PART` first or pass --out"
        )
    written = []
    for part in parts:
        folder = writable_dir(os.path.join(out, part))
        for csv in found[part]:
            if part in _SWEEPS:
                from benchmarks.convergence import write_report

                written += write_report(csv, folder, plots=not args.no_plots)
                continue
            # The CNN and speed reports read their CSV themselves; it is checked here first: against its
            # manifest when it has one, and for being a table with rows at all.
            manifest = (
                result_set.MANIFEST if part == "cnn" else result_set.own_manifest(os.path.basename(csv))
            )
            result_set.ResultSet(folder, manifest).csv(os.path.basename(csv))
            if part == "cnn":
                written += _cnn_report(_load_cnn(), csv, folder, plots=not args.no_plots)
            else:
                from benchmarks.speed.report import write_report as write_speed_report

                written += write_speed_report(csv, folder, plots=not args.no_plots)
    return written + _readme(args)


_SWEEPS = ("functions", "saddles")
SET_FILES = ("runs.csv", "curves.csv", "trajectories.csv", "sweep.json")
"""The result set a sweep writes to OUT/<part>/, listed by its manifest.json."""


def _beside(path: str, name: str) -> str:
    return os.path.join(os.path.dirname(path), name)


def _readme(args) -> list[str]:
    """The README's result tables follow results/ (the default --out) and nothing else."""
    from benchmarks.metadata import REPO
    from benchmarks.readme import update_readme

    if os.path.abspath(_out(args)) != os.path.join(REPO, "results"):
        return []
    readme = os.path.join(REPO, "README.md")
    return [readme] if update_readme(_out(args), readme) else []


COMMANDS: dict[str, Callable] = {
    "functions": cmd_functions,
    "saddles": cmd_saddles,
    "cnn": cmd_cnn,
    "speed": cmd_speed,
    "all": cmd_all,
    "report": cmd_report,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's parser, whose --help lists what it takes
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.error(f"no command given; choose from {', '.join(COMMANDS)}")
    prog = f"optbench {args.command}"
    try:
        with _warnings_as_lines(prog):
            _say(*COMMANDS[args.command](args))
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except result_set.ResultFileError as e:  # a damaged, truncated or mixed result file: names it
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            f"{prog}: interrupted; finished work units are kept: run the same command again to resume",
            file=sys.stderr,
        )
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`optbench ... | head`): end as SIGPIPE ends `cat`
        _discard_output()
        sys.exit(128 + signal.SIGPIPE)
    except OSError as e:  # a full disk, a folder where a result file goes, ...
        print(f"{prog}: error: {_os_error(e, resumable=args.command != 'report')}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def _warnings_as_lines(prog: str):
    """Results read unchecked (written before manifests) are said in one line each, once, after a command
    that succeeds: an error stays the one line on stderr. Other warnings are shown as usual."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", result_set.UncheckedResultsWarning)
            yield
    finally:
        for w in caught:
            if not issubclass(w.category, result_set.UncheckedResultsWarning):
                warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    unchecked = [str(w.message) for w in caught if issubclass(w.category, result_set.UncheckedResultsWarning)]
    for message in dict.fromkeys(unchecked):
        print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)


def _os_error(e: OSError, resumable: bool) -> str:
    name = e.filename2 or e.filename  # os.replace(tmp, path) names the destination second
    line = " ".join(f"{e.strerror or e}{f': {name}' if name else ''}".split())
    return (
        f"{line}; finished work units are kept: run the same command again to resume" if resumable else line
    )


def _discard_output() -> None:
    """Points stdout and stderr at /dev/null, so that Python's flush at exit meets no closed pipe (and
    prints no 'Exception ignored')."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):  # not a real file (pytest's capture): nothing to flush at exit
            pass


if __name__ == "__main__":
    main()
