"""DiffusionGemma (uniform noise) through every probe that applies, from the command line, each
record checked against transformers' own `DiffusionGemmaForBlockDiffusion` run on that item alone.

The layout: the prompt ends `Answer:[` and the canvas is everything after it (the answer position
first); one-mask probes get the model's own canvas (config `canvas_length` noise tokens), masks
become canvas noise, filler keeps its dots in the canvas. Batches hold items of different prompt and
canvas lengths (auto batch size, padded), so every comparison is also batched vs alone.
"""

from __future__ import annotations

import json

import pytest
import torch
from tiny import save_tiny_checkpoint, tiny_diffusion_gemma, tiny_tokenizer

from masktax.cli.main import main
from masktax.models import load
from masktax.probes import PROBES
from masktax.probes.items import Cell, encode_cell
from masktax.prompts.encode import encode_item, filler_token_id
from masktax.prompts.render import arrange
from masktax.tasks.suite import N_RELEVANT_CONTEXT, build_suite

DATASET = "country__smallest"
CANVAS = 4  # the tiny model's config canvas_length
# probe -> its flags (small grids); unmask decodes masks, which a uniform-noise model has none of
RUNS = {
    "accuracy": [],
    "masks": ["--grid", "0,5"],
    "filler": ["--grid", "3"],
    "locality": ["--grid", "40"],
    "query-position": ["--grid", "right"],
    "context-length": ["--grid", "0"],
    "uncertainty": ["--grid", "2"],
}


@pytest.fixture(scope="module")
def dataset():
    return next(d for d in build_suite(seed=0) if d.name == DATASET)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    model = tiny_diffusion_gemma(seed=3, canvas_length=CANVAS)
    path = save_tiny_checkpoint(model, tiny_tokenizer(), tmp_path_factory.mktemp("dgemma"))
    return model, str(path)


def run(probe: str, path: str, out, *extra: str) -> list[dict]:
    args = ["probe", probe, "--model", path, "--out", str(out), "--n-items", "2", "--datasets", DATASET,
            "--no-progress", *extra]
    assert main(args) == 0
    assert (out / "summary.json").is_file() and (out / "report.md").is_file()
    return [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]


def reference(model, ids: list[int], answer_pos: int) -> torch.Tensor:
    """The answer position's logits `[V]` from DiffusionGemmaForBlockDiffusion on this item alone:
    the prompt through `input_ids`, the canvas as `decoder_input_ids`."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids[:answer_pos]]), decoder_input_ids=torch.tensor([ids[answer_pos:]]))
    return out.logits[0, 0].float()


def cell_of(probe: str, record: dict) -> Cell:
    """The probe's cell that made `record` (its series and x)."""
    module = PROBES[probe]
    opts = module.Options(**({"grid": tuple(int(v) if v.isdigit() else v for v in RUNS[probe][1].split(","))}
                             if RUNS[probe] else {}))
    return next(c for c in module.cells(opts, "uniform") if (c.series, c.x) == (record["series"], record["x"]))


@pytest.mark.parametrize("probe", list(RUNS))
def test_each_probe_scores_as_the_model_itself_does(gemma, dataset, tmp_path, probe):
    model, path = gemma
    records = run(probe, path, tmp_path / probe, *RUNS[probe])
    lm = load(path)
    tok = lm.tokenizer
    assert records and {r["model"] for r in records} == {path}
    for r in records:
        cell = cell_of(probe, r)
        item = encode_cell(lm, dataset, cell, model=path, probe=probe, seed=0, fmt="base", n_items=2)[r["index"]]
        ids, a = list(item.ids), item.answer_pos
        assert (r["n_tokens"], r["answer_pos"]) == (len(ids), a)
        context = arrange(dataset, cell.arrangement, seed=0, n_relevant=N_RELEVANT_CONTEXT,
                          n_distractor=cell.n_distractor, block_position=cell.block_position)
        plain = encode_item(tok, context, dataset.tests[r["index"]], suffix="masks", mask_id=0)
        assert ids[:a] == plain.ids[:a] and tok.decode(ids[:a]).replace(" ", "").endswith("Answer:[")
        canvas = ids[a:]  # the layout: nothing of the text follows the canvas
        if cell.suffix == "one_mask":
            assert r["suffix"] == "canvas" and len(canvas) == CANVAS
        elif cell.suffix == "filler":
            assert canvas[1:] == [filler_token_id(tok)] * cell.n_extra
        elif cell.mask_fraction is None:
            assert r["suffix"] == "canvas" and len(canvas) == 1 + cell.n_extra
        z = reference(model, ids, a)
        p = torch.softmax(z, -1)
        assert r["pred_id"] == int(z.argmax())
        assert r["p_answer"] == pytest.approx(float(p[r["answer_id"]]), rel=1e-4, abs=1e-7)
        assert r["entropy"] == pytest.approx(float(torch.special.entr(p).sum()), rel=1e-4)


