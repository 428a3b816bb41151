"""The batched scoring engine shared by the probes: one greedy forward pass per item.

An item is a prompt whose answer position holds a mask (MDLM), a canvas token (uniform-noise
model) or anything at all (AR: the position after `Answer:[` is invisible to a causal model).
`LoadedModel.logits` is aligned (position i predicts token i) for every family, so the score is read
at `answer_pos` whatever the model. Per item we record, from the answer position's logits z:

    p = softmax(z) (float32, full vocabulary)     pred = argmax_v z_v
    correct = [pred == answer_id]                 (primary score, exact match, greedy)
    choice = argmax over z[A], z[B], z[C]         (restricted to the three letters)
    p_answer = p[answer_id]   confidence = max_v p_v   entropy = -sum_v p_v log p_v (nats)

Batching sorts items by length and groups similar lengths, right-padded under `attention_mask`;
models that ignore the attention mask (`honours_attention_mask=False`) only batch equal lengths.

A causal model (`prefix_cache=True`, the probes' default) needs nothing after the row it reads, and
items that share their start (a dataset's in-context examples) run that shared prefix once: its keys
and values are reused by each item's own suffix (`masktax.models.prefix`; exact in arithmetic, the
last bits differ from one full pass).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from masktax.errors import MasktaxError
from masktax.models.batching import auto_batch_size
from masktax.models.loaded import LoadedModel
from masktax.models.prefix import SharedPrefix, run_prefix, takes_prefix_cache
from masktax.tasks.suite import LETTERS

CPU_TOKEN_BUDGET = 16_384  # tokens per forward on CPU when --batch-size auto
LOGITS_BYTES_CPU = 2**31  # at most 2 GiB of float32 logits per forward on CPU
PAD_SLACK = 1.25  # a padded batch holds lengths within 25% (+8 tokens) of its shortest item
SHARED_BATCHES = 20_000  # batches' columns a `shared_scores` block keeps (the newest)
MIN_SHARED = 64  # tokens prompts must share before a causal model runs them once (the prefix cache)


@dataclass(frozen=True)
class ProbeItem:
    """One prompt to score. The key (model, series, x, dataset, index) identifies it in a run."""

    model: str
    series: str
    x: int | str
    dataset: str
    index: int
    ids: tuple[int, ...]
    answer_pos: int
    answer_id: int
    letter_ids: tuple[int, int, int]
    suffix: str = "one_mask"

    @property
    def key(self) -> str:
        return json.dumps([self.model, self.series, self.x, self.dataset, self.index])


def token_budget(lm: LoadedModel, max_len: int) -> int:
    """Tokens per forward for `--batch-size auto`.

    On accelerators: masktax.models.auto_batch_size (from free memory) rows of the longest prompt.
    On CPU: CPU_TOKEN_BUDGET, capped so the [b, l, V] logits stay under LOGITS_BYTES_CPU where the
    model computes logits at every position (with `LoadedModel.logits_at` only one row per sequence). (Small
    models gain ~10x from batching on CPU: forwards of 1 vs 16 1000-token rows of a 2-layer model
    ran at 6.5 vs 68 items/s on 2 cores; big models are compute-bound, where the cap keeps memory sane.)
    """
    few_logits = lm.extra.get("logits_to_keep", True)  # LoadedModel.logits_at (uniform-noise models too)
    if lm.device.type == "cpu":
        try:
            vocab = lm.embedding_weight().shape[0]
        except (AttributeError, NotImplementedError):  # a model without input embeddings
            return CPU_TOKEN_BUDGET
        if few_logits:
            return max(max_len, CPU_TOKEN_BUDGET)
        return max(max_len, min(CPU_TOKEN_BUDGET, LOGITS_BYTES_CPU // (4 * vocab)))
    return max(1, int(auto_batch_size(lm, max_len, full_logits=not few_logits))) * max_len


def plan_batches(
    lengths: Sequence[int], *, max_rows: int | None, max_tokens: int | None, pad: bool, whole: bool = False
) -> list[list[int]]:
    """Group item indices into batches of similar length (deterministic: a function of `lengths`).

    Equal lengths are batched first, unpadded (attention kernels run several times faster without
    a padding mask); with pad=True the leftovers (runs shorter than half a batch) are then grouped
    with lengths within 25% (+8 tokens) of each other, right-padded. A batch never exceeds
    `max_rows` rows nor `max_tokens` padded tokens (an item longer than the budget goes alone).
    whole=True: the rows the token budget allows are rounded down to a power of two, so a cell of
    the suite (16 x n items of one length) splits into whole batches that start at the same items
    whatever else is planned with it (no padded leftovers, and the same batches in every probe that
    scores the cell: `shared_scores`).
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))

    def cap(length: int) -> int:
        rows = max_rows if max_rows is not None else len(lengths)
        budget = max_tokens // length if max_tokens is not None else rows
        if whole and max_tokens is not None and budget > 1:  # an explicit --batch-size stays as given
            budget = 1 << (budget.bit_length() - 1)  # [1, 2, 4, 8, ...]
        return max(1, min(rows, budget))

    batches: list[list[int]] = []
    leftovers: list[int] = []
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and lengths[order[end]] == lengths[order[start]]:
            end += 1
        run, size = order[start:end], cap(lengths[order[start]])
        for k in range(0, len(run), size):
            part = run[k : k + size]
            if pad and len(part) < size and 2 * len(part) < size:
                leftovers += part
            else:
                batches.append(part)
        start = end
    current: list[int] = []
    for i in leftovers:
        if current:
            shortest, longest = lengths[current[0]], lengths[i]
            if longest > shortest * PAD_SLACK + 8 or len(current) + 1 > cap(longest):
                batches.append(current)
                current = []
        current.append(i)
    if current:
        batches.append(current)
    return sorted(batches, key=lambda b: (lengths[b[0]], b[0]))


