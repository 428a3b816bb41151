"""Bad input to the training commands, as a table: `pretrain`, `pretrain snapshot`, `finetune`,
`finetune make-data`, `finetune merge`, `train-sm` and `train-sm eval`.

Each case must exit 2 with exactly one stderr line `masktax: error: ...` (no traceback), print nothing
to stdout, and leave nothing half-written that looks complete: no final/, no snapshot, no
temporary file (`*.tmp*`) anywhere, a file given as an output unchanged. The cases cover the config
files (one validation path: each field's type against the config dataclass), consent (a config file
that sets trust_remote_code is refused: only the command line's --trust-remote-code grants it), and
the environment (an output path that is a file or a directory, data that is not UTF-8 or not JSON).
Then: a start that failed before training does not block the corrected command.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tiny import tiny_checkpoint

from masktax.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = {
    "animals": ["cat", "dog", "horse", "sheep", "goat", "mouse"],
    "fruits": ["apple", "pear", "plum", "grape", "lemon", "mango"],
    "colours": ["red", "blue", "green", "yellow", "purple", "orange"],
    "countries": ["France", "Japan", "Peru", "Chile", "Kenya", "Spain"],
}
NOT_UTF8 = b'{"question": "caf\xe9", "response": "ok"}\n'  # Latin-1, as an editor on Windows may save it


class Setup:
    """Writes a case's input files under `root`; `assets` are the shared tiny model and word list."""

    def __init__(self, root: Path, assets: dict[str, Path]) -> None:
        self.root, self.assets = root, assets

    def file(self, name: str, data: str | bytes) -> str:
        path = self.root / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return str(path)

    def pretrain_config(self, **changes) -> str:
        cfg = {
            "name": "tiny", "words_file": str(self.assets["words"]),
            "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "n_kv_heads": 2, "d_ff": 64},
            "batch_size": 3, "gate_every": 2, "gate_size": 6, "save_every": 3, "warmup_steps": 2,
            "stages": [{"name": "S0", "spec": {"n_examples": [2, 3], "distractor_share": [0, 0], "repeat_prob": 1.0,
                                               "n_categories": 3, "rules": ["category"], "max_tokens": 96}}],
        }
        return self.file("pretrain.json", json.dumps({**cfg, **changes}))

    def finetune_config(self, **changes) -> str:
        cfg = {"model": str(self.assets["llada"]), "data": "synthetic", "synthetic_n": 20, "max_context": 96,
               "min_masks": 4, "max_masks": 16, "batch_size": 2, "grad_accum": 1, "lora_rank": 4, "lr": 1e-3}
        return self.file("finetune.json", json.dumps({**cfg, **changes}))

    def sm_config(self, **changes) -> str:
        cfg = {"init_from": str(self.assets["llada"]), "batch_size": 2, "max_steps": 1, "data": "synthetic",
               "max_length": 96}
        return self.file("sm.json", json.dumps({**cfg, **changes}))

    def run_dir(self, name: str, config: dict | None = None) -> str:
        """A directory holding config.json (a run that never reached a checkpoint)."""
        path = self.root / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps(config if config is not None else {"name": "tiny"}))
        return str(path)

    def directory(self, name: str) -> str:
        (self.root / name).mkdir()
        (self.root / name / "keep.txt").write_text("mine\n")
        return str(self.root / name)


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("assets")
    (root / "words.json").write_text(json.dumps(WORDS))
    return {"words": root / "words.json", "llada": tiny_checkpoint("llada", root / "llada")}


PRE = ["--device", "cpu", "--no-progress", "--max-steps", "2"]
FT = ["--device", "cpu", "--no-progress", "--max-steps", "1"]


def pretrain(cfg: Callable[[Setup], str], out: str = "run") -> Callable[[Setup], list[str]]:
    return lambda s: ["pretrain", "--config", cfg(s), "--out", str(s.root / out), *PRE]


