"""Instruction data for mask-agnostic fine-tuning: OpenOrca-layout rows -> (prompt ids, answer ids).

Rows have the OpenOrca columns `system_prompt`, `question`, `response` ([P1] fine-tunes on a
subset of OpenOrca). Sources: a local `.jsonl` (one object per line), `.json` (a JSON list of
objects, or one object per line) or `.parquet` file,
a `datasets` dataset name (imported lazily; needs the `data` extra and the Hub or its cache), or
`synthetic` (the package's own instruction set for the embedded models, `synthetic_data.py`).

Prompt: the tokenizer's chat template (system turn if any, then the user turn, then the
assistant prefix) when `prompt_format` is "chat"; else the plain text
`system_prompt + "\\n\\n" + question + "\\n\\n"` (system part only when non-empty). "auto" picks
chat for `variant="instruct"` models whose tokenizer has a template, plain otherwise.
Answer: the response's tokens followed by one EOS (the model learns where an answer ends).

Used by `masktax finetune` (pairs -> two mask-agnostic views each, `ma_views.py`) and by
`masktax train-sm --data` (pairs -> `instruction_batch`, LLaDA's SFT rows).

Length rule with L = max_context (reported as `data_stats.json` in the run dir):
- kept: len(prompt) + len(answer) <= L;
- truncated: the prompt leaves room for at least `min_answer_tokens` answer tokens: the answer is
  cut to L − len(prompt) tokens (and then carries no EOS: it does not end there);
- dropped: the prompt alone leaves less room than that, or the response is empty.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from masktax.errors import MasktaxError
from masktax.results.store import atomic_write_text

COLUMNS = ("system_prompt", "question", "response")


@dataclass(frozen=True)
class Pair:
    prompt: tuple[int, ...]
    answer: tuple[int, ...]


def read_rows(source: str, *, split: str = "train", limit: int | None = None, synthetic_n: int = 4000,
              seed: int = 0) -> list[dict[str, str]]:
    """OpenOrca-layout rows from a file, a `datasets` name or "synthetic" (the first `limit` rows)."""
    if source == "synthetic":
        from masktax.training.finetune.synthetic_data import make_rows

        rows = make_rows(synthetic_n, seed=seed)
    else:
        path = Path(source).expanduser()
        if path.is_file():
            rows = _read_file(path, limit)
        elif path.is_dir():
            raise MasktaxError(f"data '{source}' is a directory; pass a .jsonl, .json or .parquet file")
        elif path.suffix in (".jsonl", ".json", ".parquet") or path.exists():
            raise MasktaxError(f"data file '{source}' does not exist")
        else:
            rows = _read_hub(source, split, limit)
    rows = rows[:limit] if limit is not None else rows
    if not rows:
        raise MasktaxError(f"data source '{source}' has no rows")
    return [_check_row(r, source, i) for i, r in enumerate(rows)]


def _read_file(path: Path, limit: int | None) -> list[dict]:
    """The rows of a local file; a file that is not UTF-8, not JSON (lines) or not Parquet is a
    one-line MasktaxError naming it."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as err:
            raise MasktaxError("reading Parquet needs pyarrow: pip install 'masktax[data]'") from err
        try:
            table = pq.read_table(path, columns=list(COLUMNS))
        except Exception as err:  # pyarrow's errors (not Parquet, missing columns) mean the same to the user
            raise MasktaxError(f"data file '{path}' is not a Parquet file with the columns "
                               f"{', '.join(COLUMNS)} ({str(err).splitlines()[0] if str(err) else err})") from None
        return table.slice(0, limit).to_pylist() if limit is not None else table.to_pylist()
    try:
        if path.suffix == ".json":
            whole = _json_list(path)
            if whole is not None:
                return whole[:limit] if limit is not None else whole
        rows = []
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise MasktaxError(f"'{path}' line {n} is not valid JSON ({err.msg})") from None
                if limit is not None and len(rows) >= limit:
                    break
    except UnicodeDecodeError as err:
        raise MasktaxError(f"data file '{path}' is not UTF-8 text ({err.reason} at byte {err.start})") from None
    return rows


