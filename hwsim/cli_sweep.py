"""Command line of sweeps: `python -m hwsim sweep ...` and `python -m hwsim plot-sweep DIR`.

``add_sweep_commands(subparsers)`` adds both sub-commands; each parser gets ``handler`` as its
default, so ``args.handler(args)`` runs it. User mistakes raise InputError (exit 2, one line).
"""

from __future__ import annotations

import argparse

from .errors import InputError

SWEEP_HELP = """\
Run a base architecture with parameters varied, on one or more traces. Every finished run is
written at once to DIR/results.sqlite; a rerun with the same arguments skips what is done.
Examples:
  python -m hwsim sweep archs/pe16.yaml traces/fatrelu.npz --set pe.mac_lanes=4,8,16 \\
      --set sram.banks=1,2,4 --set mapping.mode=op_by_op,layer_pipelined --out out/sw --jobs 2
  python -m hwsim sweep --config sweep.yaml --out out/sw --scheduler tcp://10.0.0.5:8786
"""


def add_sweep_commands(subparsers) -> None:
    """Add `sweep` and `plot-sweep` to an argparse sub-parser set."""
    sw = subparsers.add_parser(
        "sweep", help="run a design-space sweep (local pool or Dask cluster)",
        description=SWEEP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("inputs", nargs="*", metavar="ARCH TRACE",
                    help="base architecture (YAML or shipped name) then one or more traces; "
                         "optional with --config when it names them")
    sw.add_argument("--set", dest="grid", action="append", default=[],
                    metavar="KEY=V1,V2,...",
                    help="a parameter to vary and its values, e.g. pe.mac_lanes=4,8,16 "
                         "(repeatable; the sweep is their cartesian product plus the base)")
    sw.add_argument("--config", metavar="SWEEP_YAML",
                    help="sweep YAML: arch, traces, grid, points, engine, steps")
    sw.add_argument("--out", required=True, metavar="DIR", help="results directory")
    sw.add_argument("--jobs", type=int, metavar="N",
                    help="worker processes of the local pool (default: the CPU count)")
    sw.add_argument("--scheduler", metavar="ADDRESS",
                    help="run on this Dask scheduler (e.g. tcp://host:8786) instead")
    sw.add_argument("--engine", choices=("fast", "detailed"),
                    help="engine of every point (default: fast, or the YAML's)")
    sw.add_argument("--steps", type=int, metavar="N",
                    help="simulate only the first N time steps of each trace")
    sw.add_argument("--retry-failed", action="store_true",
                    help="rerun points recorded as failed (default: keep them)")
    sw.add_argument("--force", action="store_true",
                    help="adopt this sweep in a directory that holds another sweep's results")
    sw.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                    help="import a module or .py file that registers custom components")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(handler=cmd_sweep)

    pl = subparsers.add_parser("plot-sweep", help="plot a sweep: Pareto front and sensitivity")
    pl.add_argument("dir", metavar="DIR", help="a directory written by `hwsim sweep --out`")
    pl.add_argument("--x", default="time_ms_per_step", metavar="COL",
                    help="x column of the Pareto plot (default: time_ms_per_step)")
    pl.add_argument("--y", default="energy_pj", metavar="COL",
                    help="y column of the Pareto plot (default: energy_pj)")
    pl.add_argument("--out", metavar="DIR", help="where to write the PNGs (default: DIR)")
    pl.set_defaults(handler=cmd_plot_sweep)


def spec_from_args(args):
    from .sweep import SweepSpec

    base = SweepSpec.from_yaml(args.config) if args.config else None
    arch, traces = None, []
    if args.inputs:
        arch, traces = args.inputs[0], args.inputs[1:]
        if base is None and not traces:
            raise InputError("sweep: expected ARCH TRACE... (a base architecture and at least "
                             "one trace), or --config SWEEP_YAML")
    elif base is None:
        raise InputError("sweep: expected ARCH TRACE... (a base architecture and at least one "
                         "trace), or --config SWEEP_YAML")
    return SweepSpec.from_cli(args.grid, arch=arch, traces=traces, engine=args.engine,
                              steps=args.steps, plugins=args.plugin, base=base)


def cmd_sweep(args) -> int:
    from .sweep import run_sweep

    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps: expected an integer >= 1, got {args.steps}")
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    spec = spec_from_args(args)
    report = run_sweep(spec, args.out, jobs=args.jobs, scheduler=args.scheduler,
                       retry_failed=args.retry_failed, force=args.force,
                       progress=not args.quiet)
    print(report)
    return 0


def cmd_plot_sweep(args) -> int:
    from .sweep import plot_sweep

    for p in plot_sweep(args.dir, x=args.x, y=args.y, dest=args.out):
        print(f"wrote {p}")
    return 0
