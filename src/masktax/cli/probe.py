"""`masktax probe PROBE --model M [--model M2 ...] --out DIR [flags]`: one sub-command per probe.

    masktax probe masks --model embedded-mdlm --model embedded-mdlm --finetune none --finetune runs/ft/ce_tv --out runs/masks

Each sub-command's flags are `RunConfig`'s fields (every probe) and the probe's `Options` fields
(`masktax probe unmask --help`). `--finetune RUN_DIR` (repeatable) pairs with `--model` in order: a
fine-tuning run (`masktax finetune`, `masktax train-sm`) applied to that model; `none` skips one.
`--adapter` is its 0.1 name, accepted for one release with a notice.
"""

from __future__ import annotations

import inspect
import sys
from types import ModuleType

import typer

from masktax.cli.flags import dataclass_parameters, given, with_parameters
from masktax.errors import MasktaxError
from masktax.probes import PROBES, RunConfig, run_probe
from masktax.probes.shard import is_main_process

probe_app = typer.Typer(help="Run a probe on one or more models; writes summary.json, plots/ and report.md under --out.",
                        no_args_is_help=True)
OLD_FLAG = inspect.Parameter(
    "adapter", inspect.Parameter.KEYWORD_ONLY, annotation=list[str] | None,
    default=typer.Option(None, "--adapter", hidden=True, help="Renamed --finetune (accepted for one release)."),
)


def run_from_flags(probe: ModuleType, values: dict) -> None:
    """Build the run's config and the probe's options from the flags, run it, say where the report is."""
    old = values.pop("adapter", None)
    if old:
        if values.get("finetunes"):
            raise MasktaxError("give --finetune only (--adapter is its old name)")
        print("masktax: --adapter is now --finetune; --adapter goes away in the next release", file=sys.stderr)
        values["finetunes"] = old
    cfg = RunConfig(**given(values, RunConfig))
    options = probe.Options(**given(values, probe.Options))
    root = run_probe(probe, cfg, options)
    if is_main_process():  # a sharded run (torchrun, accelerate launch): process 0 speaks for all
        print(f"masktax: {probe.NAME} done; report at {root / 'report.md'}")


def _command(probe: ModuleType):
    def command(**values) -> None:
        run_from_flags(probe, values)

    command.__doc__ = probe.DESCRIPTION[:1].upper() + probe.DESCRIPTION[1:] + "."
    return with_parameters(command, [*dataclass_parameters(RunConfig, probe.Options), OLD_FLAG])


for _name, _probe in PROBES.items():
    probe_app.command(_name)(_command(_probe))


def register(app: typer.Typer) -> None:
    app.add_typer(probe_app, name="probe")
