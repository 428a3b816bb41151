"""`masktax train-sm`: run tree, soft_mask.json, exact resume, p_sm = 0 == plain MDLM training, DoRA."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file
from tiny import tiny_checkpoint

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.samplers.soft_mask import SoftMaskConfig
from masktax.training.soft_masking.config import SMConfig
from masktax.training.soft_masking.train import run
from masktax.training.soft_masking.two_pass import SoftMaskParams

FAST = dict(stage="S0", batch_size=2, warmup_steps=1, log_every=1, answer_focus_share=0.5)


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    return tiny_checkpoint("llada", tmp_path_factory.mktemp("llada"))


def _rows(out):
    with (out / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_cli_end_to_end_writes_run_tree_and_soft_mask_json(llada_dir, tmp_path):
    cfg_file = tmp_path / "sm.json"
    cfg_file.write_text(json.dumps({"_comment": "tiny", "init_from": str(llada_dir), **FAST, "save_every": 2}))
    out = tmp_path / "run"
    code = main(["train-sm", "--config", str(cfg_file), "--out", str(out), "--max-steps", "3", "--p-sm", "1.0",
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    for name in ("config.json", "env.json", "metrics.csv", "step-000002", "step-000003", "final/model.safetensors",
                 "final/tokenizer.json", "final/soft_mask.json", "final/training_state.json"):
        assert (out / name).exists(), name
    rows = _rows(out)
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert {"loss", "omega_s", "omega_a", "omega_b", "mean_lambda", "n_soft"} <= set(rows[0])
    assert all(r["soft"] == "1" and int(r["n_soft"]) > 0 for r in rows)
    saved = json.loads((out / "final" / "soft_mask.json").read_text())
    assert {"omega_s", "omega_a", "omega_b", "k", "raw_s", "raw_a", "raw_b"} <= set(saved)
    cfg = SoftMaskConfig.from_checkpoint(out / "final")
    assert (cfg.omega_s, cfg.omega_a, cfg.omega_b, cfg.k) == (saved["omega_s"], saved["omega_a"], saved["omega_b"], 3)
    raw = SoftMaskConfig.from_raw(saved["raw_s"], saved["raw_a"], saved["raw_b"])
    assert raw.omega_s == pytest.approx(cfg.omega_s, rel=1e-5) and raw.omega_a == pytest.approx(cfg.omega_a, rel=1e-6)
    assert torch.equal(SoftMaskParams.load(out / "final").raw_s, torch.tensor(saved["raw_s"]))
    # the trained model loads back as an MDLM
    from masktax.models import load

    assert load(out / "final", device="cpu").kind == "mdlm"


def test_cli_bad_input_is_one_line_error(llada_dir, tmp_path, capsys):
    assert main(["train-sm", "--init-from", str(llada_dir), "--out", str(tmp_path / "r"), "--p-sm", "1.5"]) == 2
    assert main(["train-sm", "--init-from", str(llada_dir), "--out", str(tmp_path / "r"), "--tuning", "qlora"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("masktax: error: ") for line in err)
    with pytest.raises(MasktaxError):
        SMConfig.from_dict({"p_sm": 0.5, "bogus": 1})


def test_resume_reproduces_the_next_losses(llada_dir, tmp_path):
    cfg = SMConfig(init_from=str(llada_dir), p_sm=0.5, omega_s=0.3, omega_b=-8.0, omega_lr=1e-2, save_every=2,
                   max_steps=4, **FAST)
    full = tmp_path / "full"
    run(cfg, full, device="cpu", progress=False)
    part = tmp_path / "part"
    run(cfg.replace(max_steps=2), part, device="cpu", progress=False)
    run(cfg, part, device="cpu", progress=False)
    a, b = _rows(full), _rows(part)
    assert {r["soft"] for r in a} == {"0", "1"}  # both kinds of step happened
    assert [(r["step"], r["loss"], r["omega_s"]) for r in a] == [(r["step"], r["loss"], r["omega_s"]) for r in b]
    wa, wb = load_file(str(full / "final/model.safetensors")), load_file(str(part / "final/model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((full / "final/soft_mask.json").read_text()) == json.loads((part / "final/soft_mask.json").read_text())


def test_p_sm_zero_is_exactly_plain_mdlm_training(llada_dir, tmp_path):
    """Same losses and same weights as the plain MDLM step (pretrain.train.step_loss + AdamW) under the same seed."""
    from masktax.models import load
    from masktax.training.loop import lr_at
    from masktax.training.pretrain.batches import train_batch
    from masktax.training.pretrain.config import PretrainConfig
    from masktax.training.pretrain.corpus import Encoder
    from masktax.training.pretrain.curriculum import CurriculumState, default_stages
    from masktax.training.pretrain.train import load_corpus_words, step_loss

    cfg = SMConfig(init_from=str(llada_dir), p_sm=0.0, max_steps=3, save_every=10, **FAST)
    out = tmp_path / "sm"
    run(cfg, out, device="cpu", progress=False)

    torch.manual_seed(cfg.seed)
    lm = load(llada_dir, device="cpu", dtype=torch.float32)
    model = lm.model.train()
    enc = Encoder(lm.tokenizer)
    stage = {s.name: s for s in default_stages()}[cfg.stage]
    loss_cfg = PretrainConfig(answer_focus_share=cfg.answer_focus_share, seed=cfg.seed)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    other = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": other, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)
    words = load_corpus_words(loss_cfg)
    losses = []
    for step in range(cfg.max_steps):
        lr = lr_at(step, lr=cfg.lr, warmup=cfg.warmup_steps, schedule=cfg.schedule, max_steps=cfg.max_steps,
                   min_ratio=cfg.min_lr_ratio)
        for group in opt.param_groups:
            group["lr"] = lr
        batch = train_batch(seed=cfg.seed, step=step, batch_size=cfg.batch_size, words=words, encoder=enc,
                            stages=(stage,), state=CurriculumState(), replay=0.0,
                            focus_share=cfg.answer_focus_share, eos_tail=False)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        loss = step_loss(loss_cfg, model, batch, enc.mask_id, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(f"{float(loss.detach()):.6g}")
    rows = _rows(out)
    assert [r["loss"] for r in rows] == losses and all(r["soft"] == "0" for r in rows)
    trained = load_file(str(out / "final/model.safetensors"))
    state = model.state_dict()
    diffs = {k: float((trained[k] - state[k]).abs().max()) for k in trained}
    assert all(v == 0.0 for v in diffs.values()), diffs
    assert any(not torch.equal(trained[k], v) for k, v in load_file(str(llada_dir / "model.safetensors")).items())


def test_dora_on_shifted_model_with_instruction_data(tmp_path):
    """DoRA (peft) on a Dream-layout (shifted) tiny model, OpenOrca-layout JSONL, soft-masked steps."""
    dream = tiny_checkpoint("dream", tmp_path / "dream")
    data = tmp_path / "orca.jsonl"
    rows = [{"system_prompt": "Be brief.", "question": "cat or red ?", "response": "cat"},
            {"system_prompt": "", "question": "France or run ?", "response": "France is a country ."}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = SMConfig(init_from=str(dream), tuning="dora", lora_r=4, data=str(data), p_sm=1.0, omega_s=0.3,
                   omega_b=-8.0, lr=1e-3, batch_size=2, max_steps=2, warmup_steps=0, log_every=1, save_every=10)
    out = tmp_path / "run"
    run(cfg, out, device="cpu", progress=False)
    ckpt = load_file(str(out / "step-000002/model.safetensors"))
    assert ckpt and all("lora" in k or k.startswith("tensors.soft_mask__") for k in ckpt)  # only adapter + omegas train
    assert any("lora_magnitude" in k for k in ckpt)  # DoRA
    for where in (out / "final", out / "final/adapter"):
        assert SoftMaskConfig.from_checkpoint(where).omega_s != pytest.approx(0.3, abs=1e-9)  # omegas trained
    assert (out / "final/adapter/adapter_model.safetensors").is_file()
    # final/adapter/ is a standard peft adapter: applied to the base it equals the merged final/
    from masktax.models import load
    from masktax.models.finetuned import apply_finetune

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        merged = load(str(out / "final"), device="cpu").logits(ids)  # [1, 5, V]
        applied = apply_finetune(load(str(dream), device="cpu"), out / "final/adapter").logits(ids)
        base = load(str(dream), device="cpu").logits(ids)
    assert torch.allclose(applied, merged, atol=1e-5) and not torch.allclose(applied, base, atol=1e-6)
    assert all(r["soft"] == "1" and float(r["loss"]) > 0 for r in _rows(out))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "no response"}) + "\n")
    with pytest.raises(MasktaxError, match="response"):
        run(cfg.replace(data=str(bad)), tmp_path / "bad", device="cpu", progress=False)
