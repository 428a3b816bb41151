"""run_probe on tiny random models: resume, AR references, uniform canvases, real-model alignment."""

from __future__ import annotations

import json

import pytest
import torch
from probe_helpers import probe_setup, tiny_adapter
from tiny import tiny_diffusion_gemma, tiny_dream, tiny_tokenizer

from masktax.errors import MasktaxError
from masktax.models.diffusion_gemma import DiffusionGemmaProbe
from masktax.models.loaded import LoadedModel
from masktax.probes import PROBES, RunConfig, run_probe
from masktax.probes.engine import score_items
from masktax.probes.items import Cell, encode_cell
from masktax.probes.run import select_datasets
from masktax.results.store import read_items

DATASETS = ("country__smallest", "verb__largest")


def cfg(out, models, probe="masks", **kw):
    """(probe module, RunConfig, Options): 3 items of DATASETS, the masks probe on grid 0,2,20."""
    base = dict(n_items=3, datasets=DATASETS, **({"grid": (0, 2, 20)} if probe == "masks" else {}))
    return probe_setup(probe, out, tuple(models), **{**base, **kw})


def stable(records):
    keep = ("model", "series", "x", "dataset", "index", "pred_id", "correct", "choice", "p_answer", "entropy")
    return sorted((tuple(r[k] for k in keep) for r in records), key=repr)


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, tiny_ckpts):
    models = (tiny_ckpts["llada"], tiny_ckpts["dream"])
    run_probe(*cfg(tmp_path / "full", models, batch_size=2))
    batches = []

    def crash(model, records):
        batches.append(model)
        if len(batches) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_probe(*cfg(tmp_path / "cut", models, batch_size=2), on_batch=crash)
    assert not (tmp_path / "cut" / "summary.json").exists()
    partial = list(read_items(tmp_path / "cut"))
    assert 0 < len(partial) < 2 * 3 * 2 * 3
    run_probe(*cfg(tmp_path / "cut", models, batch_size=2))
    full, cut = list(read_items(tmp_path / "full")), list(read_items(tmp_path / "cut"))
    assert len(cut) == len(full) == 2 * 3 * 2 * 3
    assert stable(cut) == stable(full)
    s_full = json.loads((tmp_path / "full" / "summary.json").read_text())
    s_cut = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert s_full["models"] == s_cut["models"]


def test_ar_model_gets_a_reference_not_sweep_points(tmp_path, tiny_ckpts):
    out = run_probe(*cfg(tmp_path / "r", (tiny_ckpts["llada"], tiny_ckpts["ar"])))
    s = json.loads((out / "summary.json").read_text())
    assert [p["x"] for p in s["models"][tiny_ckpts["llada"]]] == [0, 2, 20]
    assert s["models"][tiny_ckpts["ar"]] == []
    ref = s["references"][tiny_ckpts["ar"]]
    assert ref["applicable"] is False and ref["reference"]["x"] == 0 and ref["reference"]["n_items"] == 6
    assert "NOT APPLICABLE" in (out / "report.md").read_text()


def test_adding_a_model_to_a_run_resumes(tmp_path, tiny_ckpts):
    run_probe(*cfg(tmp_path / "r", (tiny_ckpts["llada"],)))
    run_probe(*cfg(tmp_path / "r", (tiny_ckpts["dream"],)))
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert set(s["models"]) == {tiny_ckpts["llada"], tiny_ckpts["dream"]}
    with pytest.raises(MasktaxError, match="n_items"):
        run_probe(*cfg(tmp_path / "r", (tiny_ckpts["dream"],), n_items=4))


def test_shifted_tiny_dream_is_scored_at_the_aligned_position(tmp_path):
    model = tiny_dream(seed=3)
    tok = tiny_tokenizer()
    lm = LoadedModel(name="d", model=model, tokenizer=tok, kind="mdlm", mask_id=tok.mask_token_id, shift=True,
                      max_length=4096, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id)
    config = RunConfig(models=("d",), out=str(tmp_path), n_items=2, datasets=DATASETS[:1])
    (ds,) = select_datasets(config)
    items = encode_cell(lm, ds, Cell("masks", 3, suffix="masks", n_extra=3), model="d", probe="masks",
                        seed=0, fmt="base", n_items=2)
    records = [r for b in score_items(lm, items, batch_size=2) for r in b]
    for it, r in zip(items, records, strict=True):
        assert it.ids[it.answer_pos] == tok.mask_token_id and len(it.ids) == it.answer_pos + 4
        with torch.no_grad():
            raw = model(input_ids=torch.tensor([it.ids])).logits  # [1, l, V] unshifted
        assert r["pred_id"] == int(raw[0, it.answer_pos - 1].argmax())


def uniform_canvas_items(uniform: LoadedModel, tmp_path) -> tuple[list, list]:
    """The masks probe's x = 5 items of one dataset for a uniform-noise model, encoded twice."""
    config = RunConfig(models=("u",), out=str(tmp_path), n_items=2, datasets=DATASETS[:1])
    (ds,) = select_datasets(config)
    masks = PROBES["masks"]
    cells = masks.cells(masks.Options(grid=(5,)), "uniform")

    def enc():
        return encode_cell(uniform, ds, cells[0], model="u", probe="masks", seed=0, fmt="base", n_items=2)

    return enc(), enc()


