"""The run directory: config, per-item results appended in durable chunks, atomic outputs, resume.

Layout (docs/DESIGN.md): `config.json`, `env.json`, `items.jsonl`, `summary.json`, `summary.csv`,
`plots/*.png`, `report.md`. Every file except `items.jsonl` is written whole to a temporary file
and moved into place with `os.replace`, so a crash never leaves a half-written file. `items.jsonl`
is appended one chunk (one scored batch) at a time, flushed and fsynced; if a crash tears the last
line, reopening drops it and the next run recomputes those items.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from masktax.errors import MasktaxError

ITEMS = "items.jsonl"
CONFIG = "config.json"
ENV = "env.json"
NOTICE = "NOTICE.md"  # optional banner shown at the top of a run's report (the demo's stand-in warning)
SHARDS = "shards"  # the per-process records of a sharded run not merged yet (results/shards.py)
# Config fields that may differ between runs sharing a directory: the model list grows when a model
# is added; the progress bar changes nothing. The batch size IS part of a run's identity: batching
# changes the order of floating-point sums, so p(answer) and entropy differ in the 8th digit across
# batch sizes, and a run resumed with another one would not equal an uninterrupted run byte for byte.
NOT_IDENTITY = ("models", "out", "progress")
# Identity fields added after runs were made, with the value a run dir without them was computed with:
# prefix_cache (a causal model's shared prompt prefix run once, which moves its last bits).
ADDED_LATER = {"prefix_cache": False}


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode(path))  # mkstemp makes it 0600: give it what open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _file_mode(path: Path) -> int:
    """The mode a file written at `path` gets: the existing file's, else 0666 less the umask (as `open`)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