def finetune(*extra: str, cfg: Callable[[Setup], str] = lambda s: s.finetune_config()) -> Callable[[Setup], list[str]]:
    return lambda s: ["finetune", "--config", cfg(s), "--out", str(s.root / "run"), *FT, *extra]


def train_sm(cfg: Callable[[Setup], str], *extra: str) -> Callable[[Setup], list[str]]:
    return lambda s: ["train-sm", "--config", cfg(s), "--out", str(s.root / "run"), "--device", "cpu",
                      "--no-progress", *extra]


# id -> (argv of the case, a fragment its one error line must hold)
CASES: dict[str, tuple[Callable[[Setup], list[str]], str]] = {
    # pretrain: the config file, checked field by field
    "pretrain-lr-string": (pretrain(lambda s: s.pretrain_config(lr="abc")), "field 'lr' must be a number, got \"abc\""),
    "pretrain-lr-null": (pretrain(lambda s: s.pretrain_config(lr=None)), "field 'lr' must be a number, got null"),
    "pretrain-nested-type": (pretrain(lambda s: s.pretrain_config(model={"d_model": "wide"})),
                             "field 'model.d_model' must be an integer"),
    "pretrain-stage-range": (pretrain(lambda s: s.pretrain_config(stages=[{"name": "S0", "spec": {"n_examples": 5}}])),
                             "field 'stages[0].spec.n_examples' must be a list of 2 integers, got 5"),
    "pretrain-stage-no-name": (pretrain(lambda s: s.pretrain_config(stages=[{"spec": {}}])),
                               "field 'stages[0].name' is missing"),
    "pretrain-bool-as-int": (pretrain(lambda s: s.pretrain_config(compile=1)), "field 'compile' must be true or false"),
    "pretrain-unknown-field": (pretrain(lambda s: s.pretrain_config(lr_typo=1)), "unknown pretrain config field 'lr_typo'"),
    "pretrain-remote-code-in-file": (pretrain(lambda s: s.pretrain_config(trust_remote_code=True)),
                                     "sets trust_remote_code; a config file cannot consent"),
    "pretrain-config-not-utf8": (pretrain(lambda s: s.file("c.json", b'{"name": "caf\xe9"}')), "is not UTF-8 text"),
    "pretrain-config-not-json": (pretrain(lambda s: s.file("c.json", "{lr: 1}")), "is not valid JSON"),
    "pretrain-config-list": (pretrain(lambda s: s.file("c.json", "[1]")), "must hold a JSON object"),
    # pretrain: the environment
    "pretrain-out-is-a-file": (pretrain(lambda s: s.pretrain_config(), out="taken.txt"), "is a file, not a directory"),
    "pretrain-words-not-utf8": (pretrain(lambda s: s.pretrain_config(words_file=s.file("w.json", b'{"a": ["\xe9"]}'))),
                                "words_file"),
    "pretrain-words-not-lists": (pretrain(lambda s: s.pretrain_config(words_file=s.file("w.json", '{"a": "cat"}'))),
                                 "must hold a JSON object of categories"),
    "pretrain-another-config": (lambda s: ["pretrain", "--config", s.pretrain_config(lr=0.5), "--out",
                                           s.run_dir("run", {"name": "tiny", "lr": 0.1}), *PRE],
                                "holds a run of another config"),
    # pretrain snapshot
    "snapshot-no-run": (lambda s: ["pretrain", "snapshot", str(s.root / "nothing"), str(s.root / "snap")],
                        "does not exist"),
    "snapshot-no-checkpoint": (lambda s: ["pretrain", "snapshot", s.run_dir("r", json.loads(
        Path(s.pretrain_config()).read_text())), str(s.root / "snap")], "has no checkpoint yet"),
    "snapshot-not-a-pretrain-run": (lambda s: ["pretrain", "snapshot", s.run_dir("r", {"model": "m", "lora_rank": 4}),
                                               str(s.root / "snap")], "unknown pretrain config field"),
    "snapshot-out-is-someone-elses": (lambda s: ["pretrain", "snapshot", s.run_dir("r"), s.directory("mine")],
                                      "exists and is not an earlier snapshot"),
    # finetune: the config file
    "finetune-max-steps-string": (finetune(cfg=lambda s: s.finetune_config(max_steps="ten")),
                                  "field 'max_steps' must be an integer, got \"ten\""),
    "finetune-p-range-number": (finetune(cfg=lambda s: s.finetune_config(p_range=0.5)),
                                "field 'p_range' must be a list of 2 numbers, got 0.5"),
    "finetune-targets-string": (finetune(cfg=lambda s: s.finetune_config(lora_targets="q_proj")),
                                "field 'lora_targets' must be a list of strings or null"),
    "finetune-unknown-field": (finetune(cfg=lambda s: s.finetune_config(lora_rnak=4)),
                               "unknown finetune config field 'lora_rnak'"),
    "finetune-remote-code-in-file": (finetune(cfg=lambda s: s.finetune_config(trust_remote_code=True)),
                                     "remove it from the file and pass --trust-remote-code on the command line"),
    # finetune: data and output
    "finetune-data-not-utf8": (lambda s: finetune("--data", s.file("rows.jsonl", NOT_UTF8))(s),
                               "rows.jsonl' is not UTF-8 text"),
    "finetune-data-json-not-utf8": (lambda s: finetune("--data", s.file("rows.json", NOT_UTF8))(s),
                                    "rows.json' is not UTF-8 text"),
    "finetune-data-bad-line": (lambda s: finetune("--data", s.file("rows.jsonl", '{"question": "a"\n'))(s),
                               "line 1 is not valid JSON"),
    "finetune-data-no-columns": (lambda s: finetune("--data", s.file("rows.jsonl", '{"q": "a"}\n'))(s),
                                 "lacks the OpenOrca columns"),
    "finetune-data-missing": (finetune("--data", "no-such-file.jsonl"), "does not exist"),
    "finetune-data-directory": (lambda s: finetune("--data", s.directory("data"))(s), "is a directory"),
    "finetune-out-is-a-file": (lambda s: ["finetune", "--config", s.finetune_config(), "--out",
                                          s.file("taken.txt", "mine\n"), *FT], "is a file, not a directory"),
    # finetune make-data
    "make-data-onto-a-directory": (lambda s: ["finetune", "make-data", s.directory("data"), "--n", "5"],
                                   "is a directory; pass a file name"),
    "make-data-under-a-file": (lambda s: ["finetune", "make-data", str(Path(s.file("taken.txt", "mine\n")) / "d.jsonl"),
                                          "--n", "5"], "is a file, not a directory"),
    "make-data-no-rows": (lambda s: ["finetune", "make-data", str(s.root / "d.jsonl"), "--n", "0"], "--n must be"),
    # finetune merge
    "merge-no-run": (lambda s: ["finetune", "merge", str(s.root / "nothing"), str(s.root / "merged")], "does not exist"),
    "merge-not-a-finetune-run": (lambda s: ["finetune", "merge", s.run_dir("r"), str(s.root / "merged")],
                                 "is not a fine-tuning run"),
    # train-sm
    "train-sm-k-float": (train_sm(lambda s: s.sm_config(k=1.5)), "field 'k' must be an integer, got 1.5"),
    "train-sm-targets-string": (train_sm(lambda s: s.sm_config(lora_targets="q_proj")),
                                "field 'lora_targets' must be a list of strings"),
    "train-sm-remote-code-in-file": (train_sm(lambda s: s.sm_config(trust_remote_code=True)),
                                     "a config file cannot consent"),
    "train-sm-data-not-utf8": (lambda s: train_sm(lambda s: s.sm_config(data=s.file("rows.jsonl", NOT_UTF8)))(s),
                               "is not UTF-8 text"),
    "train-sm-out-is-a-file": (lambda s: ["train-sm", "--config", s.sm_config(), "--out", s.file("taken.txt", "mine\n"),
                                          "--device", "cpu", "--no-progress"], "is a file, not a directory"),
    # train-sm eval
    "sm-eval-out-is-a-file": (lambda s: ["train-sm", "eval", "--model", str(s.assets["llada"]), "--out",
                                         s.file("taken.txt", "mine\n")], "is a file, not a directory"),
    "sm-eval-no-model": (lambda s: ["train-sm", "eval", "--model", f"x={s.root / 'nothing'}", "--out",
                                    str(s.root / "ev")], "nothing"),
    "sm-eval-zero-episodes": (lambda s: ["train-sm", "eval", "--model", str(s.assets["llada"]), "--out",
                                         str(s.root / "ev"), "--episodes", "0"], "must be at least 1"),
}


