"""`masktax eval`: lm-eval's own evaluator over models x extra masks x tasks, written as a run dir.

    masktax eval --model embedded-mdlm --tasks masktax_suite_next --extra-masks 0,10,50,200 --out runs/eval

For each model (loaded once), each N of `--extra-masks` and each task, `lm_eval.simple_evaluate`
runs the task with `MasktaxLM(extra_masks=N)`; the task's results (every metric with lm-eval's
stderr) are appended to items.jsonl as one record keyed (model, task, N), so a rerun of the same
command resumes at the first unfinished (task, N). Causal models run N = 0 only: appended masks are
invisible to them, so they are the reference line. Then `report.py` writes summary.json,
summary.csv, plots/<task>.png (metric vs masks, error bars = lm-eval's stderr) and report.md.
The probe-suite tasks (`masktax.lmeval.tasks`) are always on the include path, offline.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.lmeval.args import ModelArgs
from masktax.lmeval.model import MasktaxLM
from masktax.lmeval.report import write_outputs
from masktax.lmeval.tasks import TASKS_DIR
from masktax.probes.options import int_list
from masktax.results.env import environment, model_provenance
from masktax.results.store import ENV, RunStore, atomic_write_json, read_env, read_items

SERIES = "lm-eval"


@dataclass(frozen=True)
class EvalConfig:
    """Everything `masktax eval` needs; the CLI builds it, `run` executes it."""

    models: tuple[str, ...]  # card names, embedded names or checkpoint directories
    tasks: tuple[str, ...]  # lm-eval task or group names
    out: str = "runs/eval"  # the run dir (resumable)
    extra_masks: tuple[int, ...] = (0,)  # the mask knob's grid [P1]
    model_args: str = ""  # more `key=value,...` for MasktaxLM (mc_num, sampler, steps, ...)
    include_path: tuple[str, ...] = ()  # more task directories (the probe suite's is always included)
    limit: float | None = None  # documents per task (lm-eval's --limit; for quick runs only)
    num_fewshot: int | None = None
    batch_size: str = "16"  # rows per forward pass, or auto
    device: str = "auto"
    apply_chat_template: bool = False
    fewshot_as_multiturn: bool = False
    gen_kwargs: str | None = None  # lm-eval's --gen_kwargs
    metadata: str | None = None  # JSON for the tasks (e.g. {"suite_n_test": 100})
    seed: int = 0  # lm-eval's seeds and MasktaxLM's
    bootstrap_iters: int = 1000  # lm-eval's stderr of non-mean metrics
    cache_requests: bool = False  # lm-eval's cache of built requests (the same for every N)
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.models:
            raise MasktaxError("give at least one --model")
        if not self.tasks or not all(t.strip() for t in self.tasks):
            raise MasktaxError("give at least one task with --tasks (comma-separated)")
        object.__setattr__(self, "extra_masks", int_list(self.extra_masks, "--extra-masks", minimum=0))
        if self.metadata is not None:
            try:
                meta = json.loads(self.metadata)
            except json.JSONDecodeError as err:
                raise MasktaxError(f"--metadata is not JSON ({err.msg})") from None
            if not isinstance(meta, dict):
                raise MasktaxError("--metadata must be a JSON object")
        for path in self.include_path:
            if not Path(path).is_dir():
                raise MasktaxError(f"--include-path '{path}' is not a directory")
        self.base_args({})  # bad --model-args fail here, before anything loads

    def base_args(self, overrides: dict) -> dict:
        """MasktaxLM's keyword arguments: --model-args, then batch size, device and seed."""
        from lm_eval.utils import simple_parse_args_string

        try:
            parsed = simple_parse_args_string(self.model_args) if self.model_args else {}
        except (ValueError, SyntaxError) as err:
            raise MasktaxError(f"--model-args '{self.model_args}' is not key=value,... ({err})") from None
        for key in ("model", "extra_masks"):
            if key in parsed:
                raise MasktaxError(f"--model-args may not set {key}; use --{key.replace('_', '-')}")
        kwargs = {"batch_size": self.batch_size, "device": self.device, "seed": self.seed, **parsed, **overrides}
        ModelArgs.from_kwargs({"model": "-", **kwargs})
        return kwargs

    def identity(self) -> dict:
        """config.json: what makes two runs the same run (not models, out, progress)."""
        d = asdict(self)
        d.pop("progress")
        return json.loads(json.dumps({"command": "eval", **d}))  # tuples as lists, as config.json stores them


