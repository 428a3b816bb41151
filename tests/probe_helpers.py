"""Helpers of the probe tests: a tiny in-memory lm and the one-line CLI error check."""

from __future__ import annotations

import torch
from tiny import tiny_llada, tiny_llama_ar, tiny_tokenizer

from masktax.cli.main import main
from masktax.models.loaded import LoadedModel

DATASET = "country__smallest"


def tiny_adapter(kind: str = "mdlm", *, seed: int = 0, dtype: torch.dtype = torch.float32,
                 name: str | None = None) -> LoadedModel:
    """A tiny random native LLaDA ("mdlm", in place) or HF Llama ("ar", shifted) as a LoadedModel."""
    tok = tiny_tokenizer()
    if kind == "ar":
        model, shift, mask = tiny_llama_ar(seed), True, None
    else:
        model, shift, mask = tiny_llada(seed), False, tok.mask_token_id
    return LoadedModel(name=name or ("ar" if kind == "ar" else "llada"), model=model.to(dtype), tokenizer=tok,
                   kind="ar" if kind == "ar" else "mdlm", mask_id=mask, shift=shift, max_length=4096,
                   pad_id=tok.pad_token_id, eos_id=tok.eos_token_id, extra={"position_ids": kind == "ar"})


def assert_one_line_error(args: list[str], message: str, capsys) -> None:
    """`masktax ARGS` exits 2 with exactly `masktax: error: MESSAGE` on stderr."""
    assert main(args) == 2
    assert capsys.readouterr().err == f"masktax: error: {message}\n"
