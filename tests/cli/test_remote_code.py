"""A checkpoint's own code runs only with `--trust-remote-code` on the command line.

The checkpoint here has a custom `model_type` that transformers does not know and an `auto_map`
pointing at its own `modeling_marker.py`, which creates a marker file the moment it is imported
(and defines a small working masked LM). Every command that loads a model or a run dir is run on
it without the flag: each must exit 2 with one line, and the marker must not exist afterwards;
`report` and `compare` read stored results only, so they never import it either. With the flag,
`probe accuracy` imports the code (the marker appears) and runs to its report.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from remote_toy import TOY_MODEL
from safetensors.torch import save_file
from tiny import tiny_checkpoint, tiny_tokenizer

from masktax.cli.main import main

DATASETS = "country__smallest"
MODEL_TYPE = "masktax_marker_lm"
HIDDEN = 8

MODELING = '''
from pathlib import Path

Path({marker!r}).write_text("imported")

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput


class MarkerConfig(PretrainedConfig):
    model_type = {model_type!r}

    def __init__(self, vocab_size=8, hidden=8, mask_token_id=None, **kwargs):
        self.vocab_size, self.hidden, self.mask_token_id = vocab_size, hidden, mask_token_id
        super().__init__(**kwargs)

''' + TOY_MODEL.format(name="MarkerModel", config="MarkerConfig")


def remote_checkpoint(path: Path, marker: Path) -> Path:
    """A loadable checkpoint whose model needs its own code; building it imports none of that code."""
    tok = tiny_tokenizer()
    path.mkdir(parents=True)
    (path / "modeling_marker.py").write_text(MODELING.format(marker=str(marker), model_type=MODEL_TYPE))
    (path / "config.json").write_text(json.dumps({
        "model_type": MODEL_TYPE, "architectures": ["MarkerModel"], "vocab_size": len(tok), "hidden": HIDDEN,
        "mask_token_id": tok.mask_token_id, "max_position_embeddings": 4096,
        "auto_map": {"AutoConfig": "modeling_marker.MarkerConfig", "AutoModel": "modeling_marker.MarkerModel"},
    }))
    g = torch.Generator().manual_seed(0)
    save_file({"emb.weight": torch.randn(len(tok), HIDDEN, generator=g),
               "head.weight": torch.randn(len(tok), HIDDEN, generator=g), "head.bias": torch.zeros(len(tok))},
              str(path / "model.safetensors"), metadata={"format": "pt"})
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The remote-code checkpoint, its marker, a fine-tuning run dir naming it, instruction data, and a
    probe run whose model directory now holds the remote-code checkpoint."""
    root = tmp_path_factory.mktemp("remote_code")
    marker = root / "IMPORTED"
    # A unique directory name: transformers caches a local checkpoint's code under that name.
    ckpt = remote_checkpoint(root / "masktax_marker_ckpt", marker)
    run = root / "ft_run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "finetune_config.json").write_text(json.dumps({"model": str(ckpt), "trust_remote_code": True}))
    (run / "final" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    save_file({"x": torch.zeros(1)}, str(run / "final" / "adapter_model.safetensors"))
    data = root / "data.jsonl"
    assert main(["finetune", "make-data", str(data), "--n", "8"]) == 0
    # A real probe run of a native model, whose model directory is then swapped for the remote one:
    # rebuilding or comparing it must not load (let alone import) the model it names.
    swapped = root / "swapped_model"
    tiny_checkpoint("llada", swapped)
    probe_run = root / "probe_run"
    assert main(["probe", "accuracy", "--model", str(swapped), "--out", str(probe_run), "--n-items", "1",
                 "--datasets", DATASETS, "--no-progress", "--device", "cpu"]) == 0
    shutil.rmtree(swapped)
    shutil.copytree(ckpt, swapped)
    return {"root": root, "ckpt": str(ckpt), "marker": marker, "run": str(run), "data": str(data),
            "probe_run": str(probe_run)}


def probe(name: str, extra: tuple[str, ...] = ()) -> list[str]:
    return ["probe", name, "--model", "CKPT", "--out", "OUT", "--n-items", "1", "--datasets", DATASETS,
            "--no-progress", "--device", "cpu", *extra]


# (command line, what the one error line says); CKPT, OUT, RUN, DATA, PROBE_RUN are filled in.
REFUSED = {
    "probe accuracy": (probe("accuracy"), "--trust-remote-code"),
    "probe masks": (probe("masks", ("--grid", "0,1")), "--trust-remote-code"),
    "probe filler": (probe("filler", ("--grid", "0,1")), "--trust-remote-code"),
    "probe unmask": (probe("unmask"), "--trust-remote-code"),
    "probe attribution": (probe("attribution"), "--trust-remote-code"),
    "probe uncertainty": (probe("uncertainty"), "--trust-remote-code"),
    "probe resumes a run": (["probe", "accuracy", "--model", "SWAPPED", "--out", "PROBE_RUN", "--n-items", "1",
                             "--datasets", DATASETS, "--no-progress", "--device", "cpu"], "--trust-remote-code"),
    "generate": (["generate", "--model", "CKPT", "--prompt", "Answer:[", "--gen-length", "4", "--device", "cpu"],
                 "--trust-remote-code"),
    "suite show": (["suite", "show", "--model", "CKPT"], "--trust-remote-code"),
    "finetune": (["finetune", "--model", "CKPT", "--data", "DATA", "--out", "OUT", "--max-steps", "1",
                  "--device", "cpu", "--no-progress"], "--trust-remote-code"),
    "finetune merge": (["finetune", "merge", "RUN", "OUT"], "--trust-remote-code"),
    "train-sm": (["train-sm", "--init-from", "CKPT", "--out", "OUT", "--max-steps", "1", "--device", "cpu",
                  "--no-progress"], "--trust-remote-code"),
    "train-sm eval": (["train-sm", "eval", "--model", "CKPT", "--out", "OUT"], "--trust-remote-code"),
    "report on the checkpoint dir": (["report", "CKPT"], ""),
    "compare the checkpoint dirs": (["compare", "CKPT", "CKPT", "--label", "a", "--label", "b", "--out", "OUT"], ""),
}


def fill(args: list[str], world: dict, out: Path) -> list[str]:
    names = {"CKPT": world["ckpt"], "OUT": str(out), "RUN": world["run"], "DATA": world["data"],
             "PROBE_RUN": world["probe_run"], "SWAPPED": str(world["root"] / "swapped_model")}
    return [names.get(a, a) for a in args]


@pytest.mark.parametrize("command", list(REFUSED))
def test_remote_code_is_refused_without_the_flag(world, tmp_path, capsys, command):
    args, says = REFUSED[command]
    code = main(fill(args, world, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("masktax: error: ") and says in err, err
    assert not world["marker"].exists()
    assert not [m for m in sys.modules if "masktax_marker_ckpt" in m]


@pytest.mark.parametrize("args", [["report", "PROBE_RUN"], ["compare", "PROBE_RUN", "PROBE_RUN", "--label", "a", "--label", "b", "--out", "OUT"]])
def test_report_and_compare_never_load_the_runs_models(world, tmp_path, capsys, args):
    assert main(fill(args, world, tmp_path / "out")) == 0, capsys.readouterr().err
    assert not world["marker"].exists()


def test_with_the_flag_the_checkpoint_code_runs(world, tmp_path, capsys):
    """Last in this module: the import is cached for the rest of the process."""
    args = fill(probe("accuracy", ("--trust-remote-code",)), world, tmp_path / "out")
    code = main(args)
    assert world["marker"].read_text() == "imported"
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "report.md").is_file()
