"""Native MMaDA (Gen-Verse/MMaDA-8B-Base / -MixCoT): LLaDA-8B with image tokens added to its vocabulary.

The published `MMadaModelLM` (Gen-Verse/MMaDA `models/modeling_mmada.py`) subclasses LLaDA's
`LLaDAModelLM` and adds only samplers (text and image generation) and training losses; its
config (model_type "mmada") carries LLaDA's fields plus `llm_vocab_size`, `codebook_size`,
`num_vq_tokens`, ..., and the embedding has `new_vocab_size` rows (126464 text + 8192 image
codes). So the text forward is the native LLaDA's, under MMaDA's model type. Mask id 126336,
logits in place.

Padding: the published forward turns a padded 2-D `attention_mask` into a CAUSAL bias (LLaDA's
default bias); MMaDA's own samplers avoid that by passing `attention_bias` (pad rows and columns
masked). masktax masks padded keys and attends bidirectionally, as those samplers do.
"""

from __future__ import annotations

from masktax.models.llada import LLaDAModelLM


class MMadaModelLM(LLaDAModelLM):
    """MMaDA's language model: LLaDA's layers and parameter names, model_type "mmada"."""

    model_type = "mmada"
    architectures = ("MMadaModelLM",)
