"""Log-likelihoods for lm-eval requests: exact for causal LMs, LLaDA's Monte Carlo bound for MDLMs.

A request is (context ids c, continuation ids a), |a| = L. Causal (AR) models: the exact

    log p(a | c) = sum_i log p(a_i | c, a_<i),   is_greedy = [argmax_v p(v | c, a_<i) == a_i for every i]

MDLMs ([LLaDA, Nie et al. 2025, eq. 6]; the mask bound): draw k in 1..L, mask k continuation tokens
chosen uniformly (the context is never masked), and score only the masked ones:

    log p(a | c) >= E_k E_M [ (L / k) * sum_{i in M} log p(a_i | c, a with M masked) ]

Each request gets `mc_num` rows; the masked counts of its rows are spread evenly over 1..L from a
random start (stratified, as LLaDA's `_forward_process` does; `masked_counts`), so the estimate has low variance and
converges to the exact bound (`exact_mask_bound`, by enumeration) as mc_num grows. The random draws
come from a generator seeded by (seed, the request's tokens): the numbers do not depend on batching,
request order or which process scores the request. `extra_masks` N appends N masks after the
continuation (never scored): [P1]'s mask knob on any loglikelihood task; the draws are the same for
every N, so a sweep over N compares like with like.

MDLM is_greedy: greedy decoding of the L masked continuation positions, one per step, the most
confident first (LLaDA's low-confidence remasking with L steps), reproduces the continuation. A
single-token continuation is one forward pass (argmax == target); longer ones stop at the first
wrong commit. Rows of different lengths are right-padded under an attention mask and batched with
`masktax.probes.engine.plan_batches` (equal lengths unpadded first).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from masktax.models.loaded import LoadedModel
from masktax.probes.engine import plan_batches

Request = tuple[Sequence[int], Sequence[int]]  # (context ids, continuation ids)


@dataclass(frozen=True)
class RowScore:
    """Per scored position of one row: log p(target), the argmax token and its probability."""

    logp: torch.Tensor  # [n] float32
    pred: torch.Tensor  # [n] long
    conf: torch.Tensor  # [n] float32


def pad_id_of(lm: LoadedModel) -> int:
    return lm.pad_id if lm.pad_id is not None else (lm.eos_id or 0)


@torch.no_grad()
def score_rows(
    lm: LoadedModel,
    rows: Sequence[Sequence[int]],
    positions: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    *,
    batch_size: int | None,
    max_tokens: int | None = None,
    uncond: Sequence[Sequence[int]] | None = None,
    cfg: float = 0.0,
) -> list[RowScore]:
    """Score `targets[r]` at `positions[r]` of each row `rows[r]` (aligned logits: position i predicts
    token i). Batches of at most `batch_size` rows (and `max_tokens` padded tokens), right-padded.
    With `uncond` (rows of the same lengths, the prompt masked) the logits are classifier-free guided:
    un + (cfg + 1) * (cond - un), LLaDA's likelihood guidance."""
    lengths = [len(r) for r in rows]
    plan = plan_batches(lengths, max_rows=batch_size, max_tokens=max_tokens, pad=lm.honours_attention_mask)
    out: list[RowScore | None] = [None] * len(rows)
    pad = pad_id_of(lm)
    for batch in plan:
        width = max(lengths[i] for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)  # [b, l]
        for r, i in enumerate(batch):
            ids[r, : lengths[i]] = torch.as_tensor(list(rows[i]), dtype=torch.long)
        attn = None
        if any(lengths[i] != width for i in batch):
            attn = (torch.arange(width)[None, :] < torch.tensor([lengths[i] for i in batch])[:, None]).long()  # [b, l]
            attn = attn.to(lm.device)
        logits, index = rows_logits(lm, ids.to(lm.device), attn, [list(positions[i]) for i in batch])
        if uncond is not None and cfg:
            un_ids = ids.clone()  # [b, l]
            for r, i in enumerate(batch):
                un_ids[r, : lengths[i]] = torch.as_tensor(list(uncond[i]), dtype=torch.long)
            un, _ = rows_logits(lm, un_ids.to(lm.device), attn, [list(positions[i]) for i in batch])
            logits = un + (cfg + 1) * (logits - un)  # [b, k, V] (or [b, l, V])
        for r, i in enumerate(batch):
            pos = torch.as_tensor(index[r], dtype=torch.long, device=logits.device)  # [n]
            logp = torch.log_softmax(logits[r, pos].float(), dim=-1)  # [n, V]
            tgt = torch.as_tensor(list(targets[i]), dtype=torch.long, device=logits.device)  # [n]
            conf, pred = logp.max(dim=-1)  # [n], [n]
            out[i] = RowScore(logp.gather(1, tgt[:, None])[:, 0].cpu(), pred.cpu(), conf.exp().cpu())
    return out  # type: ignore[return-value]