def test_uniform_models_get_seeded_canvas_tokens(tmp_path):
    tok = tiny_tokenizer()
    base = tiny_adapter("mdlm", name="l")
    uniform = LoadedModel(**{**base.__dict__, "kind": "uniform", "mask_id": None, "name": "u"})
    a, b = uniform_canvas_items(uniform, tmp_path)
    assert a == b and all(it.suffix == "canvas" for it in a)
    assert all(tok.mask_token_id not in it.ids for it in a)
    assert len(a[0].ids) == a[0].answer_pos + 6


def test_a_diffusion_gemma_gets_seeded_canvas_tokens_from_its_whole_vocabulary(tmp_path):
    """The same check on the one uniform-noise family masktax loads (its vocabulary = its embedding rows,
    so the tokens are those the earlier draw over the embedding rows gave)."""
    tok = tiny_tokenizer()
    model = DiffusionGemmaProbe(tiny_diffusion_gemma(seed=1))
    uniform = LoadedModel(name="u", model=model, tokenizer=tok, kind="uniform", mask_id=None, shift=False,
                          max_length=4096, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id)
    assert model.config.text_config.vocab_size == uniform.embedding_weight().shape[0]
    a, b = uniform_canvas_items(uniform, tmp_path)
    assert a == b and all(it.suffix == "canvas" for it in a)
    assert all(tok.mask_token_id not in it.ids for it in a)
    assert len(a[0].ids) == a[0].answer_pos + 6
    assert a[0].ids[a[0].answer_pos:] != a[1].ids[a[1].answer_pos:]  # seeded per item


def test_context_length_masks_are_twenty_percent_of_the_input(tmp_path):
    tok = tiny_tokenizer()
    lm = tiny_adapter("mdlm", name="l")
    probe, config, options = probe_setup("context-length", tmp_path, ("l",), n_items=1, datasets=DATASETS[:1],
                                         grid=(0, 10))
    (ds,) = select_datasets(config)
    cells = probe.cells(options, "mdlm")
    assert [c.series for c in cells] == ["2-masks", "2-masks", "20%-masks", "20%-masks"]
    for cell in cells:
        (it,) = encode_cell(lm, ds, cell, model="l", probe="context-length", seed=0, fmt="base", n_items=1)
        n_masks = sum(t == tok.mask_token_id for t in it.ids[it.answer_pos:])
        expected = 2 if cell.series == "2-masks" else max(1, int(0.2 * it.answer_pos + 0.5))
        assert n_masks == expected == len(it.ids) - it.answer_pos


def test_locality_block_moves_and_query_positions(tmp_path):
    lm = tiny_adapter("mdlm", name="l")
    out = run_probe(PROBES["locality"], RunConfig(models=("l",), out=str(tmp_path / "loc"), n_items=2,
                                                  datasets=DATASETS, progress=False),
                    PROBES["locality"].Options(grid=(0, 40)), loaded={"l": lm})
    s = json.loads((out / "summary.json").read_text())
    assert [p["x"] for p in s["models"]["l"]] == [0, 40]
    out = run_probe(PROBES["query-position"], RunConfig(models=("l",), out=str(tmp_path / "q"), n_items=2,
                                                        datasets=DATASETS, progress=False), loaded={"l": lm})
    s = json.loads((out / "summary.json").read_text())
    assert [p["x"] for p in s["models"]["l"]] == ["left", "middle", "right"]
    assert (out / "plots" / "query-position.png").stat().st_size > 1000


def test_run_probe_takes_only_the_probes_own_options(tmp_path):
    cfg = RunConfig(models=("l",), out=str(tmp_path / "r"), n_items=1, datasets=DATASETS[:1], progress=False)
    with pytest.raises(MasktaxError, match=r"the masks probe takes masktax\.probes\.masks\.Options, got masktax\.probes\.filler\.Options"):
        run_probe(PROBES["masks"], cfg, PROBES["filler"].Options(grid=(0,)), loaded={"l": tiny_adapter("mdlm")})
    assert not (tmp_path / "r").exists()  # refused before the run dir is made


def test_probes_in_a_shared_scores_block_write_the_same_runs(tmp_path, one_thread):
    """The demo's block: query-position's `right` cell reuses accuracy's batches and filler x = 0 those of
    masks x = 0 (the same prompts: nothing appended), byte for byte."""
    from masktax.probes.engine import shared_scores

    lm = load_embedded("embedded-mdlm")
    runs = (("accuracy", {}), ("masks", {"grid": (0, 2)}), ("filler", {"grid": (0, 2)}), ("query-position", {}))

    def run_all(root, count):
        for name, options in runs:
            probe = PROBES[name]
            config = RunConfig(models=(lm.name,), out=str(root / name), n_items=3, datasets=DATASETS, progress=False,
                               batch_size=3)
            run_probe(probe, config, probe.Options(**options), loaded={lm.name: lm}, report=False)
        return {name: (root / name / "items.jsonl").read_bytes() for name, _ in runs}

    calls = []
    handle = lm.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        alone = run_all(tmp_path / "alone", calls)
        n_alone, calls[:] = len(calls), []
        with shared_scores():
            shared = run_all(tmp_path / "shared", calls)
    finally:
        handle.remove()
    assert shared == alone
    assert n_alone - len(calls) == 4  # filler x = 0 and query-position right: 2 batches of 3 each


def load_embedded(name):
    from masktax.models import load

    return load(name)
