"""What the native model families share: config round trip, loading, saving, checkpointing, the forward pass.

A native model is a plain `nn.Module` whose `state_dict()` keys are exactly the published
parameter names, so `from_pretrained` reads the published safetensors as they are and
`save_pretrained` writes the same layout back (config.json + model.safetensors or shards).

Every family runs `embed -> layers -> final norm -> vocabulary head`; the classes here hold what
is the same across them, and a family file keeps its config, its layers and what differs:

    NativeModel      config, loading, saving; the bidirectional forward with Fast-dLLM's
                     approximate KV cache (LLaDA, whose own layout is `model.transformer.*`)
    DecoderLM        + the layout `model.{embed_tokens, layers.N, norm}`, `lm_head` (Dream)
    BlockCausalLM    + the newer families' forward: a 4-D mask as given, block-causal attention
                     by `block_size` and its exact cache (LLaDA-MoE, LLaDA2, SDAR, Fast-dLLM v2)
"""

from __future__ import annotations

import abc
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers.modeling_outputs import MaskedLMOutput

from masktax.errors import MasktaxError
from masktax.models import attention, blocks
from masktax.models import checkpoint as ckpt
from masktax.models.blocks import KVCache
from masktax.models.device import resolve_device

C = TypeVar("C", bound="NativeConfig")
M = TypeVar("M", bound="NativeModel")