def rows_logits(
    lm: LoadedModel, ids: torch.Tensor, attn: torch.Tensor | None, positions: list[list[int]]
) -> tuple[torch.Tensor, list[list[int]]]:
    """Aligned logits of a batch and where each row's scored positions sit in them.

    MDLMs get the vocabulary head only at the scored positions (the native families take transformers'
    2-D `logits_to_keep` `[b, k]`): `[b, k, V]` instead of `[b, l, V]`, which on CPU is most of the time
    and memory of a long prompt. Other models (and a forward that ignores it) get `lm.logits`."""
    if lm.kind == "mdlm" and lm.extra.get("logits_to_keep", True) and not lm.extra.get("position_ids"):
        k = max(len(p) for p in positions)
        keep = torch.zeros((len(positions), k), dtype=torch.long)  # [b, k]; unused slots read position 0
        for r, p in enumerate(positions):
            keep[r, : len(p)] = torch.as_tensor(p) - (1 if lm.shift else 0)  # raw positions (Dream: shifted)
        try:
            out = lm.model(input_ids=ids, attention_mask=attn, logits_to_keep=keep.to(ids.device))
        except TypeError:  # a forward without logits_to_keep
            pass
        else:
            z = out.logits if hasattr(out, "logits") else out[0]
            if z.shape[:2] == (len(positions), k):
                return z, [list(range(len(p))) for p in positions]  # [b, k, V]
    return lm.logits(ids, attn), positions  # [b, l, V]


def ar_loglikelihood(
    lm: LoadedModel, requests: Sequence[Request], *, batch_size: int | None, max_tokens: int | None = None
) -> list[tuple[float, bool]]:
    """Exact (log p(a | c), is_greedy) per request for a causal model (one forward per request).

    Inputs longer than the model's context keep their last `max_length` tokens (lm-eval's `hf` keeps
    max_length + 1 and drops the last; the scored continuation is the same unless the continuation
    itself fills the context)."""
    rows, positions, targets = [], [], []
    for ctx, cont in requests:
        seq = (list(ctx) + list(cont))[-lm.max_length:]
        rows.append(seq)
        positions.append(range(len(seq) - len(cont), len(seq)))
        targets.append(list(cont))
    scores = score_rows(lm, rows, positions, targets, batch_size=batch_size, max_tokens=max_tokens)
    return [(float(s.logp.double().sum()), bool((s.pred == torch.as_tensor(t)).all()))
            for s, t in zip(scores, targets, strict=True)]


