"""Do masks appended in LATER blocks cost a block-causal model anything? Measured on the tiny fixtures.

Under block-causal attention (LLaDA2, SDAR/TraDo, Fast-dLLM v2) a query sees its own block and the
earlier ones. The masks probe appends x extra masks after the answer position; only those inside
the answer's block can change its prediction, so the "mask tax" should stop growing once the masks
cross the block boundary, and exactly so, whatever the weights. This script measures it on the
tiny random checkpoints under tests/models/fixtures/ (made by each family's published code):

    for a scoring position at offset o in its block (o = 0 .. B-1) and x = 0 .. 3B extra masks,
    TV(x) = total variation between the answer distribution with x extra masks and with none,
    averaged over 32 random prompts; and the same model with bidirectional attention (block size 0).

Prediction: TV(x) = TV(B - 1 - o) for every x >= B - 1 - o (later blocks cost nothing), while the
bidirectional control keeps moving. For a shifted family (Fast-dLLM v2) the scoring position is
the one before the answer (its raw logits predict the answer), and o is that position's offset.

    .venv/bin/python scripts/block_boundary_masks.py      # writes docs/img/block_causal_masks.png + .json
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from masktax.models import load

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "models" / "fixtures"
OUT = ROOT / "docs" / "img" / "block_causal_masks"
FAMILIES = ("llada2_moe", "sdar", "fast_dllm_v2")
MASK, PROMPTS, BASE = 2, 32, 24  # a token of the tiny vocabularies used as the mask; prompts per point


def set_block(model, size: int) -> None:
    """Switch a loaded block-causal model between its blocks and bidirectional attention (0)."""
    field = "bd_size" if hasattr(model.config, "bd_size") else "block_size"
    setattr(model.config, field, size)


def answer_tv(lm, prompts: torch.Tensor, block: int, offset: int, extra: int) -> float:
    """Mean TV between the answer distributions with `extra` masks and with none; the scoring position
    (the answer position, or the one before it when shifted) sits at `offset` in its block."""
    shift = int(lm.shift)
    length = BASE + (offset + shift - BASE) % block  # prompt length so that (length - shift) % block == offset
    ids = prompts[:, :length]
    answer = torch.tensor([length] * ids.shape[0])

    def dist(n: int) -> torch.Tensor:
        x = torch.cat([ids, torch.full((ids.shape[0], 1 + n), MASK)], dim=1)
        with torch.no_grad():
            return torch.softmax(lm.logits_at(x, answer), dim=-1)  # [b, V]

    return float(0.5 * (dist(extra) - dist(0)).abs().sum(-1).mean())


def measure() -> dict:
    g = torch.Generator().manual_seed(0)
    results = {}
    for family in FAMILIES:
        lm = load(FIXTURES / family)
        block = lm.block_size
        prompts = torch.randint(3, 64, (PROMPTS, BASE + block), generator=g)
        offsets = sorted({0, block // 2, block - 1})
        xs = list(range(0, 3 * block + 1))
        rows = {}
        for mode, size in (("block-causal", block), ("bidirectional", 0)):
            set_block(lm.model, size)
            for o in offsets:
                rows[f"{mode}, offset {o}"] = [answer_tv(lm, prompts, block, o, x) for x in xs]
        set_block(lm.model, block)
        results[family] = {"block": block, "shift": lm.shift, "x": xs, "tv": rows}
    return results


def check(results: dict) -> list[str]:
    """The prediction, row by row: no change once the masks leave the scoring position's block."""
    lines = []
    for family, r in results.items():
        block = r["block"]
        for name, tv in r["tv"].items():
            if not name.startswith("block-causal"):
                continue
            o = int(name.rsplit(" ", 1)[1])
            edge = block - 1 - o  # the last x whose masks are all inside the block
            after = max(abs(t - tv[edge]) for t in tv[edge:])
            lines.append(f"{family:13s} B={block} offset {o}: TV at block end {tv[edge]:.4f}, "
                         f"largest change after it {after:.1e}, bidirectional at x=3B "
                         f"{r['tv'][name.replace('block-causal', 'bidirectional')][-1]:.4f}")
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.8), squeeze=False)
    for ax, (family, r) in zip(axes[0], results.items(), strict=True):
        for i, (name, tv) in enumerate(r["tv"].items()):
            style = "-" if name.startswith("block-causal") else ":"
            ax.plot(r["x"], tv, style, marker="o" if style == "-" else None, ms=3, color=f"C{i % 3}", label=name)
        ax.set_title(f"{family} (blocks of {r['block']}{', shifted' if r['shift'] else ''})")
        ax.set_xlabel("extra masks after the answer position")
        ax.set_ylabel("TV(answer | x masks, answer | 0)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Masks in later blocks leave the answer unchanged under block-causal attention (tiny random models)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    """`--plot-only` redraws the figure from the stored JSON (the measurement takes minutes on 2 cores)."""
    import sys

    if "--plot-only" in sys.argv:
        results = json.loads(OUT.with_suffix(".json").read_text())
    else:
        torch.manual_seed(0)
        results = measure()
        OUT.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, OUT.with_suffix(".png"))
    print("\n".join(check(results)))


if __name__ == "__main__":
    main()
