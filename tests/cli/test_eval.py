"""`masktax eval` end to end: the embedded models on tiny local tasks and a probe-suite task, swept over
extra masks (run dir, summary, plot, report), resumed, and its errors (one line, exit 2)."""

from __future__ import annotations

import json

import pytest
from lmeval_tasks import write_tasks

from masktax.cli.main import main
from masktax.results.store import read_items

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    return write_tasks(tmp_path_factory.mktemp("eval_tasks"))


def args(tasks, out, *extra):
    return ["eval", "--model", "embedded-mdlm-dream", "--model", "embedded-ar", "--tasks",
            "tiny_ll,masktax_suite_next_colour__largest", "--include-path", str(tasks),
            "--extra-masks", "0,4", "--limit", "2", "--metadata", '{"suite_n_test": 2}', "--out", str(out),
            "--model-args", "mc_num=4,gen_length=4", "--device", "cpu", *extra]


def test_eval_sweep_writes_a_run_dir_and_resumes(tasks, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(args(tasks, out)) == 0
    assert "report.md" in capsys.readouterr().out
    for name in ("config.json", "env.json", "items.jsonl", "summary.json", "summary.csv", "report.md"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["masktax_suite_next_colour__largest.png", "tiny_ll.png"]
    summary = json.loads((out / "summary.json").read_text())
    mdlm = summary["models"]["embedded-mdlm-dream"]
    assert sorted({(p["task"], p["x"]) for p in mdlm}) == sorted(
        (t, x) for t in ("tiny_ll", "masktax_suite_next_colour__largest") for x in (0, 4))
    assert {p["metric"] for p in mdlm} == {"acc,none"}
    assert [p["x"] for p in summary["references"]["embedded-ar"]] == [0, 0]  # AR: no masks, a reference line
    assert all(p["stderr"] is not None for p in mdlm)
    report = (out / "report.md").read_text()
    assert "## tiny_ll" in report and "(AR reference, no masks)" in report
    n_records = len(list(read_items(out)))
    assert n_records == 2 * 2 + 2
    assert main(args(tasks, out)) == 0  # resumes: nothing left to evaluate
    assert len(list(read_items(out))) == n_records
    assert "masktax eval: embedded" not in capsys.readouterr().out


@pytest.mark.parametrize("extra,match", [
    (["--extra-masks", "0,-3"], "--extra-masks"),
    (["--metadata", "{nope"], "--metadata is not JSON"),
    (["--model-args", "mc_num=0"], "mc_num must be at least 1"),
    (["--model-args", "extra_masks=3"], "may not set extra_masks"),
    (["--model-args", "colour=blue"], "unknown model_args colour"),
])
def test_eval_bad_input_is_one_line_exit_2(tasks, tmp_path, capsys, extra, match):
    code = main(args(tasks, tmp_path / "bad", *extra))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("masktax: error: ") and err.count("\n") == 1 and match in err


@pytest.mark.slow  # indexes lm-eval's own tasks (about 25 s here) before it can say a task is unknown
def test_eval_unknown_task(tasks, tmp_path, capsys):
    assert main(["eval", "--model", "embedded-mdlm", "--tasks", "no_such_task_zz", "--include-path", str(tasks),
                 "--out", str(tmp_path / "u")]) == 2
    assert "unknown lm-eval task(s) no_such_task_zz" in capsys.readouterr().err
