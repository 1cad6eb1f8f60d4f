"""Command-line wiring of the reports: `plot`, `compare`, and `run`'s --plot / --timeline.

hwsim/cli.py calls these:

    add_report_commands(subparsers)   # adds `plot DIR` and `compare ARCH TRACE...`;
                                      # each sets `handler` (also in REPORT_COMMANDS)
    add_run_report_options(run_parser)  # --plot, --timeline FILE.json, --timeline-steps A:B
    check_run_report_options(args)    # before the simulation: flag errors, files in the way
    after_run(args, result, trace, arch)  # after it: plots, timeline, file sizes printed

Every user mistake is an InputError (exit 2, one line); no existing file is overwritten
without --force.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .errors import InputError

DEFAULT_PLOT_DIR = "hwsim-plots"
DEFAULT_TIMELINE_STEPS = (0, 2)
COMPARE_OUTPUTS = ("compare.csv", "compare.parquet", "compare.png")


def human_size(n: int) -> str:
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _wrote(paths) -> str:
    return "\n".join(f"  wrote {p} ({human_size(Path(p).stat().st_size)})" for p in paths)


def _dir_for_output(path: str, flag: str) -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{path}: {flag}: exists and is not a directory")
    return p


def _refuse_existing(paths, force: bool, flag: str):
    if force:
        return
    for p in paths:
        if Path(p).exists():
            raise InputError(f"{p}: {flag}: file exists; pass --force to overwrite it")


# -- run options ----------------------------------------------------------------------------


def add_run_report_options(run_parser: argparse.ArgumentParser):
    g = run_parser.add_argument_group("reports")
    g.add_argument("--plot", action="store_true",
                   help=f"write the four plots (into --out, or ./{DEFAULT_PLOT_DIR} without it)")
    g.add_argument("--timeline", metavar="FILE.json",
                   help="write a Chrome trace-event timeline (open in ui.perfetto.dev) of a few "
                        "steps, run on the detailed engine")
    g.add_argument("--timeline-steps", metavar="A:B", dest="timeline_steps",
                   help="time steps A..B-1 of the timeline (default 0:2); keeps the file small")


def parse_steps(text: str | None, n_steps: int | None = None,
                flag: str = "--timeline-steps") -> tuple[int, int]:
    """'A:B' -> (A, B) with 0 <= A < B (and B <= n_steps when known). None -> the default
    window, clamped to the trace."""
    if text is None:
        a, b = DEFAULT_TIMELINE_STEPS
        if n_steps is not None:
            b = min(b, n_steps)
        return a, b
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(text))
    if not m:
        raise InputError(f"{flag}: expected A:B with integers 0 <= A < B (e.g. 0:2), "
                         f"got {text!r}")
    a, b = int(m.group(1)), int(m.group(2))
    if a >= b:
        raise InputError(f"{flag}: expected A < B, got {text!r} (an empty window)")
    if n_steps is not None and b > n_steps:
        raise InputError(f"{flag}: {text!r} ends after the last step (the run has {n_steps} "
                         f"steps: use B <= {n_steps})")
    return a, b


def _plot_dir(args) -> Path | None:
    if getattr(args, "out", None):
        return Path(args.out)
    if getattr(args, "plot", False):
        return Path(DEFAULT_PLOT_DIR)
    return None


def check_run_report_options(args, n_steps: int | None = None):
    """Refuse bad report flags and files in the way before a (long) simulation starts."""
    from .plot import PLOT_FILES

    force = getattr(args, "force", False)
    if getattr(args, "timeline_steps", None) is not None and not getattr(args, "timeline", None):
        raise InputError("--timeline-steps: needs --timeline FILE.json")
    if getattr(args, "timeline", None):
        parse_steps(getattr(args, "timeline_steps", None), n_steps)
        t = Path(args.timeline)
        if t.is_dir():
            raise InputError(f"{t}: --timeline: is a directory, expected a FILE.json")
        _refuse_existing([t], force, "--timeline")
    d = _plot_dir(args)
    if d is not None:
        flag = "--out" if getattr(args, "out", None) else "--plot"
        _dir_for_output(str(d), flag)
        _refuse_existing([d / f for f in PLOT_FILES.values()], force, flag)


def after_run(args, result, trace, arch) -> dict:
    """Write what the report flags asked for (plots, timeline) and print the files' sizes."""
    from .plot import plot_all
    from .timeline import write_timeline

    n_steps = int(result.summary.get("steps") or trace.steps)
    check_run_report_options(args, min(n_steps, trace.steps))
    quiet = getattr(args, "quiet", False)
    done = {}
    d = _plot_dir(args)
    if d is not None:
        done["plots"] = plot_all(result, d)
        if not quiet:
            print(_wrote(done["plots"]))
    if getattr(args, "timeline", None):
        a, b = parse_steps(getattr(args, "timeline_steps", None), min(n_steps, trace.steps))
        stats = write_timeline(trace, arch, args.timeline, steps=(a, b))
        done["timeline"] = stats
        if not quiet:
            print(f"  wrote {stats['path']} ({human_size(stats['bytes'])}, {stats['events']:,} "
                  f"trace events, steps {a}:{b}, {stats['phases']} phases, "
                  f"{stats['cycles']:,} cycles; detailed engine) - open it in ui.perfetto.dev")
    return done


