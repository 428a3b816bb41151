"""Bad input to the model-loading commands, as a table: `generate`, `suite show`, `suite export`,
`models`, and damaged or foreign checkpoints loaded through `probe accuracy --model DIR`.

Each case must exit 2 with exactly one stderr line `masktax: error: ...` (no traceback, no library
progress bar before it), print nothing to stdout, and leave no output that looks complete (no
summary.json / report.md of a probe run, no manifest.json of an export, a file given as --out
unchanged). Damaged checkpoints are tiny ones from `masktax.models.tiny`, copied and then broken.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny import tiny_checkpoint

from masktax.cli.main import main

DATASETS = "country__smallest"


def _write(name: str, data: str | bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        target = path / name
        target.write_bytes(data) if isinstance(data, bytes) else target.write_text(data)
    return damage


def _truncate(name: str, keep: int) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        (path / name).write_bytes((path / name).read_bytes()[:keep])
    return damage


def _edit_config(**changes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        cfg = json.loads((path / "config.json").read_text())
        cfg.update(changes)
        (path / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if v is not None}))
    return damage


def _pickle_only(weights: str, pickle_name: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        tensors = load_file(path / weights)
        (path / weights).unlink()
        torch.save(tensors, path / pickle_name)
    return damage


def _edit_tensors(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        tensors = load_file(path / "model.safetensors")
        change(tensors)
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return damage


def _shard_outside(path: Path) -> None:
    tensors = load_file(path / "model.safetensors")
    (path / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": dict.fromkeys(tensors, "../elsewhere/model.safetensors")}
    (path / "model.safetensors.index.json").write_text(json.dumps(index))


def _remove(*names: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        for name in names:
            (path / name).unlink(missing_ok=True)
    return damage


Q_PROJ = "model.layers.0.self_attn.q_proj.weight"
# name -> (family of the tiny checkpoint, how to damage its copy)
DAMAGED = {
    "empty-weights": ("llada", _write("model.safetensors", b"")),
    "random-weights": ("dream", _write("model.safetensors", bytes(range(256)) * 40)),
    "truncated-weights": ("ar", _truncate("model.safetensors", 4000)),
    "header-only-weights": ("llada", _truncate("model.safetensors", 8)),
    "config-array": ("llada", _write("config.json", "[1, 2]")),
    "config-number": ("dream", _write("config.json", "3")),
    "config-not-json": ("ar", _write("config.json", "{model_type: llada")),
    "config-not-utf8": ("llada", _write("config.json", b'{"model_type": "\xff"}')),
    "config-no-family": ("llada", _edit_config(model_type=None, architectures=None)),
    "config-missing-size": ("dream", _edit_config(hidden_size=None)),
    "config-field-type": ("llada", _edit_config(d_model="wide")),
    "config-zero-heads": ("dream", _edit_config(num_attention_heads=0)),
    "config-ar-field-type": ("ar", _edit_config(hidden_size="x")),
    "config-architectures-number": ("llada", _edit_config(architectures=5)),
    "no-config": ("llada", _remove("config.json")),
    "pickle-llada": ("llada", _pickle_only("model.safetensors", "pytorch_model.bin")),
    "pickle-ar": ("ar", _pickle_only("model.safetensors", "pytorch_model.bin")),
    "shard-outside": ("llada", _shard_outside),
    "ar-missing-tensor": ("ar", _edit_tensors(lambda t: t.pop(Q_PROJ))),
    "ar-wrong-shape": ("ar", _edit_tensors(lambda t: t.__setitem__(Q_PROJ, torch.zeros(3, 3)))),
    "tokenizer-not-json": ("llada", _write("tokenizer.json", "{broken")),
    "tokenizer-foreign": ("llada", _write("tokenizer.json", '{"version": "1.0", "model": {"type": "Nope"}}')),
    "no-tokenizer": ("llada", _remove("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")),
}
# name -> how to damage a copy of the LoRA run's final/
DAMAGED_RUNS = {
    "adapter-pickle": _pickle_only("adapter_model.safetensors", "adapter_model.bin"),
    "adapter-truncated": _truncate("adapter_model.safetensors", 100),
    "adapter-config-array": _write("adapter_config.json", "[]"),
}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, lora_run) -> dict[str, str]:
    root = tmp_path_factory.mktemp("damaged")
    base = {fam: tiny_checkpoint(fam, root / f"base-{fam}") for fam in ("llada", "dream", "ar")}
    paths = {f"base-{fam}": str(p) for fam, p in base.items()}
    for name, (fam, damage) in DAMAGED.items():
        shutil.copytree(base[fam], root / name)
        damage(root / name)
        paths[name] = str(root / name)
    for name, damage in DAMAGED_RUNS.items():
        shutil.copytree(lora_run, root / name)
        damage(root / name / "final")
        paths[name] = str(root / name)
    (root / "a-file").write_text("not a checkpoint\n")
    paths["a-file"] = str(root / "a-file")
    (root / "prompt-latin1.txt").write_bytes("Réponse: caf\xe9".encode("latin-1"))
    paths["prompt-latin1"] = str(root / "prompt-latin1.txt")
    return paths


def probe(model: str, *extra: str) -> list[str]:
    return ["probe", "accuracy", "--model", model, "--out", "{out}", "--n-items", "1", "--datasets", DATASETS,
            "--no-progress", "--device", "cpu", *extra]


GEN = ["generate", "--gen-length", "4", "--steps", "2", "--block-length", "4"]
NO_CUDA = {"is_available": False}
ONE_GPU = {"is_available": True, "device_count": 1}
# id -> (argv with {name} placeholders, regex the error line matches, CUDA as the test pretends it is)
CASES: dict[str, tuple[list[str], str, dict]] = {
    # generate
    "generate non-UTF-8 --prompt-file": (
        [*GEN, "--model", "{base-llada}", "--prompt-file", "{prompt-latin1}"],
        r"prompt file '.*prompt-latin1\.txt' is not UTF-8 text", {}),
    "generate --prompt-file is a directory": (
        [*GEN, "--model", "{base-llada}", "--prompt-file", "{base-llada}"], r"prompt file '.*' is not a file", {}),
    "generate --device cuda without a GPU": (
        [*GEN, "--model", "{base-llada}", "--prompt", "x", "--device", "cuda"],
        r"device 'cuda' requested but CUDA is not available", NO_CUDA),
    "generate --device cuda:3 with one GPU": (
        [*GEN, "--model", "{base-llada}", "--prompt", "x", "--device", "cuda:3"],
        r"device 'cuda:3' requested but this machine has 1 CUDA device", ONE_GPU),
    "generate --device gpu": ([*GEN, "--model", "{base-llada}", "--prompt", "x", "--device", "gpu"],
                              r"unknown device 'gpu'", {}),
    "generate --device meta": ([*GEN, "--model", "{base-llada}", "--prompt", "x", "--device", "meta"],
                               r"unsupported device 'meta'", {}),
    "generate --model ''": ([*GEN, "--model", "", "--prompt", "x"], r"the model name is empty", {}),
    "generate --model FILE": ([*GEN, "--model", "{a-file}", "--prompt", "x"], r"is a file; pass the checkpoint", {}),
    "generate truncated weights": ([*GEN, "--model", "{header-only-weights}", "--prompt", "x"],
                                   r"model\.safetensors' is not a readable safetensors file \(", {}),
    "generate pickle-only checkpoint": ([*GEN, "--model", "{pickle-llada}", "--prompt", "x"],
                                        r"pytorch_model\.bin' is a pickle file; masktax loads weights only from safetensors",
                                        {}),
    "generate --gen-length 0": (["generate", "--model", "{base-llada}", "--prompt", "x", "--gen-length", "0"],
                                r"--gen-length must be at least 1, got 0", {}),
    # an AR model decodes left to right (tests/cli/test_format_auto.py); soft-masking has no masks to feed back
    "generate an AR model with soft-masking": ([*GEN, "--model", "{base-ar}", "--prompt", "x", "--soft-mask",
                                                "--omega-s", "0.5"],
                                               r"soft-masking needs masks to feed back", {}),
    # suite show
    "suite show broken tokenizer.json": (["suite", "show", "--model", "{tokenizer-not-json}"],
                                         r"could not load the tokenizer of '.*tokenizer-not-json'", {}),
    "suite show foreign tokenizer.json": (["suite", "show", "--model", "{tokenizer-foreign}"],
                                          r"could not load the tokenizer of '.*tokenizer-foreign'", {}),
    "suite show no tokenizer files": (["suite", "show", "--model", "{no-tokenizer}"], r"ships no tokenizer files", {}),
    "suite show config.json an array": (["suite", "show", "--model", "{config-array}"],
                                        r"config\.json' holds an array, not a JSON object", {}),
    "suite show config.json not UTF-8": (["suite", "show", "--model", "{config-not-utf8}"],
                                         r"config\.json' is not UTF-8 text", {}),
    "suite show --model ''": (["suite", "show", "--model", ""], r"the model name is empty", {}),
    "suite show --model FILE": (["suite", "show", "--model", "{a-file}"], r"is a file", {}),
    # suite export
    "suite export onto an existing file": (["suite", "export", "{a-file}", "--n-test", "2"],
                                           r"exists and is not a directory", {}),
    "suite export under a file": (["suite", "export", "{a-file}/sub", "--n-test", "2"], r"Not a directory", {}),
    "suite export where manifest.json is a directory": (["suite", "export", "{out}", "--n-test", "2"],
                                                        r"manifest\.json is a directory; cannot write", {}),
    "suite export --n-test 0": (["suite", "export", "{out}", "--n-test", "0"], r"n_test|test points", {}),
    # models
    "models with an argument": (["models", "LLaDA"], r"unexpected extra argument", {}),
    "models --json": (["models", "--json"], r"No such option: --json", {}),
    # damaged checkpoints through probe accuracy
    "probe empty model.safetensors": (probe("{empty-weights}"), r"is not a readable safetensors file \(", {}),
    "probe random-byte model.safetensors": (probe("{random-weights}"), r"is not a readable safetensors file \(", {}),
    "probe truncated model.safetensors (AR)": (probe("{truncated-weights}"), r"is not a readable safetensors file", {}),
    "probe config.json an array": (probe("{config-array}"), r"config\.json' holds an array, not a JSON object", {}),
    "probe config.json a number": (probe("{config-number}"), r"config\.json' holds a number, not a JSON object", {}),
    "probe config.json invalid JSON": (probe("{config-not-json}"), r"config\.json' is not valid JSON", {}),
    "probe config.json not UTF-8": (probe("{config-not-utf8}"), r"config\.json' is not UTF-8 text", {}),
    "probe config.json names no family": (probe("{config-no-family}"), r"config\.json': unsupported model_type", {}),
    "probe config.json lacks a size": (probe("{config-missing-size}"), r"config\.json': field 'hidden_size' is missing",
                                       {}),
    "probe config field of the wrong type": (probe("{config-field-type}"),
                                             r"config\.json': field 'd_model' should be an integer", {}),
    "probe config with zero heads": (probe("{config-zero-heads}"), r"field 'num_attention_heads' must be a positive", {}),
    "probe AR config field of the wrong type": (probe("{config-ar-field-type}"),
                                                r"could not load '.*' as a causal LM: .*hidden_size", {}),
    "probe architectures a number": (probe("{config-architectures-number}"), r"field 'architectures' should be", {}),
    "probe directory without config.json": (probe("{no-config}"), r"no config\.json in", {}),
    "probe pickle-only LLaDA": (probe("{pickle-llada}"), r"pytorch_model\.bin' is a pickle file; masktax loads", {}),
    "probe pickle-only AR": (probe("{pickle-ar}"), r"pytorch_model\.bin' is a pickle file; masktax loads", {}),
    "probe shard outside the checkpoint": (probe("{shard-outside}"), r"outside the checkpoint directory", {}),
    "probe AR checkpoint missing a tensor": (probe("{ar-missing-tensor}"), r"lacks tensor '" + re.escape(Q_PROJ), {}),
    "probe AR tensor of the wrong shape": (probe("{ar-wrong-shape}"), r"has shape \(3, 3\), config implies", {}),
    "probe broken tokenizer.json": (probe("{tokenizer-not-json}"), r"could not load the tokenizer", {}),
    "probe pickled LoRA adapter": (probe("{base-llada}", "--finetune", "{adapter-pickle}"),
                                   r"adapter_model\.bin' is a pickle file; masktax loads", {}),
    "probe truncated LoRA adapter": (probe("{base-llada}", "--finetune", "{adapter-truncated}"),
                                     r"adapter_model\.safetensors' is not a readable safetensors file", {}),
    "probe adapter_config.json an array": (probe("{base-llada}", "--finetune", "{adapter-config-array}"),
                                           r"adapter_config\.json' holds an array", {}),
    "probe --device cuda:1 without a GPU": (probe("{base-llada}")[:-2] + ["--device", "cuda:1"],
                                            r"device 'cuda:1' requested but CUDA is not available", NO_CUDA),
}


def fill(args: list[str], paths: dict[str, str]) -> list[str]:
    return [a.format(**paths) for a in args]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_no_complete_output(ckpts, tmp_path, capsys, monkeypatch, case):
    args, message, cuda = CASES[case]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, value in cuda.items():
        monkeypatch.setattr(torch.cuda, name, lambda value=value: value)
    out = tmp_path / "out"
    if "manifest.json is a directory" in case:
        (out / "manifest.json").mkdir(parents=True)
    before = Path(ckpts["a-file"]).read_text()
    code = main(fill(args, {**ckpts, "out": str(out)}))
    stdout, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err and "weights_only" not in err
    assert err.count("\n") == 1 and err.startswith("masktax: error: "), err
    assert re.search(message, err), err
    assert stdout == ""
    assert not (out / "summary.json").exists() and not (out / "report.md").exists()
    assert not (out / "manifest.json").is_file()
    assert Path(ckpts["a-file"]).read_text() == before


def test_the_undamaged_checkpoints_load_and_run_quietly(ckpts, tmp_path, capsys):
    """The errors above come from the damage, not the fixture; and a load that works prints none of
    transformers' progress bars or notices ("Loading weights", load reports)."""
    for fam in ("llada", "dream", "ar"):
        code = main(fill(probe(f"{{base-{fam}}}"), {**ckpts, "out": str(tmp_path / fam)}))
        stdout, err = capsys.readouterr()
        assert code == 0 and err == "", err
        assert stdout.startswith("masktax: accuracy done")
        assert os.path.isfile(tmp_path / fam / "report.md")
