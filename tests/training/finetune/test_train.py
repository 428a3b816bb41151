"""Mask-agnostic fine-tuning end to end on tiny checkpoints: run tree, resume, LoRA, merge, DDP."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import tiny_checkpoint, tiny_tokenizer

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.models import load
from masktax.models.finetuned import apply_finetune, merge_finetune
from masktax.training.finetune.config import FinetuneConfig, paper_defaults
from masktax.training.finetune.lora import add_lora
from masktax.training.finetune.ma_views import build_example_views, collate_views
from masktax.training.finetune.mask_agnostic_loss import mask_agnostic_loss
from masktax.training.finetune.train import run

TINY = dict(data="synthetic", synthetic_n=40, max_context=96, min_masks=4, max_masks=16, curriculum_steps=4,
            batch_size=2, grad_accum=1, lora_rank=4, save_every=2, lr=1e-3)


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory) -> Path:
    return tiny_checkpoint("llada", tmp_path_factory.mktemp("ft") / "llada")


def _metrics(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_cli_finetune_writes_the_run_tree(llada_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    rc = main(["finetune", "--model", str(llada_dir), "--data", "synthetic", "--out", str(out), "--max-steps", "3",
               "--batch-size", "2", "--grad-accum", "1", "--max-context", "96", "--min-masks", "8", "--max-masks", "40",
               "--lora-rank", "4", "--save-every", "2", "--no-progress", "--device", "cpu"])
    assert rc == 0
    for name in ("config.json", "env.json", "data_stats.json", "metrics.csv", "step-000002/state.json",
                 "step-000003/optimizer.pt", "final/adapter_config.json", "final/adapter_model.safetensors",
                 "final/finetune_config.json", "final/tokenizer.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["resolved_beta"], cfg["resolved_lr"]) == (1.0, 1e-5)  # Base, CE+TV row of [P1]'s table
    rows = _metrics(out)
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert all(float(r["ce"]) > 0 and float(r["tv"]) >= 0 for r in rows)
    stats = json.loads((out / "data_stats.json").read_text())
    assert stats["kept"] + stats["truncated"] + stats["dropped_long_prompt"] + stats["dropped_empty"] == stats["rows"]
    # the LoRA checkpoint holds only adapter tensors
    from safetensors.torch import load_file

    keys = load_file(str(out / "step-000003" / "model.safetensors"))
    assert keys and all("lora_" in k for k in keys)


def test_resume_reproduces_the_uninterrupted_run(llada_dir: Path, tmp_path: Path) -> None:
    cfg = FinetuneConfig(model=str(llada_dir), full=True, max_steps=4, **TINY)
    run(cfg, tmp_path / "a", device="cpu", progress=False)
    run(cfg.replace(max_steps=2), tmp_path / "b", device="cpu", progress=False)
    run(cfg, tmp_path / "b", device="cpu", progress=False)  # the same command again resumes
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert [r["step"] for r in b] == ["1", "2", "3", "4"]
    for ra, rb in zip(a, b, strict=True):
        assert float(ra["total"]) == pytest.approx(float(rb["total"]), rel=1e-5, abs=1e-7)
        assert ra["max_masks"] == rb["max_masks"]


def test_lora_trains_only_adapter_weights(llada_dir: Path) -> None:
    lm = load(str(llada_dir), device="cpu")
    base = {k: v.clone() for k, v in lm.model.state_dict().items()}
    torch.manual_seed(0)
    model = add_lora(lm.model, "llada", rank=4, alpha=8, dropout=0.0, targets=None)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert not any("transformer.ff_out" in n and "blocks" not in n for n in names)  # output head untouched
    fwd = type(lm)(**{**lm.__dict__, "model": model})
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    tok = tiny_tokenizer()
    q, a = tok("Options : France")["input_ids"], tok("Alice , Bob , Carol")["input_ids"]
    views = [build_example_views(q, a, index=i, seed=0, p_range=(0.5, 0.8), max_context=64, max_masks_now=8,
                                 mask_id=lm.mask_id, eos_id=lm.eos_id) for i in range(3)]
    batch = collate_views(views, eos_id=lm.eos_id)
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for _ in range(3):
        logits = fwd.logits(batch.ids, batch.attention)  # [2b, l, V]
        total, _, _ = mask_agnostic_loss(logits[:3], logits[3:], batch.targets, batch.masked, batch.p)
        opt.zero_grad()
        total.backward()
        opt.step()
    after = model.get_base_model().state_dict()
    for k, v in base.items():
        assert torch.equal(after[k.replace(".weight", ".base_layer.weight")] if k not in after else after[k], v), k
    assert any(not torch.equal(p.detach(), lora_before[n]) for n, p in model.named_parameters() if p.requires_grad)


def test_merge_and_apply_finetune_agree(tiny_ckpts: dict, lora_run: Path, tmp_path: Path) -> None:
    merged_dir = merge_finetune(lora_run, tmp_path / "merged")  # lora_run: a 2-step LoRA run (conftest.py)
    ids = torch.tensor([[5, 6, 7, tiny_tokenizer().mask_token_id, 9]])
    base = load(tiny_ckpts["llada"], device="cpu")
    with torch.no_grad():
        ref = base.logits(ids)
        tuned = apply_finetune(base, lora_run).logits(ids)
        merged = load(str(merged_dir), device="cpu").logits(ids)
    assert torch.allclose(tuned, merged, atol=1e-5)
    assert not torch.allclose(tuned, ref)  # the lm changed the model


def test_same_global_batch_gives_same_loss_however_split(llada_dir: Path, tmp_path: Path) -> None:
    common = {**TINY, "batch_size": 4, "grad_accum": 1}
    one = FinetuneConfig(model=str(llada_dir), full=True, max_steps=2, **common)
    run(one, tmp_path / "one", device="cpu", progress=False)
    run(one.replace(batch_size=2, grad_accum=2), tmp_path / "two", device="cpu", progress=False)
    for r1, r2 in zip(_metrics(tmp_path / "one"), _metrics(tmp_path / "two"), strict=True):
        assert float(r1["total"]) == pytest.approx(float(r2["total"]), rel=1e-4)


def test_dream_shifted_full_finetune_runs(tmp_path: Path) -> None:
    path = tiny_checkpoint("dream", tmp_path / "dream")
    state = run(FinetuneConfig(model=str(path), full=True, max_steps=1, **TINY), tmp_path / "run", device="cpu",
                progress=False)
    assert state["step"] == 1 and state["losses"]["ce"] > 0
    assert load(str(tmp_path / "run" / "final"), device="cpu").shift  # final/ is a loadable Dream checkpoint


def test_bad_inputs_raise_masktax_error(llada_dir: Path, tmp_path: Path) -> None:
    ar = tiny_checkpoint("ar", tmp_path / "ar")
    with pytest.raises(MasktaxError, match="masked diffusion"):
        run(FinetuneConfig(model=str(ar), max_steps=1, **TINY), tmp_path / "r1", device="cpu", progress=False)
    with pytest.raises(MasktaxError, match="does not exist"):
        run(FinetuneConfig(model=str(llada_dir), **{**TINY, "data": str(tmp_path / "x.jsonl")}), tmp_path / "r2",
            device="cpu", progress=False)
    with pytest.raises(MasktaxError):
        FinetuneConfig(model="m", variant="chat")
    assert main(["finetune", "--out", str(tmp_path / "r3")]) == 2
    assert paper_defaults("instruct", beta=None, lr=None) == (10.0, 1e-6)
    assert paper_defaults("instruct", beta=0.0, lr=None) == (0.0, 1e-5)
    assert paper_defaults("base", beta=0.0, lr=None) == (0.0, 1e-6)


def test_two_process_ddp_matches_one_process(llada_dir: Path, tmp_path: Path) -> None:
    """`accelerate launch --multi_gpu --num_processes 2` on a CPU-only machine starts two gloo processes
    (accelerate's `--cpu` would hand them to mpirun, or silently start one): same losses as one process
    on the same global batch."""
    args = ["finetune", "--model", str(llada_dir), "--data", "synthetic", "--max-steps", "2", "--full",
            "--max-context", "96", "--min-masks", "4", "--max-masks", "16", "--grad-accum", "1", "--lr", "1e-3", "--no-progress",
            "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
              "-m", "masktax.cli.main"]
    subprocess.run([*launch, *args, "--batch-size", "2", "--out", str(tmp_path / "ddp")], check=True, env=env,
                   timeout=600)
    assert main([*args, "--batch-size", "4", "--out", str(tmp_path / "single")]) == 0
    ddp, single = _metrics(tmp_path / "ddp"), _metrics(tmp_path / "single")
    assert json.loads((tmp_path / "ddp" / "env.json").read_text())["world_size"] == 2
    for r1, r2 in zip(ddp, single, strict=True):
        assert float(r1["total"]) == pytest.approx(float(r2["total"]), rel=1e-4)


def test_fsdp_on_cpu_is_a_clear_error(llada_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what `accelerate launch --use_fsdp` sets
    rc = main(["finetune", "--model", str(llada_dir), "--data", "synthetic", "--max-steps", "1", "--full",
               "--device", "cpu", "--no-progress", "--out", str(tmp_path / "r")])
    assert rc == 2 and "--multi_gpu" in capsys.readouterr().err