def test_attribution_equals_the_models_own_embedding_gradients(gemma, dataset, tmp_path):
    model, path = gemma
    records = run("attribution", path, tmp_path / "attr", "--orderings", "1", "--questions", "1", "--n-masks", "3")
    first = next(r for r in records if "example" in r)
    lm = load(path)
    cell = Cell(series="attribution", x=3, suffix="masks", n_extra=3)
    item = encode_cell(lm, dataset, cell, model=path, probe="attribution", seed=0, fmt="base", n_items=1)[first["index"]]
    ids, a = list(item.ids), item.answer_pos
    embeds: list[torch.Tensor] = []

    def keep(_module, _inputs, out):
        out.retain_grad()
        embeds.append(out)

    hooks = [model.model.encoder.get_input_embeddings().register_forward_hook(keep),
             model.model.decoder.embed_tokens.register_forward_hook(keep)]
    try:
        z = model(input_ids=torch.tensor([ids[:a]]), decoder_input_ids=torch.tensor([ids[a:]])).logits[0, 0]
        z[int(z.argmax())].backward()
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
    scores = torch.cat([embeds[0].grad[0], embeds[1].grad[0]]).norm(dim=-1)  # [l]
    assert first["pred_id"] == int(z.argmax())
    assert first["max_score"] == pytest.approx(float(scores.max()), rel=1e-4)
    torch.testing.assert_close(torch.tensor(first["example"]["scores"]), scores / scores.max(), atol=2e-6, rtol=0)


def test_query_position_left_is_refused_in_one_line(gemma, tmp_path, capsys):
    _, path = gemma
    assert main(["probe", "query-position", "--model", path, "--out", str(tmp_path / "qp"), "--n-items", "1",
                 "--datasets", DATASET, "--no-progress", "--grid", "left,right"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "uniform-noise model whose canvas ends the prompt" in err and "--grid right" in err


@pytest.mark.parametrize(("probe", "flags"), [("query-position", []), ("query-position", ["--grid", "right,middle"]),
                                              ("unmask", ["--grid", "0"])])
def test_a_uniform_model_is_refused_before_any_model_is_scored(gemma, tmp_path, capsys, monkeypatch, probe, flags):
    """The DiffusionGemma comes second: the probe's `refuses` turns it down from its config.json before
    the first model is loaded, in one line naming it; nothing is scored, no run dir is written."""
    from tiny import tiny_checkpoint

    import masktax.probes.loading as loading

    _, path = gemma
    first = tiny_checkpoint("llada", tmp_path / "llada")
    monkeypatch.setattr(loading, "load", lambda *a, **k: pytest.fail("a model was loaded before the refusal"))
    out = tmp_path / "run"
    assert main(["probe", probe, "--model", str(first), "--model", path, "--out", str(out), "--n-items", "1",
                 "--datasets", DATASET, "--no-progress", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"masktax: error: the {probe} probe cannot score '{path}': ")
    assert "uniform-noise model" in err and not out.exists()
    if probe == "query-position":
        assert "cannot sit at the " + ("middle" if flags else "left or middle") in err and "--grid right" in err


def test_query_position_right_still_runs_a_uniform_model_after_others(gemma, tmp_path):
    """`refuses` lets `--grid right` through: an MDLM and the DiffusionGemma are both scored."""
    from tiny import tiny_checkpoint

    _, path = gemma
    first = str(tiny_checkpoint("llada", tmp_path / "llada"))
    out = tmp_path / "run"
    assert main(["probe", "query-position", "--model", first, "--model", path, "--out", str(out), "--n-items", "1",
                 "--datasets", DATASET, "--no-progress", "--grid", "right"]) == 0
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert sorted({it["model"] for it in items}) == sorted([first, path])