def _json_list(path: Path) -> list | None:
    """The rows of a `.json` file holding one JSON list (or object); None when it is JSON lines."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, list) else [data]


def _read_hub(name: str, split: str, limit: int | None) -> list[dict]:
    try:
        import datasets
    except ImportError as err:
        raise MasktaxError(f"'{name}' is not a file; loading a datasets name needs: pip install 'masktax[data]'") from err
    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as err:  # any hub / cache / name error means the same to the user
        raise MasktaxError(f"could not load dataset '{name}' (split {split}): {err}") from err
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return [dict(r) for r in ds]


def _check_row(row: object, source: str, i: int) -> dict[str, str]:
    if not isinstance(row, dict) or "question" not in row or "response" not in row:
        raise MasktaxError(f"row {i} of '{source}' lacks the OpenOrca columns question and response")
    return {k: str(row.get(k) or "") for k in COLUMNS}


def resolve_prompt_format(fmt: str, tokenizer, variant: str) -> str:
    """"auto" -> "chat" for instruct models whose tokenizer has a chat template, else "plain"."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if fmt == "chat" and not has_template:
        raise MasktaxError("--prompt-format chat needs a tokenizer with a chat template; this one has none")
    if fmt == "auto":
        return "chat" if variant == "instruct" and has_template else "plain"
    return fmt


def prompt_ids(tokenizer, row: dict[str, str], fmt: str) -> list[int]:
    """The prompt's token ids in format "chat" or "plain" (module docstring)."""
    if fmt == "chat":
        messages = ([{"role": "system", "content": row["system_prompt"]}] if row["system_prompt"] else [])
        messages.append({"role": "user", "content": row["question"]})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    system = f"{row['system_prompt']}\n\n" if row["system_prompt"] else ""
    return list(tokenizer(f"{system}{row['question']}\n\n")["input_ids"])


def encode_pairs(
    rows: Iterable[dict[str, str]],
    tokenizer,
    *,
    fmt: str,
    eos_id: int,
    max_context: int,
    min_answer_tokens: int = 16,
) -> tuple[list[Pair], dict[str, int]]:
    """Tokenize rows and apply the length rule; returns the pairs and the kept/truncated/dropped counts."""
    pairs: list[Pair] = []
    stats = {"rows": 0, "kept": 0, "truncated": 0, "dropped_long_prompt": 0, "dropped_empty": 0}
    for row in rows:
        stats["rows"] += 1
        q = prompt_ids(tokenizer, row, fmt)
        a = list(tokenizer(row["response"], add_special_tokens=False)["input_ids"])
        if not a or not q:
            stats["dropped_empty"] += 1
            continue
        a.append(eos_id)
        room = max_context - len(q)
        if len(a) <= room:
            stats["kept"] += 1
        elif room >= min_answer_tokens:
            a = a[:room]
            stats["truncated"] += 1
        else:
            stats["dropped_long_prompt"] += 1
            continue
        pairs.append(Pair(tuple(q), tuple(a)))
    if not pairs:
        raise MasktaxError(f"no usable training pairs: {stats['rows']} rows, all dropped (max_context={max_context})")
    return pairs, stats


def instruction_batch(pairs: Sequence[Pair], *, seed: int, step: int, batch_size: int,
                      eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Step `step`'s pairs (drawn with replacement, seeded by (seed, step): exact resume) as LLaDA SFT rows.

    Returns `(ids, maskable)`, both `[b, l]`: prompt then answer, EOS-padded to the longest row;
    maskable marks the answer and the EOS padding, which (as in LLaDA's SFT) belongs to the
    response: attended, maskable and predicted.
    """
    rng = random.Random(f"{seed}/instructions/{step}")
    picked = [pairs[rng.randrange(len(pairs))] for _ in range(batch_size)]
    width = max(len(p.prompt) + len(p.answer) for p in picked)
    ids = torch.full((batch_size, width), eos_id, dtype=torch.long)  # [b, l]
    maskable = torch.zeros((batch_size, width), dtype=torch.bool)  # [b, l]
    for r, pair in enumerate(picked):
        row = pair.prompt + pair.answer
        ids[r, : len(row)] = torch.tensor(row)
        maskable[r, len(pair.prompt) :] = True
    return ids, maskable


def write_jsonl(rows: Sequence[dict], path: str | Path) -> Path:
    """Write rows as JSON lines (keys in OpenOrca order), atomically (`results.store.atomic_write_text`:
    no temporary file is left on an error). A directory at `path` is refused before anything is written."""
    out = Path(path)
    if out.is_dir():
        raise MasktaxError(f"'{out}' is a directory; pass a file name for the JSONL data (e.g. {out / 'data.jsonl'})")
    if out.parent.exists() and not out.parent.is_dir():
        raise MasktaxError(f"'{out.parent}' is a file, not a directory")
    text = "".join(json.dumps({k: r.get(k, "") for k in COLUMNS}, ensure_ascii=False) + "\n" for r in rows)
    atomic_write_text(out, text)
    return out