@functools.cache
def _umask() -> int:
    """The process umask (read once: reading it means setting it for an instant)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: str | os.PathLike, obj: object, *, sort_keys: bool = False, allow_nan: bool = False
) -> None:
    """`obj` as indented JSON; `sort_keys` and `allow_nan` as in `json.dumps` (training runs sort
    their keys, and a diverged run's NaN loss is written rather than lost)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, allow_nan=allow_nan) + "\n")


def parse_json_file(path: str | os.PathLike, label: str) -> Any:
    """The JSON value in a file; a file that is not UTF-8 or not JSON is one MasktaxError that starts
    with `label` (how the caller names the file, e.g. "config 'c.json'")."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise MasktaxError(f"{label} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise MasktaxError(f"{label} is not valid JSON ({err.msg} at line {err.lineno})") from None


def read_json(path: str | os.PathLike) -> dict:
    """A run dir's JSON file (config.json, env.json, summary.json)."""
    if not Path(path).exists():
        raise MasktaxError(f"{path} does not exist; is this a masktax run directory?")
    return parse_json_file(path, str(path))


def read_config(run_dir: str | os.PathLike) -> dict:
    """A run dir's config.json; MasktaxError when it is missing or not a masktax run config (an object)."""
    path = Path(run_dir) / CONFIG
    config = read_json(path)
    if not isinstance(config, dict):
        raise MasktaxError(f"{path} is not a masktax run config; pass another --out")
    return config


def read_env(run_dir: str | os.PathLike) -> dict:
    """A run dir's env.json ({} when it has none)."""
    path = Path(run_dir) / ENV
    return read_json(path) if path.is_file() else {}


def has_items(run_dir: str | os.PathLike) -> bool:
    """Whether a run dir holds at least one complete item line (in items.jsonl or an unmerged shard)."""
    paths = [Path(run_dir) / ITEMS, *sorted((Path(run_dir) / SHARDS).glob("*.jsonl"))]
    return any(path.is_file() and b"\n" in path.read_bytes() for path in paths)


def item_key(record: dict) -> str:
    """The identity of a scored item: (model, series, x, dataset, index) as a JSON string."""
    return json.dumps([record["model"], record["series"], record["x"], record["dataset"], record["index"]])


def config_diff(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two configs, ignoring the fields in NOT_IDENTITY; a field of
    ADDED_LATER missing from `old` (a run dir of an earlier version) counts as the value it had."""
    old = {**{k: v for k, v in ADDED_LATER.items() if k in new}, **old}
    fields = sorted((set(old) | set(new)) - set(NOT_IDENTITY))
    return [
        f"{k}: {old.get(k)!r} there vs {new.get(k)!r} here" for k in fields if old.get(k) != new.get(k)
    ]


def open_run_dir(
    root: str | os.PathLike,
    config: dict,
    *,
    free: Iterable[str] = (),
    normalize: Callable[[dict], dict] | None = None,
) -> None:
    """Create `root` with config.json, or reopen it to resume when it holds the same config.

    For runs that resume as a whole (training), where `RunStore` resumes item by item. Fields in
    `free` may differ (config.json then records the new values); `normalize` maps the stored config
    first (through the config class, so fields added since the run began take their defaults).
    config.json is written with sorted keys. Another config there -> MasktaxError naming the fields.
    """
    root, free = Path(root), set(free)
    root.mkdir(parents=True, exist_ok=True)
    path = root / CONFIG
    if path.is_file():
        old = read_json(path)
        if normalize is not None:
            old = json.loads(json.dumps(normalize(old)))
        a = {k: v for k, v in old.items() if k not in free}
        b = {k: v for k, v in json.loads(json.dumps(config)).items() if k not in free}
        if a != b:
            missing = object()
            diff = sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))
            raise MasktaxError(f"'{root}' holds a run of another config (differs in {', '.join(diff)}); use another --out")
    atomic_write_json(path, config, sort_keys=True, allow_nan=True)


def repair_items(path: Path) -> None:
    """Drop a torn last line (a crash mid-append); raise on a corrupt line anywhere else."""
    if not path.exists():
        return
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # bytes after the last newline are a torn chunk
    if end != len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
        data = data[:end]
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError:
            raise MasktaxError(
                f"{path} line {lineno} is corrupt; delete the run directory or pass another --out"
            ) from None


def read_items(run_dir: str | os.PathLike) -> Iterator[dict]:
    """Every stored item record, in the order written (a torn last line is skipped)."""
    return read_records(Path(run_dir) / ITEMS)


def read_records(path: Path) -> Iterator[dict]:
    """The item records of one JSONL file (items.jsonl or a shard's), in the order written."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                return
            if line.strip():
                try:
                    yield json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise MasktaxError(f"{path} line {lineno} is corrupt; delete the run directory or pass another --out") from None


class RunStore:
    """An open run directory: knows its config and which items are finished, appends new ones."""

    def __init__(self, root: Path, config: dict) -> None:
        self.root = root
        self.config = config
        self.items = root / ITEMS  # where `append` writes (a shard's own file in a sharded run)
        self._done: set[str] = {item_key(r) for r in read_items(root)}

    @classmethod
    def open(cls, root: str | os.PathLike, config: dict) -> RunStore:
        """Create `root` or reopen it for resume; a directory holding another config is an error.

        config.json lists only the models already in the run; `add_model` adds one once it has
        loaded, so rerunning with a new model adds it to the same run.
        """
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise MasktaxError(f"--out {root} is a file, not a directory")
        cfg_path = root / CONFIG
        if cfg_path.exists():
            old = read_config(root)
            diff = config_diff(old, config)
            if diff and not has_items(root):
                old = {}  # a start that failed before scoring anything: the corrected command replaces it
                (root / ENV).unlink(missing_ok=True)
            elif diff:
                raise MasktaxError(
                    f"{root} holds a run with another config ({'; '.join(diff)}); "
                    "pass another --out or rerun with the same settings to resume"
                )
            config = {**config, "models": list(old.get("models", []))}
        elif root.exists() and any(root.iterdir()):
            raise MasktaxError(f"{root} is not empty and holds no masktax run; pass another --out")
        else:
            config = {**config, "models": []}
        root.mkdir(parents=True, exist_ok=True)
        repair_items(root / ITEMS)
        atomic_write_json(cfg_path, config)
        return cls(root, config)

    def add_model(self, name: str) -> None:
        """Record that `name` is part of this run (rewrites config.json)."""
        if name not in self.config["models"]:
            self.config = {**self.config, "models": [*self.config["models"], name]}
            atomic_write_json(self.root / CONFIG, self.config)

    def is_done(self, key: str) -> bool:
        return key in self._done

    def done_count(self) -> int:
        return len(self._done)

    def append(self, records: Iterable[dict]) -> None:
        """Append one chunk of records durably (write, flush, fsync) and mark them finished."""
        records = [r for r in records if item_key(r) not in self._done]
        if not records:
            return
        chunk = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
        with open(self.items, "a", encoding="utf-8") as f:
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        self._done.update(item_key(r) for r in records)