def task_manager(cfg: EvalConfig):
    """lm-eval's TaskManager over the probe suite and --include-path, plus lm-eval's own tasks when a
    task is not among those (indexing lm-eval's thousands of YAML files takes seconds)."""
    from lm_eval.tasks import TaskManager

    meta = json.loads(cfg.metadata) if cfg.metadata else None
    paths = [str(TASKS_DIR), *cfg.include_path]
    tm = TaskManager(include_path=paths, include_defaults=False, metadata=meta)
    if all(t in tm.all_tasks for t in cfg.tasks):
        return tm
    return TaskManager(include_path=paths, metadata=meta)


def record_key(model: str, task: str, n: int) -> tuple:
    return (model, SERIES, n, task, 0)


def evaluate_one(cfg: EvalConfig, lm: MasktaxLM, task: str, tm) -> dict:
    """One task at the lm's current extra masks: lm-eval's results for it (and its subtasks)."""
    import lm_eval

    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(
        model=lm, tasks=[task], task_manager=tm, limit=cfg.limit, num_fewshot=cfg.num_fewshot,
        apply_chat_template=cfg.apply_chat_template, fewshot_as_multiturn=cfg.fewshot_as_multiturn,
        gen_kwargs=cfg.gen_kwargs, log_samples=False, bootstrap_iters=cfg.bootstrap_iters,
        cache_requests=cfg.cache_requests, random_seed=cfg.seed, numpy_random_seed=cfg.seed,
        torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed,
        metadata=json.loads(cfg.metadata) if cfg.metadata else None,
    )
    seconds = time.perf_counter() - t0
    if out is None:  # a rank other than 0
        return {}
    return {"results": clean(out.get("results", {})), "groups": clean(out.get("groups", {})),
            "n_samples": clean(out.get("n-samples", {})), "seconds": round(seconds, 3)}


def clean(obj):
    """lm-eval's results as strict JSON: NaN / inf and the "N/A" stderr become None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def run(cfg: EvalConfig) -> Path:
    """Evaluate every (model, N, task) not already in `cfg.out`, then write the outputs; returns the dir."""
    tm = task_manager(cfg)
    missing = [t for t in cfg.tasks if t not in tm.all_tasks]
    if missing:
        raise MasktaxError(f"unknown lm-eval task(s) {', '.join(missing)}; list them with `lm_eval ls tasks` "
                           f"(the probe suite: masktax_suite_next, masktax_suite_mc)")
    store = RunStore.open(cfg.out, cfg.identity())
    env = read_env(cfg.out) or environment(device=cfg.device, dtype="per model", seed=cfg.seed)
    env["lm_eval"] = _lm_eval_version()
    env["planned_model_count"] = len(cfg.models)
    env.setdefault("models", {})
    for name in cfg.models:
        known_ar = env["models"].get(name, {}).get("kind") == "ar"  # from an earlier start of this run
        if all(store.is_done(json.dumps(list(record_key(name, t, n))))
               for n in ((0,) if known_ar else cfg.extra_masks) for t in cfg.tasks):
            continue  # finished: not even loaded
        lm = MasktaxLM(**cfg.base_args({"model": name}))
        store.add_model(name)
        grid = cfg.extra_masks if lm.lm.kind != "ar" else (0,)
        env["models"][name] = {**model_provenance(lm.lm), "format": "lm-eval",
                               "expected_items": len(grid) * len(cfg.tasks)}
        atomic_write_json(Path(cfg.out) / ENV, env)
        for n in grid:
            lm.set_extra_masks(n)
            for task in cfg.tasks:
                key = json.dumps(list(record_key(name, task, n)))
                if store.is_done(key):
                    continue
                if cfg.progress:
                    print(f"masktax eval: {name}, {task}, extra masks {n}", flush=True)
                result = evaluate_one(cfg, lm, task, tm)
                if result:
                    model, series, x, dataset, index = record_key(name, task, n)
                    store.append([{"model": model, "series": series, "x": x, "dataset": dataset, "index": index,
                                   "task": task, "extra_masks": n, **result}])
    write_outputs(Path(cfg.out), store.config, env, list(read_items(cfg.out)))
    return Path(cfg.out)


def _lm_eval_version() -> str:
    import lm_eval

    return lm_eval.__version__