def snapshot_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_leaves_nothing_that_looks_complete(
    case: str, assets, tmp_path: Path, capsys
) -> None:
    argv_of, fragment = CASES[case]
    setup = Setup(tmp_path, assets)
    (tmp_path / "taken.txt").write_text("mine\n")
    argv = argv_of(setup)
    before = {k: v for k, v in snapshot_of(tmp_path).items() if k.endswith(("taken.txt", "keep.txt"))}
    capsys.readouterr()
    status = main(argv)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("masktax: error: "), err
    assert fragment in lines[0], lines[0]
    assert out == "" and "Traceback" not in err
    after = snapshot_of(tmp_path)
    assert all(after.get(k) == v for k, v in before.items())  # files given as outputs are untouched
    written = [p for p in tmp_path.rglob("*") if p.name == "final" or ".tmp" in p.name or p.name.startswith(".")]
    assert written == []
    assert not (tmp_path / "snap").exists() and not (tmp_path / "merged").exists()
    assert not (tmp_path / "ev" / "sm_eval.json").exists()


def test_the_table_covers_every_training_command() -> None:
    assert len(CASES) >= 20
    prefixes = {"pretrain", "snapshot", "finetune", "make-data", "merge", "train-sm", "sm-eval"}
    assert prefixes == {p for p in prefixes if any(c.startswith(p + "-") for c in CASES)}