def request_generator(seed: int, ctx: Sequence[int], cont: Sequence[int]) -> torch.Generator:
    """A CPU generator seeded by (seed, the request's tokens): the same draws wherever it is scored."""
    digest = hashlib.sha256(repr((seed, list(ctx), list(cont))).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def masked_counts(length: int, mc_num: int, generator: torch.Generator) -> list[int]:
    """Masked counts k of `mc_num` rows: k_j = (s + floor(j * L / mc_num)) mod L + 1 for a uniform random
    start s, so each row's k is uniform on 1..L and a multiple of L rows holds every k equally often
    (LLaDA spreads with round(), whose half-to-even ties make some k more likely than others)."""
    start = int(torch.randint(0, length, (), generator=generator))
    return [(start + j * length // mc_num) % length + 1 for j in range(mc_num)]


def mc_rows(
    ctx: Sequence[int], cont: Sequence[int], *, mask_id: int, mc_num: int, extra_masks: int, seed: int
) -> list[tuple[list[int], list[int], list[int], float]]:
    """The `mc_num` noised rows of one request: (ids, scored positions, targets, weight L / k)."""
    gen = request_generator(seed, ctx, cont)
    n_ctx, length = len(ctx), len(cont)
    out = []
    for k in masked_counts(length, mc_num, gen):
        masked = sorted(torch.randperm(length, generator=gen)[:k].tolist())
        ids = list(ctx) + list(cont) + [mask_id] * extra_masks
        for j in masked:
            ids[n_ctx + j] = mask_id
        out.append((ids, [n_ctx + j for j in masked], [cont[j] for j in masked], length / k))
    return out


def mdlm_loglikelihood(
    lm: LoadedModel,
    requests: Sequence[Request],
    *,
    mask_id: int,
    mc_num: int,
    extra_masks: int = 0,
    seed: int = 0,
    batch_size: int | None,
    max_tokens: int | None = None,
    greedy: bool = True,
    cfg: float = 0.0,
) -> list[tuple[float, bool]]:
    """(Monte Carlo mask bound, is_greedy) per request for an MDLM (module docstring); the rows of
    all requests are batched together. Rows with the same mask pattern (all of them when L = 1) are
    computed once: the estimate is the same, the work is not. `cfg` > 0 guides the likelihood as
    LLaDA's eval does (a second pass with the whole context masked); is_greedy stays unguided."""
    rows, owner, weights = [], [], []
    for r, (ctx, cont) in enumerate(requests):
        unique: dict[tuple[int, ...], int] = {}  # a repeated mask pattern is scored once and counted again
        for ids, pos, tgt, w in mc_rows(ctx, cont, mask_id=mask_id, mc_num=mc_num, extra_masks=extra_masks, seed=seed):
            if tuple(pos) in unique:
                weights[unique[tuple(pos)]] += w
                continue
            unique[tuple(pos)] = len(rows)
            rows.append((ids, pos, tgt))
            owner.append(r)
            weights.append(w)
    uncond = None
    if cfg:
        uncond = [[mask_id] * len(requests[r][0]) + ids[len(requests[r][0]):] for (ids, _, _), r in
                  zip(rows, owner, strict=True)]
    scores = score_rows(lm, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                        batch_size=batch_size, max_tokens=max_tokens, uncond=uncond, cfg=cfg)
    totals = [0.0] * len(requests)
    for s, r, w in zip(scores, owner, weights, strict=True):
        totals[r] += w * float(s.logp.double().sum())
    lls = [t / mc_num for t in totals]
    if not greedy:
        return [(ll, False) for ll in lls]
    # A drawn row with the whole continuation masked is greedy decoding's first step: reuse it (unguided only).
    first = {} if cfg else {
        r: s for s, r, (_, pos, _) in zip(scores, owner, rows, strict=True) if len(pos) == len(requests[r][1])}
    flags = greedy_matches(lm, requests, mask_id=mask_id, extra_masks=extra_masks, batch_size=batch_size,
                           max_tokens=max_tokens, first=first)
    return list(zip(lls, flags, strict=True))


def greedy_matches(
    lm: LoadedModel, requests: Sequence[Request], *, mask_id: int, extra_masks: int, batch_size: int | None,
    max_tokens: int | None = None,
    first: dict[int, RowScore] | None = None,
) -> list[bool]:
    """Whether confidence-ordered greedy decoding of the masked continuation reproduces it (per request).
    `first[r]`: request r's fully masked row, already scored (its first step is not computed again)."""
    state = {r: list(ctx) + [mask_id] * len(cont) + [mask_id] * extra_masks for r, (ctx, cont) in enumerate(requests)}
    open_pos = {r: list(range(len(ctx), len(ctx) + len(cont))) for r, (ctx, cont) in enumerate(requests)}
    result = [True] * len(requests)
    known = dict(first or {})
    while state:
        active = sorted(state)
        targets = [[requests[r][1][p - len(requests[r][0])] for p in open_pos[r]] for r in active]
        todo = [i for i, r in enumerate(active) if r not in known]
        computed = score_rows(lm, [state[active[i]] for i in todo], [open_pos[active[i]] for i in todo],
                              [targets[i] for i in todo], batch_size=batch_size, max_tokens=max_tokens)
        scores = [known.pop(r) if r in known else None for r in active]
        for i, s in zip(todo, computed, strict=True):
            scores[i] = s
        for r, s, tgt in zip(active, scores, targets, strict=True):
            best = int(s.conf.argmax())  # the most confident masked position (first on ties)
            if int(s.pred[best]) != tgt[best]:
                result[r] = False
                del state[r]
                continue
            state[r][open_pos[r][best]] = tgt[best]
            del open_pos[r][best]
            if not open_pos[r]:
                del state[r]
    return result


@torch.no_grad()
def exact_mask_bound(lm: LoadedModel, ctx: Sequence[int], cont: Sequence[int], *, mask_id: int,
                     extra_masks: int = 0) -> float:
    """The bound the Monte Carlo estimate converges to, by enumerating every masked subset (small L only):
    (1/L) sum_k (L/k) mean_{|M| = k} sum_{i in M} log p(a_i | c, a with M masked), in float64."""
    length, n_ctx = len(cont), len(ctx)
    total = 0.0
    for k in range(1, length + 1):
        subsets = list(itertools.combinations(range(length), k))
        rows, pos, tgt = [], [], []
        for m in subsets:
            ids = list(ctx) + list(cont) + [mask_id] * extra_masks
            for j in m:
                ids[n_ctx + j] = mask_id
            rows.append(ids)
            pos.append([n_ctx + j for j in m])
            tgt.append([cont[j] for j in m])
        scores = score_rows(lm, rows, pos, tgt, batch_size=len(rows))
        total += (length / k) * sum(float(s.logp.double().sum()) for s in scores) / math.comb(length, k)
    return total / length