_SHARED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("masktax_shared_scores", default=None)


@contextlib.contextmanager
def shared_scores() -> Iterator[None]:
    """Within this block a batch already scored (the same model, dtype and device; the same items' ids,
    answer positions, answers and letters; the same shared prefix) is not computed again: its columns
    are reused. Exact: the same batch on the same model computes the same bits. `masktax demo` and
    `masktax card` run their probes inside one: filler x = 0 scores the prompts of masks x = 0, and
    query-position's `right` those of accuracy (a hit needs the same batch: rows aligned alike)."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def batch_key(lm: LoadedModel, prefix: int, items: Sequence[ProbeItem]) -> str:
    """What identifies one batch's computation (see `shared_scores`)."""
    h = hashlib.sha256(repr((lm.name, lm.extra.get("path"), lm.extra.get("revision"), str(lm.dtype),
                             str(lm.device), prefix)).encode())
    for it in items:
        h.update(repr((it.ids, it.answer_pos, it.answer_id, it.letter_ids)).encode())
    return h.hexdigest()


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    n = min(len(a), len(b))
    differ = np.asarray(a[:n]) != np.asarray(b[:n])  # [n]
    return int(differ.argmax()) if differ.any() else n


def shared_prefix_groups(seqs: Sequence[Sequence[int]], *, min_shared: int = MIN_SHARED) -> list[tuple[int, list[int]]]:
    """Consecutive sequences that share a long start, as (shared length p, indices): p is below every
    member's length (each keeps a suffix to run). Sequences sharing fewer than `min_shared` tokens
    with their neighbours come back alone with p = 0.

    A sequence joins the group before it when it shares at least max(min_shared, p / 4) tokens with
    the group's last member, p being the group's shared length so far (a lone sequence: its length
    - 1): a (cell, dataset)'s items share their in-context examples, and a short chat preamble shared
    with the next dataset's items does not merge the two groups into one with a short prefix.
    """
    groups: list[tuple[int, list[int]]] = []
    for i, seq in enumerate(seqs):
        if groups:
            p, members = groups[-1]
            shared = min(p, common_prefix(seqs[members[-1]], seq), len(seq) - 1)
            if shared >= max(min_shared, p / 4):
                groups[-1] = (shared, [*members, i])
                continue
        groups.append((len(seq) - 1, [i]))
    return [(p if len(members) > 1 and p >= min_shared else 0, members) for p, members in groups]


def scored_ids(lm: LoadedModel, item: ProbeItem) -> tuple[int, ...]:
    """A causal model's ids up to the raw row it reads at the answer position (nothing after it counts)."""
    return item.ids[: item.answer_pos if lm.shift else item.answer_pos + 1]


