"""`masktax pretrain` end to end on tiny configs: run tree, exact resume, final/ loads, curriculum."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import torch
from scripts_loader import load_script

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.training.curriculum import CurriculumState, Stage, default_stages, gate, pick_stage
from masktax.training.loop_utils import lr_at
from masktax.training.pretrain_config import PretrainConfig, load_config

WORDS = {
    "animals": ["cat", "dog", "horse", "sheep", "goat", "mouse"],
    "fruits": ["apple", "pear", "plum", "grape", "lemon", "mango"],
    "colours": ["red", "blue", "green", "yellow", "purple", "orange"],
    "countries": ["France", "Japan", "Peru", "Chile", "Kenya", "Spain"],
}
REPO = Path(__file__).resolve().parents[1]


def tiny_config(tmp_path: Path, **changes) -> Path:
    words = tmp_path / "words.json"
    words.write_text(json.dumps(WORDS))
    cfg = {
        "name": "tiny", "objective": "mdlm", "words_file": str(words),
        "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "n_kv_heads": 2, "d_ff": 64},
        "batch_size": 3, "gate_every": 2, "gate_size": 6, "save_every": 3, "log_every": 1, "warmup_steps": 2,
        "stages": [
            {"name": "S0", "spec": {"n_examples": [2, 3], "distractor_share": [0, 0], "repeat_prob": 1.0,
                                    "n_categories": 3, "rules": ["category"], "max_tokens": 96}},
            {"name": "S4", "spec": {"n_examples": [3, 6], "distractor_share": [0.1, 0.8], "max_tail": 10,
                                    "max_tokens": 192}},
        ],
    }
    cfg.update(changes)
    path = tmp_path / f"{cfg['name']}.json"
    path.write_text(json.dumps(cfg))
    return path


def metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_pretrain_end_to_end_writes_run_tree_and_loads(tmp_path):
    cfg = tiny_config(tmp_path, eos_tail=True)
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


def test_resume_reproduces_uninterrupted_losses(tmp_path):
    cfg = tiny_config(tmp_path)
    full, split = tmp_path / "full", tmp_path / "split"
    args = ["pretrain", "--config", str(cfg), "--no-progress", "--device", "cpu"]
    assert main([*args, "--out", str(full), "--max-steps", "7"]) == 0
    assert main([*args, "--out", str(split), "--max-steps", "4"]) == 0
    assert main([*args, "--out", str(split), "--max-steps", "7"]) == 0
    a, b = metrics(full), metrics(split)
    assert [r["step"] for r in b] == [str(s) for s in range(1, 8)]
    assert [(r["loss"], r["gate_acc"], r["stage"]) for r in a] == [(r["loss"], r["gate_acc"], r["stage"]) for r in b]


def test_ar_twin_and_dream_like_from_ar(tmp_path):
    ar_cfg = tiny_config(tmp_path, name="ar", objective="ar")
    ar = tmp_path / "ar"
    assert main(["pretrain", "--config", str(ar_cfg), "--out", str(ar), "--max-steps", "3", "--no-progress"]) == 0
    dream_cfg = tiny_config(tmp_path, name="dream", shift=True, init_from=str(ar / "final"))
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


def test_other_config_in_run_dir_is_refused(tmp_path):
    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(tiny_config(tmp_path)), "--out", str(out), "--max-steps", "1", "--no-progress"]) == 0
    other = tiny_config(tmp_path, lr=0.5)
    assert main(["pretrain", "--config", str(other), "--out", str(out), "--max-steps", "2", "--no-progress"]) == 2


def test_bad_configs_raise_masktax_error(tmp_path):
    with pytest.raises(MasktaxError):
        PretrainConfig(objective="bert")
    with pytest.raises(MasktaxError):
        PretrainConfig.from_dict({"lr_typo": 1})
    with pytest.raises(MasktaxError):
        load_config(tmp_path / "missing.json")
    assert main(["pretrain", "--config", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x")]) == 2


def test_shipped_configs_load_and_share_dimensions():
    cfgs = {p.stem: load_config(p) for p in sorted((REPO / "configs" / "embedded").glob("*.json"))}
    assert {"mdlm", "ar", "mdlm_dream"} <= set(cfgs)
    assert len({c.model for c in cfgs.values()}) == 1  # identical architecture dimensions
    assert cfgs["ar"].objective == "ar" and cfgs["mdlm_dream"].shift and cfgs["mdlm_dream"].init_from


def test_cpu_configs_load_and_controlled_continuations_differ_in_one_choice():
    cpu = REPO / "configs" / "embedded" / "cpu"
    cfgs = {p.stem: load_config(p) for p in sorted(cpu.glob("*.json"))}
    assert {"mdlm", "ar", "mdlm_dream", "mdlm_dream_sft"} <= set(cfgs)
    expected = {"eostail": {"eos_tail"}, "noinvp": {"weighting"}, "nofocus": {"answer_focus_share"}}
    after = {"after": {"stages"}}  # the corpus choice sits in the stage spec: checked below
    for prefix, variants in (("mdlm_dream_cont_", expected), ("mdlm_branch_", expected | after)):
        raw = {p.stem.removeprefix(prefix): json.loads(p.read_text()) for p in cpu.glob(prefix + "*.json")}
        control = raw.pop("default")
        assert set(raw) == set(variants), prefix
        for key, cfg in raw.items():
            changed = {f for f in cfg.keys() | control.keys() if cfg.get(f) != control.get(f)} - {"name", "_comment"}
            assert changed == variants[key], (prefix, key)
    branch = json.loads((cpu / "mdlm_branch_after.json").read_text())["stages"]
    control = json.loads((cpu / "mdlm_branch_default.json").read_text())["stages"]
    assert len(branch) == len(control) == 1
    spec, base = branch[0]["spec"], control[0]["spec"]
    assert {f for f in spec.keys() | base.keys() if spec.get(f) != base.get(f)} == {"max_after"}


def test_gate_advances_only_after_threshold_and_min_steps():
    stages = default_stages(min_steps=100)
    st = CurriculumState()
    assert not gate(st, step=50, accuracy=0.5, stages=stages, threshold=0.85)
    assert gate(st, step=60, accuracy=0.9, stages=stages, threshold=0.85)  # S0 has no minimum
    assert st.stage == 1 and st.stage_start == 60 and st.advances == [[60, 1]]
    assert not gate(st, step=120, accuracy=1.0, stages=stages, threshold=0.85)  # only 60 steps in S1a
    assert gate(st, step=160, accuracy=0.85, stages=stages, threshold=0.85)
    st.stage = len(stages) - 1
    assert not gate(st, step=10_000, accuracy=1.0, stages=stages, threshold=0.85)  # last stage stays
    assert st.last_gate == 1.0 and len(st.gates) == 5
    assert CurriculumState.from_dict(st.to_dict()) == st


def test_replay_picks_earlier_stages_at_the_given_rate():
    rng = random.Random(0)
    st = CurriculumState(stage=3)
    picks = [pick_stage(rng, st, 0.2) for _ in range(5000)]
    assert set(picks) == {0, 1, 2, 3}
    assert abs(sum(p < 3 for p in picks) / 5000 - 0.2) < 0.03
    assert {pick_stage(rng, CurriculumState(), 0.5) for _ in range(100)} == {0}


def test_default_stages_remove_the_repeat_gently_and_round_trip():
    stages = default_stages()
    assert [s.spec.repeat_prob for s in stages[:3]] == [1.0, 0.5, 0.0]
    assert stages[-1].spec.max_tokens >= 1200 and stages[-1].spec.max_tail == 200
    assert all(Stage.from_dict(s.to_dict()) == s for s in stages)


def test_lr_schedule():
    kw = {"lr": 1.0, "warmup": 10, "max_steps": 110, "min_ratio": 0.1}
    assert lr_at(0, schedule="constant", **kw) == pytest.approx(0.1)
    assert lr_at(50, schedule="constant", **kw) == 1.0
    assert lr_at(10, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_at(110, schedule="cosine", **kw) == pytest.approx(0.1)
    assert lr_at(60, schedule="cosine", **kw) == pytest.approx(0.55)
    wsd = {**kw, "schedule": "wsd", "decay_start": 50, "decay_steps": 20}
    assert lr_at(49, **wsd) == 1.0 and lr_at(50, **wsd) == pytest.approx(1.0)
    assert lr_at(60, **wsd) == pytest.approx(0.55) and lr_at(70, **wsd) == pytest.approx(0.1)
    assert lr_at(500, **wsd) == pytest.approx(0.1)


def test_an_anneal_added_on_resume_is_kept_and_cannot_rewrite_history(tmp_path):
    cfg = tiny_config(tmp_path)
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


def test_pack_round_trip_degrades_to_fit(tmp_path):
    from masktax.training.pack import pack_run, unpack_run

    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(tiny_config(tmp_path)), "--out", str(out), "--max-steps", "3", "--no-progress"]) == 0
    assert pack_run(out, tmp_path / "a.tar.gz") == "exact"
    size = (tmp_path / "a.tar.gz").stat().st_size
    assert pack_run(out, tmp_path / "b.tar.gz", max_bytes=int(size * 0.8)) != "exact"
    run = unpack_run(tmp_path / "b.tar.gz", tmp_path / "unpacked")
    assert (run / "final" / "model.safetensors").is_file() and (run / "step-000003" / "state.json").is_file()
    opt = torch.load(run / "step-000003" / "optimizer.pt", weights_only=True) if (run / "step-000003" / "optimizer.pt").exists() else None
    assert opt is None or all(v.dtype == torch.bfloat16 for s in opt["state"].values() for k, v in s.items() if k != "step")


def test_export_script_copies_final_with_training_record(tmp_path):
    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(tiny_config(tmp_path)), "--out", str(out), "--max-steps", "2", "--no-progress"]) == 0
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


def test_solved_needs_patience_consecutive_final_stage_gates():
    from masktax.training.curriculum import solved

    state = CurriculumState(gates=[[2, 0, 1.0], [4, 1, 0.96], [6, 1, 0.97]])
    assert not solved(state, n_stages=2, threshold=0.95, patience=3)  # the first gate was on S0
    assert solved(state, n_stages=2, threshold=0.95, patience=2)
    assert not solved(state, n_stages=2, threshold=0.97, patience=2)  # 0.96 < 0.97
    assert not solved(state, n_stages=2, threshold=None, patience=1)


def test_stop_gate_ends_the_run_once_the_last_stage_is_solved(tmp_path):
    """A single-stage curriculum whose gate always passes (stop_gate 0) stops at the patience-th gate."""
    cfg = tiny_config(tmp_path, stages=[{"name": "S4", "spec": {"n_examples": [2, 3], "max_tokens": 96}}])
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(cfg), "--out", str(out), "--max-steps", "50", "--no-progress", "--device", "cpu",
            "--stop-gate", "0"]
    assert main(args) == 0
    state = json.loads((out / "final" / "training_state.json").read_text())
    assert state["step"] == 3 * 2  # gate_every 2, patience 3
    assert main(args) == 0  # rerunning a solved run does not train further
    assert json.loads((out / "final" / "training_state.json").read_text())["step"] == 6


def test_snapshot_script_equals_final_at_the_same_step(tmp_path):
    from masktax.models import load

    out = tmp_path / "run"
    assert main(["pretrain", "--config", str(tiny_config(tmp_path)), "--out", str(out), "--max-steps", "3", "--no-progress"]) == 0
    mod = load_script("snapshot_run")
    assert mod.main([str(out), str(tmp_path / "snap")]) == 0
    a, b = load(str(out / "final")), load(str(tmp_path / "snap"))
    ids = torch.tensor([[5, 6, 7, 8, a.mask_id]])
    with torch.no_grad():
        torch.testing.assert_close(a.logits(ids), b.logits(ids))


def test_suite_accuracy_is_logged_and_can_stop_the_run(tmp_path):
    """At final-stage gates the probe suite is scored (suite_eval.csv); stop_on suite uses it."""
    cfg = tiny_config(tmp_path, stages=[{"name": "S4", "spec": {"n_examples": [2, 3], "max_tokens": 96}}])
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(cfg), "--out", str(out), "--max-steps", "4", "--no-progress", "--device", "cpu",
            "--suite-items", "1"]
    assert main(args) == 0
    rows = list(csv.DictReader((out / "suite_eval.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(0.0 <= float(r["suite_acc"]) <= 1.0 and r["n_items"] == "1" for r in rows)
    out2 = tmp_path / "run2"
    args2 = ["pretrain", "--config", str(cfg), "--out", str(out2), "--max-steps", "50", "--no-progress", "--device",
             "cpu", "--suite-items", "1", "--stop-on", "suite", "--stop-gate", "0"]
    assert main(args2) == 0
    assert json.loads((out2 / "final" / "training_state.json").read_text())["step"] == 6  # patience 3 x gate_every 2
    bad = ["pretrain", "--config", str(cfg), "--out", str(tmp_path / "run3"), "--stop-on", "suite", "--device", "cpu"]
    assert main(bad) == 2  # stop_on suite needs --suite-items


def test_suite_accuracy_of_a_model_that_always_answers_a():
    """suite_accuracy reads the answer position like the accuracy probe: always-A scores exactly 1/3."""
    from masktax.embedded.tokenizer import build_tokenizer
    from masktax.prompts.encode import letter_token_ids
    from masktax.tasks.words import all_words
    from masktax.training.suite_eval import suite_accuracy

    tok = build_tokenizer(all_words())
    letters = letter_token_ids(tok)

    class AlwaysA(torch.nn.Module):
        """Every position predicts the letter A."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids=None, attention_mask=None, **_):
            z = torch.zeros(*input_ids.shape, len(tok))
            z[..., letters[0]] = 1.0
            return type("Out", (), {"logits": z})()

    acc = suite_accuracy(AlwaysA(), tok, causal=False, shift=False, mask_id=tok.mask_token_id,
                         eos_id=tok.eos_token_id, max_length=4096, n_items=3)
    assert acc == pytest.approx(1 / 3)  # test letters come in balanced triples: 'A' is right once per 3