def test_a_failed_start_does_not_block_the_corrected_command(assets, tmp_path: Path, capsys) -> None:
    setup = Setup(tmp_path, assets)
    # pretraining whose words file turns out broken after the run dir was made
    bad = setup.pretrain_config(words_file=setup.file("w.json", '{"a": "cat"}'))
    out = str(tmp_path / "pre")
    assert main(["pretrain", "--config", bad, "--out", out, *PRE]) == 2
    assert (tmp_path / "pre" / "config.json").is_file() and not (tmp_path / "pre" / "final").exists()
    assert main(["pretrain", "--config", setup.pretrain_config(), "--out", out, *PRE]) == 0
    assert json.loads((tmp_path / "pre" / "final" / "training_state.json").read_text())["finished"] is True
    # fine-tuning whose data all falls out after the model loaded (every pair longer than max_context)
    out = str(tmp_path / "ft")
    short = setup.finetune_config(max_context=8)
    assert main(["finetune", "--config", short, "--out", out, *FT]) == 2
    assert "no usable training pairs" in capsys.readouterr().err
    assert main(["finetune", "--config", setup.finetune_config(), "--out", out, *FT]) == 0
    # a run that trained is still protected from another config
    assert main(["finetune", "--config", setup.finetune_config(lr=0.5), "--out", out, *FT]) == 2
    assert "holds a run of another config" in capsys.readouterr().err


def test_consent_comes_from_the_command_line_only(assets, tmp_path: Path) -> None:
    """The flag grants it, the file cannot; the recorded consent does not make another config on resume."""
    setup = Setup(tmp_path, assets)
    out = str(tmp_path / "run")
    assert main(["finetune", "--config", setup.finetune_config(), "--out", out, "--trust-remote-code", *FT]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["trust_remote_code"] is True
    assert main(["finetune", "--config", setup.finetune_config(), "--out", out, *FT]) == 0  # resumed without it
    no = setup.finetune_config(trust_remote_code=False)  # a file may decline
    assert main(["finetune", "--config", no, "--out", str(tmp_path / "b"), *FT]) == 0