# -- commands -------------------------------------------------------------------------------


def add_report_commands(subparsers):
    p = subparsers.add_parser("plot", help="redraw the plots of a saved run (run --out DIR)")
    p.add_argument("dir", metavar="DIR", help="directory written by `run --out DIR`")
    p.add_argument("--out", metavar="PLOTDIR", help="write the plots here (default: DIR)")
    p.add_argument("--force", action="store_true", help="overwrite existing plots")
    p.set_defaults(handler=cmd_plot)

    c = subparsers.add_parser(
        "compare", help="run several traces on one chip and compare them (first = reference)")
    c.add_argument("arch", metavar="ARCH", help="architecture YAML, e.g. archs/pe64.yaml")
    c.add_argument("traces", metavar="TRACE", nargs="+",
                   help="trace .npz files, e.g. traces/dense.npz traces/fatrelu.npz")
    c.add_argument("--out", metavar="DIR",
                   help="save compare.csv, compare.parquet and the grouped bar plot compare.png")
    c.add_argument("--engine", choices=("fast", "detailed"), default="fast")
    c.add_argument("--steps", type=int, metavar="N", help="simulate only the first N time steps")
    c.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="worker processes over phases (same results as 1)")
    c.add_argument("--force", action="store_true", help="let --out overwrite an earlier compare")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an architecture parameter by dotted path, e.g. sram.banks=4")
    c.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module or .py file that registers custom components")
    c.set_defaults(handler=cmd_compare)
    return p, c


def cmd_plot(args) -> int:
    from .plot import PLOT_FILES, plot_all
    from .result import load_result

    result = load_result(args.dir)
    out = _dir_for_output(args.out or args.dir, "--out" if args.out else "DIR")
    _refuse_existing([out / f for f in PLOT_FILES.values()], args.force, "plot")
    print(_wrote(plot_all(result, out)))
    return 0


def cmd_compare(args) -> int:
    from .compare import compare, format_table
    from .plot import compare_bars

    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps: expected an integer >= 1, got {args.steps}")
    if args.jobs < 1:
        raise InputError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    out = None
    if args.out:
        out = _dir_for_output(args.out, "--out")
        if (out / "compare.csv").exists() and not args.force:
            raise InputError(f"{out}: --out: this directory already holds a comparison "
                             "(compare.csv); choose another or pass --force to overwrite it")
    from .cli import load_arch_args, load_plugins

    load_plugins(args.plugin)
    arch = load_arch_args(args.arch, args.overrides)
    from .trace import load_trace

    traces = [load_trace(t) for t in args.traces]  # all validated before any run starts
    df = compare(arch, traces, engine=args.engine, steps=args.steps, jobs=args.jobs,
                 progress=not args.quiet)
    print(format_table(df))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f for f in COMPARE_OUTPUTS]
        df.to_csv(paths[0], index=False)
        df.to_parquet(paths[1], index=False)
        compare_bars(df, paths[2])
        print(_wrote(paths))
    return 0


REPORT_COMMANDS = {"plot": cmd_plot, "compare": cmd_compare}
