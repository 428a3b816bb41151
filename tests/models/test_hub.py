"""Any Hugging Face Hub id resolves as every HF tool resolves it: the local cache (HF_HUB_CACHE or
HF_HOME/hub, laid out as huggingface_hub writes it), a revision (`--model org/name@rev` or
`load(..., revision=)`), HF_HUB_OFFLINE honoured. Nothing here reaches the network: the cache is a
temporary directory and the one download is a stand-in that records its arguments."""

from __future__ import annotations

import shutil

import huggingface_hub
import pytest
from tiny import tiny_checkpoint

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.models import load
from masktax.models.tokenizer_only import model_tokenizer

MAIN, OLD = "a" * 40, "b" * 40  # commit hashes of two snapshots


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A Hub cache holding org/tiny-llama at two commits, refs/main -> MAIN."""
    root = tmp_path_factory.mktemp("hf") / "hub"
    ckpt = tiny_checkpoint("ar", tmp_path_factory.mktemp("src") / "ar")
    repo = root / "models--org--tiny-llama"
    for commit in (MAIN, OLD):
        shutil.copytree(ckpt, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    return root


@pytest.fixture
def offline(monkeypatch, cache):
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_a_cached_hub_id_loads_at_main_or_a_pinned_revision(offline):
    assert load("org/tiny-llama").extra["path"].endswith(f"snapshots/{MAIN}")
    pinned = load(f"org/tiny-llama@{OLD}")
    assert pinned.extra["path"].endswith(f"snapshots/{OLD}") and pinned.extra["revision"] == OLD
    assert load("org/tiny-llama", revision=OLD).extra["path"].endswith(f"snapshots/{OLD}")
    assert model_tokenizer(f"org/tiny-llama@{OLD}")[0] is not None
    with pytest.raises(MasktaxError, match="two revisions"):
        load(f"org/tiny-llama@{OLD}", revision=MAIN)


def test_hf_home_names_the_cache_too(monkeypatch, cache):
    home = cache.parent
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load("org/tiny-llama").extra["path"].startswith(str(home / "hub"))


def test_offline_and_not_cached_is_one_line(offline):
    with pytest.raises(MasktaxError, match=r"'org/other' is not in the local Hugging Face cache \(HF_HUB_OFFLINE"):
        load("org/other")
    with pytest.raises(MasktaxError, match=f"at revision '{'c' * 40}' is not in the local"):
        load(f"org/tiny-llama@{'c' * 40}")
    with pytest.raises(MasktaxError, match="not a Hugging Face Hub id"):
        load("no//such id")


def test_any_hub_id_downloads_when_online(monkeypatch, cache):
    """Not cached and not offline: huggingface_hub's snapshot_download fetches it (a stand-in here)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    calls = []

    def fake(repo, *, local_files_only=False, **kw):
        calls.append((repo, local_files_only, kw["revision"], kw["cache_dir"]))
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        return str(cache / "models--org--tiny-llama" / "snapshots" / OLD)  # what a download would leave

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    lm = load("Qwen/Qwen2.5-0.5B@v1")
    assert calls == [("Qwen/Qwen2.5-0.5B", True, "v1", str(cache)), ("Qwen/Qwen2.5-0.5B", False, "v1", str(cache))]
    assert lm.kind == "ar" and lm.extra["revision"] == "v1"


def test_probe_command_runs_on_a_cached_hub_id(offline, tmp_path):
    out = tmp_path / "run"
    assert main(["probe", "accuracy", "--model", f"org/tiny-llama@{OLD}", "--out", str(out), "--n-items", "1",
                 "--datasets", "country__smallest", "--no-progress"]) == 0
    assert (out / "summary.json").is_file()
