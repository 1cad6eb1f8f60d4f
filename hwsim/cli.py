"""Command line: `python -m hwsim run|validate|compare|plot|sweep|plot-sweep ...`.

Every user mistake is an InputError: one line on stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import cli_report, cli_sweep
from .errors import InputError


def _add_arch_options(p: argparse.ArgumentParser):
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an architecture parameter by dotted path, e.g. sram.banks=4")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module or .py file that registers custom components")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m hwsim", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="simulate a trace on an architecture")
    run.add_argument("arch", help="architecture YAML, e.g. archs/pe64.yaml")
    run.add_argument("trace", help="trace .npz, e.g. traces/fatrelu.npz")
    run.add_argument("--engine", choices=("fast", "detailed"), default="fast",
                     help="fast: compiled phase kernels (default); detailed: SimPy per component")
    run.add_argument("--steps", type=int, metavar="N", help="simulate only the first N time steps")
    run.add_argument("--mode", choices=("op_by_op", "layer_pipelined"),
                     help="shorthand for --set mapping.mode=MODE")
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="workers over phases: threads for the compiled fast kernel, processes "
                          "otherwise (same results as 1)")
    run.add_argument("--out", metavar="DIR", help="write result tables and summary.json to DIR")
    run.add_argument("--force", action="store_true", help="let --out overwrite earlier results")
    run.add_argument("--json", metavar="FILE", help="write the summary as JSON to FILE")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no summary text")
    _add_arch_options(run)
    cli_report.add_run_report_options(run)

    val = sub.add_parser("validate", help="check trace (.npz) and architecture (.yaml) files")
    val.add_argument("files", nargs="+")
    _add_arch_options(val)
    val.set_defaults(handler=cmd_validate)
    run.set_defaults(handler=cmd_run)

    cli_report.add_report_commands(sub)
    cli_sweep.add_sweep_commands(sub)
    return ap


def load_plugins(specs):
    """Import what the user asked for: entry points, then each --plugin."""
    from .components import registry

    registry.load_entry_points()
    for spec in specs or ():
        registry.load_plugin(spec)


def load_arch_args(path, overrides):
    """An architecture with its --set KEY=VALUE overrides."""
    from .arch import load_arch, parse_override

    return load_arch(path, dict(parse_override(o) for o in overrides or ()))


def _refuse_overwrite(path: str, force: bool, what: str):
    if Path(path).exists() and not force:
        raise InputError(f"{path}: {what}: file exists; pass --force to overwrite it")


def cmd_run(args) -> int:
    from .report import bottleneck_text
    from .result import refuse_overwrite
    from .runner import run
    from .trace import load_trace

    load_plugins(args.plugin)
    overrides = list(args.overrides) + ([f"mapping.mode={args.mode}"] if args.mode else [])
    arch = load_arch_args(args.arch, overrides)
    trace = load_trace(args.trace)
    if args.jobs < 1:
        raise InputError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    if args.json:
        _refuse_overwrite(args.json, args.force, "--json")
    if args.out:  # refused before a long run, not after it
        refuse_overwrite(args.out, args.force)
    n_steps = min(args.steps, trace.steps) if args.steps and args.steps > 0 else trace.steps
    cli_report.check_run_report_options(args, n_steps)  # before a long run, not after
    result = run(trace, arch, engine=args.engine, steps=args.steps, jobs=args.jobs,
                 progress=not args.quiet)
    if not args.quiet:
        print(format_summary(result.summary))
        print(bottleneck_text(result))
    if args.out:
        written = result.save(args.out, force=args.force)
        if not args.quiet:
            print(f"  wrote {len(written)} result files to {args.out}/")
    if args.json:
        Path(args.json).write_text(json.dumps(result.summary, indent=2) + "\n")
    cli_report.after_run(args, result, trace, arch)
    return 0


def format_summary(s: dict) -> str:
    split = s["cycle_split_pe_cycles"]
    tot = sum(split.values()) or 1
    b = s["bottleneck"]
    lines = [
        f"hwsim: {s['trace_file']} on {s['arch']} ({s['n_pe']} PEs, {s['clock_mhz']:g} MHz), "
        f"{s['engine']} engine, {s['mode']}",
    ]
    if s.get("synthetic_trace"):
        lines.append("  note: the trace is SYNTHETIC (generated, not recorded from a model)")
    for n in s["notes"]:
        lines.append(f"  note: {n}")
    lines += [
        f"  steps         {s['steps']} x {s['step_ms']:g} ms = {s['audio_ms']:g} ms of audio"
        f" ({s['phases']} phases)",
        f"  cycles        {s['cycles']:,}  = {s['time_ms']:.3f} ms at the clock",
        f"  real-time     factor {s['rtf']:.3g}  ({s['steps_over_deadline']} of {s['steps']} "
        f"steps over their {s['step_ms']:g} ms deadline)",
        f"  energy        {s['energy_pj'] / 1e6:.3f} uJ  ("
        + ", ".join(f"{k} {v / max(s['energy_pj'], 1e-30):.0%}"
                    for k, v in sorted(s["energy_by_component_pj"].items(), key=lambda kv: -kv[1])
                    if v > 0) + ")",
        f"  events        {s['events']:,} in, {s['deliveries']:,} delivered to PEs",
        f"  MACs / ACs    {s['macs']:,} / {s['acs']:,}",
        f"  SRAM          {s['sram_reads']:,} word reads, {s['sram_writes']:,} word writes;"
        f" NoC {s['flit_hops']:,} flit-hops; queue high-water {s['queue_hwm']}",
        "  PE-cycles     " + ", ".join(f"{k} {v / tot:.1%}" for k, v in split.items()),
        f"  bottleneck    {b['class']} ({b['share']:.1%} of PE-cycles)",
        f"  wall time     {s['wall_s']:.2f} s",
    ]
    return "\n".join(lines)


def cmd_validate(args) -> int:
    from .trace import load_trace

    load_plugins(args.plugin)
    for f in args.files:
        if f.endswith((".yaml", ".yml")):
            arch = load_arch_args(f, args.overrides)
            from .runner import resolve_engine

            resolve_engine(arch, "fast")  # the component name must be registered
            print(f"{f}: ok (architecture {arch.name}, {arch.n_pe} PEs)")
        elif f.endswith(".npz"):
            t = load_trace(f)
            kind = "synthetic" if t.synthetic else "recorded"
            print(f"{f}: ok (trace {t.variant}, {kind}, {len(t.ops)} ops, {t.steps} steps, "
                  f"{t.n_events():,} events)")
        else:
            raise InputError(f"{f}: expected a .npz trace or a .yaml architecture")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except InputError as e:
        print(f"hwsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