def test_a_run_started_before_a_config_field_existed_still_resumes(tmp_path):
    """config.json without a field added later (at its default) is the same config."""
    cfg = tiny_config(tmp_path)
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(cfg), "--out", str(out), "--max-steps", "2", "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    stored = json.loads((out / "config.json").read_text())
    del stored["mask_repeat"]
    (out / "config.json").write_text(json.dumps(stored))
    assert main(args[:5] + ["--max-steps", "3", "--no-progress", "--device", "cpu"]) == 0


def test_mask_repeat_masks_the_repeated_word_with_its_letter():
    """With the S0 stepping stone, answer-focused rows mask `B quirky` together when the letter is masked."""
    from masktax.embedded.tokenizer import build_tokenizer
    from masktax.training.batches import train_batch
    from masktax.training.corpus import Encoder, all_words
    from masktax.training.pretrain import step_loss

    tok = build_tokenizer(all_words(WORDS))
    enc = Encoder(tok)
    stage = Stage.from_dict({"name": "S0", "spec": {"n_examples": [2, 3], "distractor_share": [0, 0],
                                                    "repeat_prob": 1.0, "n_categories": 3, "rules": ["category"],
                                                    "max_tokens": 96}})
    batch = train_batch(seed=0, step=0, batch_size=4, words=WORDS, encoder=enc, stages=(stage,),
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


def test_init_from_accepts_a_shipped_embedded_name(tmp_path):
    from safetensors.torch import load_file

    from masktax.models import load
    from masktax.training.build import load_init

    ar = load("embedded-ar", device="cpu")
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(REPO / "configs" / "embedded" / "cpu" / "mdlm_dream.json"), "--out", str(out),
            "--max-steps", "1", "--no-progress", "--device", "cpu"]
    assert main([*args, "--init-from", "embedded-ar"]) == 0
    # after one step the weights are still the AR twin's (bf16 export), not a random init
    weights = load_file(str(out / "final" / "model.safetensors"))
    key = next(k for k in weights if "embed_tokens" in k)
    emb = ar.embedding_weight().float()
    assert (weights[key].float() - emb).abs().max() < 0.05 < emb.abs().max()
    with pytest.raises(MasktaxError, match="unknown model 'embedded-mdlm-nope'"):
        load_init(ar.model, "embedded-mdlm-nope")
