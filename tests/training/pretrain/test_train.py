"""`masktax pretrain` end to end on tiny configs: run tree, exact resume, final/ loads, anneal, stopping."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from scripts_loader import load_script

from masktax.cli.main import main
from masktax.training.pretrain.config import PretrainConfig
from masktax.training.pretrain.curriculum import CurriculumState, Stage


def metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_pretrain_end_to_end_writes_run_tree_and_loads(tmp_path, tiny_config):
    cfg = tiny_config(eos_tail=True)
    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(cfg), "--out", str(out), "--max-steps", "5", "--no-progress", "--device", "cpu"]) == 0
    for name in ("config.json", "env.json", "metrics.csv", "step-000003", "step-000005", "final/config.json",
                 "final/model.safetensors", "final/tokenizer.json"):
        assert (out / name).exists(), name
    rows = metrics(out)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(float(r["loss"]) > 0 for r in rows) and rows[1]["gate_acc"] != ""
    from masktax.models import load

    lm = load(str(out / "final"))
    assert lm.kind == "mdlm" and lm.mask_id == lm.tokenizer.mask_token_id
    ids = lm.tokenizer("Options: (A) cat, (B) red, (C) pear\nAnswer:[", return_tensors="pt")["input_ids"]
    assert lm.logits(ids).shape[-1] >= len(lm.tokenizer)


def test_resume_reproduces_uninterrupted_losses(tmp_path, tiny_config):
    cfg = tiny_config()
    full, split = tmp_path / "full", tmp_path / "split"
    args = ["pretrain", "--config", str(cfg), "--no-progress", "--device", "cpu"]
    assert main([*args, "--out", str(full), "--max-steps", "7"]) == 0
    assert main([*args, "--out", str(split), "--max-steps", "4"]) == 0
    assert main([*args, "--out", str(split), "--max-steps", "7"]) == 0
    a, b = metrics(full), metrics(split)
    assert [r["step"] for r in b] == [str(s) for s in range(1, 8)]
    assert [(r["loss"], r["gate_acc"], r["stage"]) for r in a] == [(r["loss"], r["gate_acc"], r["stage"]) for r in b]


def test_ar_twin_and_dream_like_from_ar(tmp_path, tiny_config):
    ar_cfg = tiny_config(name="ar", objective="ar")
    ar = tmp_path / "ar"
    assert main(["pretrain", "--config", str(ar_cfg), "--out", str(ar), "--max-steps", "3", "--no-progress"]) == 0
    dream_cfg = tiny_config(name="dream", shift=True, init_from=str(ar / "final"))
    dream = tmp_path / "dream"
    assert main(["pretrain", "--config", str(dream_cfg), "--out", str(dream), "--max-steps", "2", "--no-progress"]) == 0
    from safetensors.torch import load_file

    ar_w = load_file(str(ar / "step-000003" / "model.safetensors"))
    init = load_file(str(dream / "step-000002" / "model.safetensors"))
    assert json.loads((dream / "final" / "config.json").read_text())["model_type"] == "Dream"
    assert json.loads((ar / "final" / "config.json").read_text())["model_type"] == "llama"
    # the Dream-like model started from the AR weights: two small steps stay close to them
    w = "model.layers.0.mlp.down_proj.weight"
    assert (init[w] - ar_w[w]).abs().max() < 0.05


def test_other_config_in_run_dir_is_refused(tmp_path, tiny_config):
    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(tiny_config()), "--out", str(out), "--max-steps", "1", "--no-progress"]) == 0
    other = tiny_config(lr=0.5)
    assert main(["pretrain", "--config", str(other), "--out", str(out), "--max-steps", "2", "--no-progress"]) == 2


def test_an_anneal_added_on_resume_is_kept_and_cannot_rewrite_history(tmp_path, tiny_config):
    cfg = tiny_config()
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(cfg), "--no-progress", "--device", "cpu", "--out", str(out)]
    assert main([*args, "--max-steps", "4"]) == 0
    assert main([*args, "--max-steps", "6", "--decay-steps", "2"]) == 2  # no anneal to lengthen
    assert main([*args, "--max-steps", "6", "--decay-start", "2", "--decay-steps", "2"]) == 2  # would change step 2
    assert main([*args, "--max-steps", "6", "--decay-start", "4", "--decay-steps", "2"]) == 0
    assert main([*args, "--max-steps", "8"]) == 0  # resumed without the flag: the anneal stays
    lrs = [float(r["lr"]) for r in metrics(out)]
    stored = json.loads((out / "config.json").read_text())
    assert (stored["schedule"], stored["decay_start"], stored["decay_steps"]) == ("wsd", 4, 2)
    peak = lrs[3]
    assert lrs[4] == pytest.approx(peak) and lrs[5] == pytest.approx(peak * 0.55)
    assert lrs[6] == lrs[7] == pytest.approx(peak * stored["min_lr_ratio"])


def final_stage_run(tiny_config, out, *flags: str) -> list[str]:
    """`masktax pretrain` argv of a tiny run that is in its final stage (S4) from the first step."""
    cfg = tiny_config(stages=[{"name": "S4", "spec": {"n_examples": [2, 3], "max_tokens": 96}}])
    return ["pretrain", "--config", str(cfg), "--out", str(out), "--no-progress", "--device", "cpu", *flags]


def test_stop_gate_ends_the_run_once_the_last_stage_is_solved(tmp_path, tiny_config):
    """A single-stage curriculum whose gate always passes (stop_gate 0) stops at the patience-th gate."""
    out = tmp_path / "run"
    args = final_stage_run(tiny_config, out, "--max-steps", "50", "--stop-gate", "0")
    assert main(args) == 0
    state = json.loads((out / "final" / "training_state.json").read_text())
    assert state["step"] == 3 * 2  # gate_every 2, patience 3
    assert main(args) == 0  # rerunning a solved run does not train further
    assert json.loads((out / "final" / "training_state.json").read_text())["step"] == 6


def test_suite_accuracy_is_logged_and_can_stop_the_run(tmp_path, tiny_config):
    """At final-stage gates the probe suite is scored (suite_eval.csv); stop_on suite uses it."""
    out = tmp_path / "run"
    args = final_stage_run(tiny_config, out, "--max-steps", "4", "--suite-items", "1")
    assert main(args) == 0
    rows = list(csv.DictReader((out / "suite_eval.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(0.0 <= float(r["suite_acc"]) <= 1.0 and r["n_items"] == "1" for r in rows)
    out2 = tmp_path / "run2"
    args2 = final_stage_run(tiny_config, out2, "--max-steps", "50", "--suite-items", "1", "--stop-on", "suite",
                            "--stop-gate", "0")
    assert main(args2) == 0
    assert json.loads((out2 / "final" / "training_state.json").read_text())["step"] == 6  # patience 3 x gate_every 2
    bad = final_stage_run(tiny_config, tmp_path / "run3", "--stop-on", "suite")
    assert main(bad) == 2  # stop_on suite needs --suite-items


def test_a_run_started_before_a_config_field_existed_still_resumes(tmp_path, tiny_config):
    """config.json without a field added later (at its default) is the same config."""
    cfg = tiny_config()
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(cfg), "--out", str(out), "--max-steps", "2", "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    stored = json.loads((out / "config.json").read_text())
    del stored["mask_repeat"]
    (out / "config.json").write_text(json.dumps(stored))
    assert main(args[:5] + ["--max-steps", "3", "--no-progress", "--device", "cpu"]) == 0


def test_mask_repeat_masks_the_repeated_word_with_its_letter(words):
    """With the S0 stepping stone, answer-focused rows mask `B quirky` together when the letter is masked."""
    from masktax.embedded.tokenizer import build_tokenizer
    from masktax.training.pretrain.batches import train_batch
    from masktax.training.pretrain.corpus import Encoder, all_words
    from masktax.training.pretrain.train import step_loss

    tok = build_tokenizer(all_words(words))
    enc = Encoder(tok)
    stage = Stage.from_dict({"name": "S0", "spec": {"n_examples": [2, 3], "distractor_share": [0, 0],
                                                    "repeat_prob": 1.0, "n_categories": 3, "rules": ["category"],
                                                    "max_tokens": 96}})
    batch = train_batch(seed=0, step=0, batch_size=4, words=words, encoder=enc, stages=(stage,),
                        state=CurriculumState(), replay=0.0, focus_share=1.0, eos_tail=False)
    assert batch.repeat.sum() == batch.answer_pos.sum()  # every letter is followed by its repeated word
    assert torch.equal(batch.repeat[:, 1:], batch.answer_pos[:, :-1])
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, input_ids=None, attention_mask=None, **_):
            seen["x"] = input_ids
            return type("Out", (), {"logits": torch.zeros(*input_ids.shape, len(tok), requires_grad=True)})()

    for flag in (False, True):
        cfg = PretrainConfig.from_dict({"name": "t", "objective": "mdlm", "mask_repeat": flag,
                                        "model": {"d_model": 8, "n_layers": 1, "n_heads": 1, "n_kv_heads": 1, "d_ff": 8}})
        step_loss(cfg, Spy(), batch, enc.mask_id, torch.Generator().manual_seed(0))
        x = seen["x"]
        letter_masked = (x == enc.mask_id) & batch.answer_pos
        after = torch.zeros_like(letter_masked)
        after[:, 1:] = letter_masked[:, :-1]
        repeat_masked = (x == enc.mask_id) & batch.repeat
        assert letter_masked.any()
        assert torch.equal(repeat_masked, after & batch.repeat) if flag else not repeat_masked.any()


def test_export_script_copies_final_with_training_record(tmp_path, tiny_config):
    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(tiny_config()), "--out", str(out), "--max-steps", "2", "--no-progress"]) == 0
    mod = load_script("export_embedded")
    assert mod.main([str(out), "embedded-mdlm", "--dest-root", str(tmp_path / "w"), "--hardware", "cpu"]) == 0
    dest = tmp_path / "w" / "embedded-mdlm"
    info = json.loads((dest / "training.json").read_text())
    assert info["steps"] == 2 and info["hardware"] == "cpu" and info["config"]["objective"] == "mdlm"
    assert (dest / "model.safetensors").is_file() and (dest / "TRAINING.md").is_file()
    assert not (dest / "training_state.json").exists()
    # with the accuracy probe of final/, the suite accuracy is recorded with the weights
    probe = tmp_path / "acc"
    assert main(["probe", "accuracy", "--model", str(out / "final"), "--n-items", "1", "--datasets",
                 "animal__smallest,verb__largest", "--out", str(probe), "--device", "cpu", "--no-progress"]) == 0
    assert mod.main([str(out), "embedded-mdlm", "--dest-root", str(tmp_path / "w"), "--suite-run", str(probe)]) == 0
    suite = json.loads((dest / "training.json").read_text())["suite_accuracy"]
    assert suite["n_items"] == 2 and suite["n_datasets"] == 2 and 0.0 <= suite["accuracy"] <= 1.0
    assert "probe-suite accuracy" in (dest / "TRAINING.md").read_text()
    # a second phase continuing the exported checkpoint keeps the first phase's record
    assert mod.main([str(out), "embedded-mdlm", "--dest-root", str(tmp_path / "w"), "--previous", str(dest)]) == 0
    info2 = json.loads((dest / "training.json").read_text())
    assert info2["previous_phase"]["suite_accuracy"] == suite and "previous_phase" not in info2["previous_phase"]
    assert "Total over the phases: 4 steps" in (dest / "TRAINING.md").read_text()
    with pytest.raises(SystemExit):
        mod.main([str(out), "embedded-mdlm", "--dest-root", str(tmp_path / "w"), "--previous", str(tmp_path)])


def test_autocast_auto_follows_the_cpu_and_a_resumed_run_keeps_its_choice(tmp_path, tiny_config, monkeypatch):
    """auto picks bf16 only where bf16 matmuls measure faster (speeds faked); env.json and each checkpoint
    record the choice, and a resumed run keeps it even where this machine would choose otherwise."""
    from masktax.models import precision

    def cpu(fp32: float, bf16: float) -> None:
        speeds = {torch.float32: fp32, torch.bfloat16: bf16}
        monkeypatch.setattr(precision, "matmul_gflops", lambda dtype, device_type="cpu", n=512: speeds[dtype])

    args = ["pretrain", "--config", str(tiny_config()), "--no-progress", "--device", "cpu", "--out", str(tmp_path / "r")]
    cpu(180.0, 720.0)
    assert main([*args, "--max-steps", "3"]) == 0
    env = json.loads((tmp_path / "r" / "env.json").read_text())
    assert env["autocast"]["requested"] == "auto" and env["autocast"]["chosen"] == "bf16"
    assert env["autocast"]["matmul_gflops"] == {"float32": 180.0, "bfloat16": 720.0, "n": 512}
    assert json.loads((tmp_path / "r" / "step-000003" / "state.json").read_text())["autocast"] == "bf16"
    cpu(125.0, 9.0)  # the same run resumed on an AVX2-only CPU
    assert main([*args, "--max-steps", "4"]) == 0
    env = json.loads((tmp_path / "r" / "env.json").read_text())
    assert env["autocast"]["chosen"] == "bf16" and env["autocast"]["resumed_with"] == "bf16"
    assert main(["pretrain", "--config", str(tiny_config()), "--no-progress", "--device", "cpu", "--max-steps", "1",
                 "--out", str(tmp_path / "fresh")]) == 0
    assert json.loads((tmp_path / "fresh" / "env.json").read_text())["autocast"]["chosen"] == "off"


def test_cpu_configs_leave_autocast_to_the_machine():
    configs = sorted((Path(__file__).resolve().parents[3] / "configs" / "embedded").rglob("*.json"))
    assert configs and {json.loads(p.read_text())["autocast"] for p in configs} == {"auto"}