def plan_prefix_batches(
    lm: LoadedModel, items: Sequence[ProbeItem], *, max_rows: int | None, max_tokens: int | None
) -> list[tuple[int, int, list[int]]]:
    """A causal model's batches as (group, shared prefix length p, item indices), deterministic.

    Items sharing a prefix (`shared_prefix_groups` over `scored_ids`) are batched by suffix length
    within their group, as many rows as the full prompts would allow (the rows hold the prefix's keys);
    the others (p = 0, group -1) are planned by `plan_batches` as without the cache. Batches come in
    the order of their first item."""
    seqs = [scored_ids(lm, it) for it in items]
    plan: list[tuple[int, int, list[int]]] = []
    alone: list[int] = []
    for g, (p, members) in enumerate(shared_prefix_groups(seqs)):
        if p == 0:
            alone += members
            continue
        longest = max(len(seqs[i]) for i in members)
        rows = max_rows if max_rows is not None else len(members)
        if max_tokens is not None:
            rows = max(1, min(rows, max_tokens // longest))
        order = sorted(members, key=lambda i: (len(seqs[i]), i))
        plan += [(g, p, order[k : k + rows]) for k in range(0, len(order), rows)]
    lengths = [len(items[i].ids) for i in alone]
    rest = plan_batches(lengths, max_rows=max_rows, max_tokens=max_tokens, pad=lm.honours_attention_mask,
                        whole=lm.device.type == "cpu")
    plan += [(-1, 0, [alone[j] for j in batch]) for batch in rest]
    return sorted(plan, key=lambda entry: min(entry[2]))  # records in the order the items came


def suffix_logits(lm: LoadedModel, shared: SharedPrefix, items: Sequence[ProbeItem]) -> torch.Tensor:
    """The aligned logits at each item's answer position `[b, V]`, from its suffix after `shared`."""
    suffixes = [scored_ids(lm, it)[shared.length :] for it in items]
    width = max(len(s) for s in suffixes)
    pad_id = lm.pad_id if lm.pad_id is not None else (lm.eos_id or 0)
    ids = torch.tensor([(*s, *(pad_id,) * (width - len(s))) for s in suffixes], dtype=torch.long)  # [b, s]
    rows = torch.tensor([len(s) - 1 for s in suffixes])  # [b] the last real row reads the answer
    return shared.logits_at(ids, rows)  # [b, V]


def answer_logits(lm: LoadedModel, items: Sequence[ProbeItem]) -> torch.Tensor:
    """The aligned logits at each item's answer position, `[b, V]` in the model's dtype.

    Rows are right-padded with the pad id under an attention mask; only the answer rows are kept,
    so the full `[b, l, V]` tensor is never converted to float32.
    """
    lengths = [len(it.ids) for it in items]
    width = max(lengths)
    pad_id = lm.pad_id if lm.pad_id is not None else (lm.eos_id or 0)
    ids = torch.tensor([(*it.ids, *(pad_id,) * (width - len(it.ids))) for it in items], dtype=torch.long)  # [b, l]
    attention_mask = None
    if min(lengths) != width:
        attention_mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()  # [b, l]
        attention_mask = attention_mask.to(lm.device)
    ids = ids.to(lm.device)
    pos = torch.tensor([it.answer_pos for it in items], device=lm.device)  # [b]
    return lm.logits_at(ids, pos, attention_mask)  # [b, V]


def score_logits(items: Sequence[ProbeItem], logits: torch.Tensor) -> list[dict]:
    """Item records from answer-position logits `[b, V]` (see the module docstring)."""
    return records_from(items, score_columns(items, logits))


def score_columns(items: Sequence[ProbeItem], logits: torch.Tensor) -> list[tuple]:
    """Per item, what its logits `[b, V]` say: (pred_id, choice index, p_answer, entropy, confidence)."""
    z = logits.float()  # [b, V]
    logp = torch.log_softmax(z, dim=-1)  # [b, V]
    p = logp.exp()  # [b, V]
    entropy = torch.special.entr(p).sum(-1)  # [b]
    confidence, pred = p.max(dim=-1)  # [b], [b]
    letters = torch.tensor([it.letter_ids for it in items], device=z.device)  # [b, 3]
    choice = z.gather(1, letters).argmax(-1)  # [b]
    answers = torch.tensor([it.answer_id for it in items], device=z.device)  # [b]
    p_answer = p.gather(1, answers[:, None])[:, 0]  # [b]
    # one transfer per column (not 5 tensor reads per row); float32 -> Python float is the same either way
    return list(zip(pred.tolist(), choice.tolist(), p_answer.tolist(), entropy.tolist(), confidence.tolist(), strict=True))


def records_from(items: Sequence[ProbeItem], columns: Sequence[tuple]) -> list[dict]:
    """The records of `items` from their `score_columns`."""
    return [
        {
            "model": it.model, "series": it.series, "x": it.x, "dataset": it.dataset, "index": it.index,
            "suffix": it.suffix, "n_tokens": len(it.ids), "answer_pos": it.answer_pos,
            "answer": LETTERS[it.letter_ids.index(it.answer_id)], "answer_id": it.answer_id,
            "pred_id": pred_id, "correct": pred_id == it.answer_id,
            "choice": LETTERS[ch], "choice_correct": it.letter_ids[ch] == it.answer_id,
            "p_answer": _finite(pa), "entropy": _finite(ent), "confidence": _finite(conf),
        }
        for it, (pred_id, ch, pa, ent, conf) in zip(items, columns, strict=True)
    ]


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def check_lengths(lm: LoadedModel, items: Sequence[ProbeItem]) -> None:
    """MasktaxError if any prompt exceeds the model's context length (call before computing)."""
    longest = max(items, key=lambda it: len(it.ids), default=None)
    if longest is not None and len(longest.ids) > lm.max_length:
        raise MasktaxError(
            f"prompt of {len(longest.ids)} tokens ({longest.series} x={longest.x}, {longest.dataset}) exceeds "
            f"the {lm.max_length}-token context of model '{lm.name}'; use a smaller --grid"
        )


def score_items(
    lm: LoadedModel,
    items: Sequence[ProbeItem],
    *,
    batch_size: int | str = "auto",
    skip: Callable[[ProbeItem], bool] | None = None,
    progress: bool = False,
    prefix_cache: bool = False,
) -> Iterator[list[dict]]:
    """Score `items` in batches, yielding each batch's records (in batch order).

    The batch plan depends only on `items`, never on `skip`: a resumed run scores every batch
    exactly as the uninterrupted run did, so its numbers are identical. Batches whose items are all
    skipped are not computed; the others are computed whole and only unskipped records yielded.
    prefix_cache: a causal model runs each shared prefix once (see the module docstring).
    """
    check_lengths(lm, items)
    if not items:
        return
    lengths = [len(it.ids) for it in items]
    if batch_size == "auto":
        max_rows, max_tokens = None, token_budget(lm, max(lengths))
    else:
        max_rows, max_tokens = int(batch_size), None
    if prefix_cache and takes_prefix_cache(lm):
        plan = plan_prefix_batches(lm, items, max_rows=max_rows, max_tokens=max_tokens)
    else:
        pad, whole = lm.honours_attention_mask, lm.device.type == "cpu"  # on a CPU 8 rows run as fast as 13
        plan = [(-1, 0, b) for b in plan_batches(lengths, max_rows=max_rows, max_tokens=max_tokens, pad=pad, whole=whole)]
    todo = [[items[i] for i in b if skip is None or not skip(items[i])] for _, _, b in plan]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(t) for t in todo), desc=f"{lm.name}", unit="item", leave=False)
    shared: tuple[int, SharedPrefix | None] | None = None  # (group, its prefix) of the last cached batch
    scored = _SHARED.get()  # batches already scored in a `shared_scores` block
    try:
        for (group, p, batch), pending in zip(plan, todo, strict=True):
            if not pending:
                continue
            batch_items = [items[i] for i in batch]
            key = batch_key(lm, p, batch_items) if scored is not None else None
            columns = scored.get(key) if scored is not None else None
            if columns is None:
                with torch.inference_mode():
                    if p and (shared is None or shared[0] != group):
                        shared = (group, run_prefix(lm, torch.tensor(batch_items[0].ids[:p])))  # None: run whole
                    if p and shared[1] is not None:
                        logits = suffix_logits(lm, shared[1], batch_items)
                    else:
                        logits = answer_logits(lm, batch_items)
                    columns = score_columns(batch_items, logits)
                if scored is not None:
                    scored[key] = columns
                    if len(scored) > SHARED_BATCHES:
                        del scored[next(iter(scored))]  # the oldest
            wanted = {it.key for it in pending}
            records = records_from(batch_items, columns)
            yield [r for r, it in zip(records, batch_items, strict=True) if it.key in wanted]
            if bar is not None:
                bar.update(len(pending))
    finally:
        if bar is not None:
            bar.close()
