"""A tiny bidirectional random model for the sampler tests (its own checks: samplers/test_tiny_mdlm.py).

`TinyMDLM` has the native forward signature (input_ids / inputs_embeds / attention_mask ->
`.logits`), position ids from the attention mask (so left padding does not move positions),
and a `scale` that sharpens its predictions so confidences spread over (0, 1).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

VOCAB = 40
MASK_ID = VOCAB - 1
EOS_ID = 1


class TinyMDLM(nn.Module):
    """Embedding + positions + 2 bidirectional encoder layers + LM head; seeded random weights."""

    def __init__(self, seed: int = 0, vocab: int = VOCAB, d: int = 32, max_len: int = 128, scale: float = 3.0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        layer = nn.TransformerEncoderLayer(d, 4, 2 * d, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, vocab)
        self.scale = scale
        self.eval()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        h = self.embed(input_ids) if inputs_embeds is None else inputs_embeds  # [b, l, d]
        b, length, _ = h.shape
        if attention_mask is None:
            attention_mask = torch.ones((b, length), dtype=torch.long, device=h.device)
        pos = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)  # [b, l]
        h = h + self.pos(pos)
        h = self.encoder(h, src_key_padding_mask=attention_mask == 0)
        return SimpleNamespace(logits=self.scale * self.head(h))  # [b, l, V]


def prompt(seed: int = 0, b: int = 2, lp: int = 5) -> torch.Tensor:
    """Seeded random prompt ids without mask or EOS."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, MASK_ID, (b, lp), generator=g)  # [b, lp] no mask, no EOS
