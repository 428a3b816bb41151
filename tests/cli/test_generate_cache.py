"""`masktax generate --cache`: each cache end to end on a tiny checkpoint, AR models left to right, and
bad values as one-line errors (exit 2)."""

from __future__ import annotations

import re

import pytest
from tiny import tiny_checkpoint

from masktax.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen_cache")
    return {fam: tiny_checkpoint(fam, root / fam, seed=5) for fam in ("llada", "ar")}


@pytest.mark.parametrize("sampler", ["semi_ar", "threshold"])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_generate_with_a_cache(ckpts, capsys, sampler, cache):
    code = main(["generate", "--model", str(ckpts["llada"]), "--prompt", "Options: (A) cat", "--sampler", sampler,
                 "--gen-length", "8", "--steps", "8", "--block-length", "4", "--cache", cache])
    out, err = capsys.readouterr()
    assert code == 0 and out.strip()
    assert f"sampler {sampler}, cache {cache}" in err


def test_ar_model_generates_the_same_text_with_and_without_its_cache(ckpts, capsys):
    args = ["generate", "--model", str(ckpts["ar"]), "--prompt", "Options: (A) cat", "--gen-length", "6", "--keep-eos"]
    assert main(args) == 0
    plain, err = capsys.readouterr()
    assert "sampler ar" in err and "6 forward passes" in err
    assert main([*args, "--cache", "prefix"]) == 0
    cached, err = capsys.readouterr()
    assert cached == plain and "cache prefix" in err


@pytest.mark.parametrize("family,extra,match", [
    ("llada", ["--cache", "full"], r"unknown --cache 'full'; choose one of none, prefix, dual"),
    ("ar", ["--cache", "dual"], r"use --cache prefix"),
    ("ar", ["--soft-mask", "--omega-s", "0.5"], r"soft-masking needs masks"),
])
def test_bad_cache_use_is_one_line_exit_2(ckpts, capsys, family, extra, match):
    code = main(["generate", "--model", str(ckpts[family]), "--prompt", "x", "--gen-length", "4", *extra])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("masktax: error: ") and re.search(match, lines[0])
