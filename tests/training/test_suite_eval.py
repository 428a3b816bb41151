"""The probe suite's accuracy of a model while it trains, read at the answer position as the accuracy probe reads it."""

from __future__ import annotations

import pytest
import torch


def test_suite_accuracy_of_a_model_that_always_answers_a():
    """suite_accuracy reads the answer position like the accuracy probe: always-A scores exactly 1/3."""
    from masktax.embedded.tokenizer import build_tokenizer
    from masktax.prompts.encode import letter_token_ids
    from masktax.tasks.words import all_words
    from masktax.training.suite_eval import suite_accuracy

    tok = build_tokenizer(all_words())
    letters = letter_token_ids(tok)

    class AlwaysA(torch.nn.Module):
        """Every position predicts the letter A."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids=None, attention_mask=None, **_):
            z = torch.zeros(*input_ids.shape, len(tok))
            z[..., letters[0]] = 1.0
            return type("Out", (), {"logits": z})()

    acc = suite_accuracy(AlwaysA(), tok, causal=False, shift=False, mask_id=tok.mask_token_id,
                         eos_id=tok.eos_token_id, max_length=4096, n_items=3)
    assert acc == pytest.approx(1 / 3)  # test letters come in balanced triples: 'A' is right once per 3