@dataclasses.dataclass
class NativeConfig:
    """Base of the family configs: known fields are attributes, every other published key is kept in
    `extra` so `to_dict()` writes the config back unchanged."""

    extra: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    # Sizes every published config.json states; a missing one is an error, not a silent 8B default.
    required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """The config of a parsed config.json; a known field of the wrong JSON type is a MasktaxError."""
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        missing = [k for k in cls.required if k not in data]
        if missing:
            raise MasktaxError(f"field '{missing[0]}' is missing ({cls.__name__} needs {', '.join(cls.required)})")
        for key, value in known.items():
            if not _fits(value, hints[key]):
                raise MasktaxError(f"field '{key}' should be {_type_name(hints[key])}, got {value!r:.60}")
        try:
            return cls(**known, extra=extra)
        except TypeError as err:
            raise MasktaxError(f"the config does not fit {cls.__name__}: {ckpt.reason(err)}") from err

    def require_positive(self, *names: str) -> None:
        """Raise unless each named size (None = not given) is a positive integer."""
        for name in names:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MasktaxError(f"field '{name}' must be a positive integer, got {value}")

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.extra)
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"})
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access (PEFT and others read `model.config` this way)."""
        return self.to_dict().get(key, default)


class NativeModel(nn.Module, abc.ABC):
    """Shared machinery; subclasses set `config_class`, `model_type`, `architectures` and build layers."""

    config_class: ClassVar[type[NativeConfig]]
    model_type: ClassVar[str]
    architectures: ClassVar[tuple[str, ...]]

    def __init__(self, config: NativeConfig) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = False

    # --- layers the subclass provides -------------------------------------------------------
    @abc.abstractmethod
    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding `[V, d]`."""

    @abc.abstractmethod
    def get_output_embeddings(self) -> nn.Module:
        """The output projection (the embedding itself when tied)."""

    def tie_weights(self) -> None:
        """Re-tie the output projection to the input embedding when the config asks for it."""

    def tied_names(self) -> tuple[str, ...]:
        """Parameter names that are tied to the embedding (absent from the checkpoint)."""
        return ()

    # --- the forward pass: the family supplies its layers, RoPE tables and head ------------------
    @abc.abstractmethod
    def _layers(self) -> nn.ModuleList:
        """The transformer layers, first to last."""

    @abc.abstractmethod
    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE tables `2 x [b, l, r]` at `positions [b, l]` (the family's rotary dims and theta)."""

    @abc.abstractmethod
    def _head(self, x: torch.Tensor, logits_to_keep: torch.Tensor | None) -> MaskedLMOutput:
        """Final norm and vocabulary projection of the last hidden states `[b, l, d]` (rows `logits_to_keep`)."""

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        logits_to_keep: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
    ) -> MaskedLMOutput:
        """Raw logits, every token attending to every real token (LLaDA, Dream); with `kv_cache` only its
        window of positions runs (`attention_mask` then covers every position the keys hold) and the
        logits are the window's."""
        x = self._embed_input(input_ids, inputs_embeds)  # [b, l, d]
        b, n, _ = x.shape
        start = 0 if kv_cache is None else kv_cache.start
        pos = blocks.position_ids(attention_mask, b, n, x.device, start)  # [b, l]
        mask = blocks.key_padding_mask(attention_mask, x.device)  # [b, 1, 1, L] or None
        x = self._run_blocks(self._layers(), x, self._rope(pos), mask, kv_cache=kv_cache)  # [b, l, d]
        return self._head(x, logits_to_keep)  # [b, l or k, V]

    # --- forward helpers ------------------------------------------------------------------
    def _embed_input(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is not None:
            return inputs_embeds  # [b, l, d]
        return self.get_input_embeddings()(input_ids)  # [b, l, d]

    def _run_blocks(
        self, blocks: Iterable[nn.Module], x: torch.Tensor, *args: Any, kv_cache: KVCache | None = None
    ) -> torch.Tensor:
        for index, block in enumerate(blocks):
            if kv_cache is not None:
                x = block(x, *args, kv=kv_cache.layer(index))
            elif self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, *args, use_reentrant=False)
            else:
                x = block(x, *args)
        return x  # [b, l, d]

    @staticmethod
    def _keep(x: torch.Tensor, logits_to_keep: torch.Tensor | None) -> torch.Tensor:
        """Hidden states `[b, l, d]` -> `[b, k, d]` at the rows' positions `logits_to_keep` `[b, k]`
        (transformers' 2-D integer form), so the vocabulary head runs only where logits are needed."""
        if logits_to_keep is None:
            return x
        index = logits_to_keep.to(x.device)[..., None].expand(-1, -1, x.shape[-1])  # [b, k, d]
        return x.gather(1, index)  # [b, k, d]

    @staticmethod
    def _output(logits: torch.Tensor) -> MaskedLMOutput:
        return MaskedLMOutput(logits=logits)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Recompute each block in backward (same switch name as `transformers`)."""
        self.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.gradient_checkpointing = False

    # --- loading and saving ----------------------------------------------------------------
    @classmethod
    def from_config_dict(cls: type[M], data: dict[str, Any]) -> M:
        return cls(cls.config_class.from_dict(data))

    @classmethod
    def from_pretrained(
        cls: type[M], path: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> M:
        """Build on the meta device, then assign the checkpoint's tensors on `device` in `dtype`."""
        dev = resolve_device(device)
        data = ckpt.read_config(path)
        try:
            config = cls.config_class.from_dict(data)
        except MasktaxError as err:
            raise MasktaxError(f"'{Path(path) / ckpt.CONFIG_NAME}': {err}") from err
        with torch.device("meta"):
            model = cls(config)
        ckpt.load_weights(model, path, device=dev, dtype=dtype, optional=model.tied_names())
        model.tie_weights()
        return model.eval()

    def save_pretrained(self, path: str | Path, *, max_shard_bytes: int | None = None) -> None:
        """Write config.json and safetensors in the published layout (tied weights omitted)."""
        config = self.config.to_dict()
        config["model_type"] = self.model_type
        config.setdefault("architectures", list(self.architectures))
        config["torch_dtype"] = ckpt.dtype_name(next(self.parameters()).dtype)
        ckpt.write_config(config, path)
        tied = set(self.tied_names())
        tensors = {k: v for k, v in self.state_dict().items() if k not in tied}
        ckpt.save_weights(tensors, path, max_shard_bytes=max_shard_bytes)

    def reset_parameters(self, seed: int = 0) -> None:
        """Seeded random weights (see `blocks.init_linear_and_embedding`), then re-tie."""
        if any(p.is_meta for p in self.parameters()):
            raise MasktaxError("cannot initialise a model that lives on the meta device; use to_empty() first")
        blocks.init_linear_and_embedding(self, torch.Generator().manual_seed(seed))
        self.tie_weights()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


class Backbone(nn.Module):
    """What a decoder family publishes under `model.`: the token embedding (`embed_tokens`, or the
    family's `embed_name`), `layers.N` (`layer_class(config, N)`) and the final RMSNorm `norm`."""

    def __init__(self, config: Any, layer_class: Callable[[Any, int], nn.Module], embed_name: str) -> None:
        super().__init__()
        self.embed_name = embed_name
        setattr(self, embed_name, nn.Embedding(config.vocab_size, config.hidden_size))
        self.layers = nn.ModuleList(layer_class(config, i) for i in range(config.num_hidden_layers))
        self.norm = blocks.RMSNorm(config.hidden_size, config.rms_norm_eps)

    @property
    def embedding(self) -> nn.Embedding:
        return getattr(self, self.embed_name)


