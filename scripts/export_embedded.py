"""Copy a pretraining run's final/ into the package as a shipped embedded checkpoint.

    python scripts/export_embedded.py runs/pretrain/mdlm embedded-mdlm [--hardware "1x H100"] [--command "..."] \
        [--suite-run runs/eval/mdlm]     # a `masktax probe accuracy --model RUN/final` run, recorded with the weights
        [--previous DIR]                 # RUN continued a shipped checkpoint: keep that phase's record

Writes src/masktax/embedded/weights/<NAME>/ = final/ (config.json, model.safetensors, tokenizer
files) plus training.json (run config, steps, tokens, wall time, curriculum advances, last gate
accuracy, environment, hardware, command) and TRAINING.md (the same, for people). A run that
continues an earlier phase (`init_from` a shipped checkpoint or its run) names that checkpoint with
`--previous`: its training.json is nested as `previous_phase`, and TRAINING.md lists every phase
and the totals over them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

NAMES = ("embedded-mdlm", "embedded-ar", "embedded-mdlm-dream")
ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "masktax" / "embedded" / "weights"
SKIP = ("training_state.json",)


def suite_result(probe_run: Path) -> dict:
    """The one-mask / next-token accuracy of an accuracy-probe run dir (summary.json) on the export."""
    summary = json.loads((probe_run / "summary.json").read_text())
    (model, points), *rest = summary["models"].items()
    if rest or len(points) != 1:
        raise SystemExit(f"error: '{probe_run}' should be a `masktax probe accuracy` run of one model")
    point = points[0]
    config = json.loads((probe_run / "config.json").read_text())
    return {"accuracy": point["accuracy"], "ci95": point.get("ci95"), "n_items": point.get("n_items"),
            "n_datasets": point.get("n_datasets"), "probe_run": str(probe_run), "probe_config": config,
            "note": "mean over the probe datasets of one-mask (MDLM) / next-token (AR) accuracy; 95% t-interval "
                    "over datasets"}


def read_previous(directory: Path) -> dict:
    """The training.json of the checkpoint a run continued (read before the export replaces it)."""
    path = directory / "training.json"
    if not path.is_file():
        raise SystemExit(f"error: '{directory}' holds no training.json (a shipped embedded checkpoint)")
    return json.loads(path.read_text())


def phases(info: dict) -> list[dict]:
    """Every phase of a checkpoint's training, oldest first (previous_phase chain, then this one)."""
    chain = []
    while info is not None:
        chain.append(info)
        info = info.get("previous_phase")
    return chain[::-1]


def phase_lines(info: dict) -> str:
    """TRAINING.md's list of phases and totals; empty for a single-phase checkpoint."""
    chain = phases(info)
    if len(chain) < 2:
        return ""
    lines = ["", "Phases (each continues the previous one's weights):", ""]
    for i, ph in enumerate(chain, 1):
        lines.append(f"{i}. {ph['config']['name']} ({ph['source_run']}): {ph['steps']} steps, {ph['tokens']} tokens, "
                     f"{ph['wall_seconds'] / 60:.1f} min; `{ph['command']}`")
    total = (sum(p["steps"] for p in chain), sum(p["tokens"] for p in chain), sum(p["wall_seconds"] for p in chain))
    lines += ["", f"Total over the phases: {total[0]} steps, {total[1]} tokens, {total[2] / 60:.1f} min.", ""]
    return "\n".join(lines)


def export(run: Path, name: str, *, hardware: str, command: str, dest_root: Path = WEIGHTS,
           suite: dict | None = None, previous: dict | None = None) -> Path:
    final = run / "final"
    if not (final / "config.json").is_file() or not (final / "model.safetensors").is_file():
        raise SystemExit(f"error: '{final}' is not a finished run's final/ directory")
    state = json.loads((final / "training_state.json").read_text())
    config = json.loads((run / "config.json").read_text())
    env = json.loads((run / "env.json").read_text()) if (run / "env.json").is_file() else {}
    dest = dest_root / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(final, dest, ignore=shutil.ignore_patterns(*SKIP))
    cur = state["curriculum"]
    stages = [s["name"] for s in config["stages"]]
    info = {
        "name": name, "source_run": str(run), "command": command, "hardware": hardware,
        "steps": state["step"], "tokens": state["tokens"], "wall_seconds": round(state["elapsed_s"], 1),
        "final_stage": state["stage_name"], "last_gate_accuracy": cur["last_gate"],
        "advances": [{"step": s, "stage": stages[k]} for s, k in cur["advances"]],
        "env": env, "config": config,
    }
    if suite is not None:
        info["suite_accuracy"] = suite
    if previous is not None:
        info["previous_phase"] = previous
    (dest / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    adv = ", ".join(f"{a['stage']} at step {a['step']}" for a in info["advances"]) or "none"
    gate = "n/a" if cur["last_gate"] is None else f"{cur['last_gate']:.3f}"
    (dest / "TRAINING.md").write_text(
        f"# {name}\n\n"
        f"Trained with masktax's `pretrain` on the few-shot episode corpus (see docs/embedded.md).\n\n"
        f"- objective: {config['objective']}{' (shifted logits, Dream-like)' if config.get('shift') else ''}; "
        f"weighting {config['weighting']}, answer-focused share {config['answer_focus_share']}, "
        f"EOS tail {config['eos_tail']}\n"
        f"- model: {json.dumps(config['model'])}\n"
        f"- steps {state['step']}, tokens {state['tokens']}, wall time {state['elapsed_s'] / 60:.1f} min\n"
        f"- curriculum: final stage {state['stage_name']}, last gate accuracy {gate}; advances: {adv}\n"
        f"- hardware: {hardware}; torch {env.get('torch', '?')}, device {env.get('device', '?')}\n"
        f"- command: `{command}`\n"
        + ("" if suite is None else
           f"- probe-suite accuracy: **{100 * suite['accuracy']:.1f}%"
           + ("" if not suite.get("ci95") else f" [{100 * suite['ci95'][0]:.1f}, {100 * suite['ci95'][1]:.1f}]")
           + f"** ({suite['n_items']} items over {suite['n_datasets']} datasets; run {suite['probe_run']})\n")
        + phase_lines(info)
        + "\nFull record: training.json.\n"
    )
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run directory (holds config.json and final/)")
    ap.add_argument("name", help=f"checkpoint name, usually one of {', '.join(NAMES)}")
    ap.add_argument("--hardware", default="unknown", help='e.g. "1x NVIDIA H100 80GB, shared by 6 runs"')
    ap.add_argument("--command", default="", help="the command that trained the run")
    ap.add_argument("--dest-root", type=Path, default=WEIGHTS)
    ap.add_argument("--suite-run", type=Path, default=None,
                    help="a `masktax probe accuracy` run dir of the final/ weights, recorded with them")
    ap.add_argument("--previous", type=Path, default=None,
                    help="the shipped checkpoint dir this run continued (its training.json is kept as a phase)")
    a = ap.parse_args(argv)
    suite = suite_result(a.suite_run) if a.suite_run is not None else None
    previous = read_previous(a.previous) if a.previous is not None else None
    dest = export(a.run, a.name, hardware=a.hardware, command=a.command, dest_root=a.dest_root, suite=suite,
                  previous=previous)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    print(f"{dest} ({size / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
