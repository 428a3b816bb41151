"""The sampler tests' tiny bidirectional model (tests/tiny_mdlm.py): both input paths, left padding."""

from __future__ import annotations

import torch
from tiny_mdlm import EOS_ID, TinyMDLM, prompt


def test_ids_and_embeds_paths_agree():
    model = TinyMDLM()
    ids = prompt()
    with torch.no_grad():
        a = model(input_ids=ids).logits
        b = model(inputs_embeds=model.embed(ids)).logits
    assert torch.equal(a, b)


def test_left_padding_does_not_change_real_positions():
    model = TinyMDLM()
    ids = prompt(b=1)
    padded = torch.cat([torch.full((1, 3), EOS_ID), ids], dim=1)
    am = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(ids)], dim=1)
    with torch.no_grad():
        a = model(input_ids=ids).logits
        b = model(input_ids=padded, attention_mask=am).logits[:, 3:]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