class DecoderConfig(NativeConfig):
    """Base of the configs of the `DecoderLM` families (transformers' field names)."""

    @property
    def kv_heads(self) -> int:
        """Key/value heads: `num_key_value_heads`, or one per query head when it is 0 or None."""
        return self.num_key_value_heads or self.num_attention_heads


class DecoderLM(NativeModel):
    """`embed -> layers -> norm -> lm_head` with the parameter names most families publish:
    `model.embed_tokens.weight`, `model.layers.N.*`, `model.norm.weight` and `lm_head.weight`
    (absent when tied to the embedding by `tie_word_embeddings`).

    The family sets `layer_class` (its decoder layer, built as `layer_class(config, index)`: the
    index lets a MoE family choose dense or MoE layers), `embed_name` if its embedding has another
    name, and `_rope`; its config (a `DecoderConfig`) has `vocab_size`, `hidden_size`,
    `num_hidden_layers`, `rms_norm_eps` and `tie_word_embeddings`."""

    layer_class: ClassVar[Callable[[Any, int], nn.Module]]
    embed_name: ClassVar[str] = "embed_tokens"
    config: Any

    def __init__(self, config: NativeConfig) -> None:
        super().__init__(config)
        self.model = Backbone(config, type(self).layer_class, self.embed_name)
        self.lm_head = nn.Linear(self.config.hidden_size, self.config.vocab_size, bias=False)
        self.tie_weights()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embedding

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embedding.weight

    def tied_names(self) -> tuple[str, ...]:
        return ("lm_head.weight",) if self.config.tie_word_embeddings else ()

    def _layers(self) -> nn.ModuleList:
        return self.model.layers

    def _head(self, x: torch.Tensor, logits_to_keep: torch.Tensor | None) -> MaskedLMOutput:
        return self._output(self.lm_head(self.model.norm(self._keep(x, logits_to_keep))))  # [b, l or k, V]


class BlockCausalLM(DecoderLM):
    """The forward of the newer families (LLaDA-MoE, LLaDA2, SDAR, Fast-dLLM v2), whose published
    samplers pass 4-D masks: such a mask is used as given (True = may attend, or additive); from a 2-D
    padding mask the model builds block-causal attention over blocks of `block_size` (None:
    bidirectional, as LLaDA-MoE), see `attention.layer_mask`. Its cache is exact (`attention.BlockCache`
    of finished blocks); Fast-dLLM's approximate `kv_cache` is refused, naming `family`."""

    family: ClassVar[str]

    @property
    def block_size(self) -> int | None:
        """Attention blocks (None: bidirectional)."""
        return None

    def _read_mask(self, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """The `attention_mask` as `attention.layer_mask` reads it (a family whose 4-D masks differ converts them)."""
        return attention_mask

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        logits_to_keep: torch.Tensor | None = None,
        cache: attention.BlockCache | None = None,
        kv_cache: None = None,
    ) -> MaskedLMOutput:
        """Raw logits; with `cache` (`attention.BlockCache`, no padding): the window after the cached blocks."""
        attention.refuse_approximate_cache(kv_cache, self.family)
        x = self._embed_input(input_ids, inputs_embeds)  # [b, l, d]
        b, n, _ = x.shape
        if cache is not None:
            pos, mask = attention.cached_window(cache, n, self.block_size, x.device)  # [1, w], [1, 1, w, P + w]
            x = attention.run_layers(self._layers(), x, self._rope(pos), mask, cache)  # [b, w, d]
            return self._head(x, logits_to_keep)
        attention_mask = self._read_mask(attention_mask)
        pos = blocks.position_ids(attention.padding_of(attention_mask), b, n, x.device)  # [b, l]
        mask = attention.layer_mask(attention_mask, pos, self.block_size)  # [b, 1, l, l], [b, 1, 1, l] or None
        x = self._run_blocks(self._layers(), x, self._rope(pos), mask)  # [b, l, d]
        return self._head(x, logits_to_keep)  # [b, l or k, V]


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a config field's type hint (an int is a float; a bool is not an int)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    hint = typing.get_origin(hint) or hint
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    hint = typing.get_origin(hint) or hint
    return {type(None): "null", float: "a number", int: "an integer", bool: "true or false", str: "a string",
            dict: "an object"}.get(hint, getattr(hint, "__name__", str(hint)))
