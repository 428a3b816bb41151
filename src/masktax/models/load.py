"""`load(name_or_path) -> LoadedModel`: the one place masktax turns a model name into a usable model.

Resolution: a known card name (`masktax models`) or embedded name, else a local checkpoint
directory, else any Hugging Face Hub id (`org/name`, pinned as `org/name@revision`): the local cache
first, else a download unless HF_HUB_OFFLINE is set. Dispatch: the card's family, else
config.json's `model_type` / `architectures`:

    llada            -> native LLaDA          kind "mdlm", in place
    mmada            -> native MMaDA (LLaDA)  kind "mdlm", in place
    lladamoe         -> native LLaDA-MoE      kind "mdlm", in place
    llada2_moe       -> native LLaDA2         kind "mdlm", in place, block-causal (LoadedModel.block_size)
    sdar             -> native SDAR / TraDo   kind "mdlm", in place, block-causal
    sdar_moe         -> native SDAR-MoE       kind "mdlm", in place, block-causal (card: its block size)
    Fast_dLLM_Qwen   -> native Fast-dLLM v2   kind "mdlm", shifted, block-causal
    Dream            -> native Dream          kind "mdlm", shifted
    diffusion_gemma  -> transformers' DiffusionGemma, kind "uniform"
    any causal LM    -> AutoModelForCausalLM  kind "ar", shifted
    any masked LM    -> AutoModelForMaskedLM  kind "mdlm", in place (BERT, ModernBERT)
    other + auto_map -> remote code, only with trust_remote_code=True

Mask id: explicit > model card > tokenizer.mask_token_id > config `mask_token_id`; None for AR.
Defaults: bf16 on CUDA, fp32 on CPU (a forced bf16/fp16 that this CPU runs slower than fp32 gets a
one-line notice, masktax.models.precision); model in eval mode.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import torch

from masktax.errors import MasktaxError
from masktax.models import checkpoint as ckpt
from masktax.models import remote
from masktax.models.cards import FAMILIES, ModelCard, canonical_name, card_for
from masktax.models.device import resolve_device
from masktax.models.loaded import Kind, LoadedModel
from masktax.models.precision import print_notice, slow_dtype_notice

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "embedded" / "weights"
DREAM_INHERITED_POSITIONS = 131072  # Qwen2.5's value left in Dream's config; Dream trained at 2048
DREAM_CONTEXT = 2048
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")
KIND_SHIFT: dict[str, tuple[Kind, bool]] = {
    "llada": ("mdlm", False), "dream": ("mdlm", True), "ar": ("ar", True),
    "mmada": ("mdlm", False), "lladamoe": ("mdlm", False), "llada2_moe": ("mdlm", False), "sdar": ("mdlm", False),
    "sdar_moe": ("mdlm", False),
    "fast_dllm_v2": ("mdlm", True),
    "masked_lm": ("mdlm", False), "diffusion_gemma": ("uniform", False), "remote": ("mdlm", False),
}


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None -> bf16 on CUDA, fp32 elsewhere; accepts torch dtypes and names like "bf16", "float32"."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    aliases = {"bf16": "bfloat16", "fp32": "float32", "fp16": "float16", "half": "float16", "float": "float32"}
    name = aliases.get(str(dtype).lower(), str(dtype).lower()).removeprefix("torch.")
    if name not in ckpt.DTYPE_NAMES:
        raise MasktaxError(f"unknown dtype '{dtype}'; use float32, bfloat16 or float16")
    return ckpt.DTYPE_NAMES[name]


def resolve_path(name: str, card: ModelCard | None, revision: str | None = None) -> Path:
    """The local checkpoint directory for `name` (embedded, local path, or Hub snapshot at `revision`)."""
    if not name.strip():
        raise MasktaxError("the model name is empty; give a model name or a checkpoint directory")
    if name.lower().startswith("embedded-"):
        if card is None:
            raise MasktaxError(f"unknown model '{name}': no embedded model of that name; `masktax models` lists them")
        path = EMBEDDED_DIR / canonical_name(name)
        if not (path / ckpt.CONFIG_NAME).is_file():
            raise MasktaxError(
                f"the embedded weights '{canonical_name(name)}' are not installed (expected {path}); "
                "train them with `masktax pretrain` or install a masktax release that ships them"
            )
        return path
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise MasktaxError(f"'{name}' is a file; pass the checkpoint directory that holds config.json")
    return hub_snapshot(name, card, MODEL_PATTERNS, revision)


MODEL_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
# The newer native families: family -> (published model_type, published architecture); either identifies it.
NATIVE_ARCHITECTURES = {"mmada": ("mmada", "MMadaModelLM"), "lladamoe": ("lladamoe", "LLaDAMoEModelLM"),
                        "llada2_moe": ("llada2_moe", "LLaDA2MoeModelLM"), "sdar": ("sdar", "SDARForCausalLM"),
                        "sdar_moe": ("sdar_moe", "SDARMoeForCausalLM"),
                        "fast_dllm_v2": ("Fast_dLLM_Qwen", "Fast_dLLM_QwenForCausalLM")}
# LLaDA-MoE's published config.json says model_type "llada" (dllm's README asks users to edit it to
# "lladamoe"); its MoE fields tell it apart from LLaDA-8B's, whose sizes are d_model / n_layers.
LLADA_MOE_KEYS = {"num_experts", "expert_intermediate_size", "moe_layer_freq"}


def split_revision(name: str) -> tuple[str, str | None]:
    """`"org/name@rev"` -> ("org/name", "rev") (a Hub id pinned to a branch, tag or commit); a name
    without `@`, or an existing local path, is returned whole with None."""
    repo, at, rev = name.rpartition("@")
    if not at or not repo or not rev or Path(name).expanduser().exists():
        return name, None
    return repo, rev


def hub_cache_dir() -> str | None:
    """The Hub cache the environment names now (HF_HUB_CACHE, else HF_HOME/hub; None: huggingface_hub's
    default). huggingface_hub reads these once, at import; reading them per call lets a library user
    (and the tests) point masktax at another cache after import."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set now or when huggingface_hub was imported."""
    from huggingface_hub import constants

    flag = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or flag in {"1", "ON", "YES", "TRUE"}


def hub_snapshot(name: str, card: ModelCard | None, patterns: list[str], revision: str | None = None) -> Path:
    """A Hub snapshot of `name` (a card's Hub id, or any Hub id) at `revision` (default: main), as every
    HF tool resolves one: the local cache first (no network when it is there), else a download of the
    files matching `patterns`, unless HF_HUB_OFFLINE is set. A name that is no valid Hub id, a
    repository or revision the Hub does not have, and a failed download are one-line errors."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    repo = card.hf_id if card is not None and card.hf_id else name
    at = f" at revision '{revision}'" if revision else ""
    try:
        validate_repo_id(repo)
    except HFValidationError as err:
        raise MasktaxError(f"unknown model '{name}': not a directory, not a known name and not a Hugging Face Hub "
                           "id; `masktax models` lists known names") from err
    where = dict(revision=revision, allow_patterns=patterns, cache_dir=hub_cache_dir())
    try:
        return Path(snapshot_download(repo, local_files_only=True, **where))
    except Exception as offline_err:  # not in the local cache (any hub error means the same here)
        if hub_offline():
            raise MasktaxError(
                f"unknown model '{name}': not a directory, and '{repo}'{at} is not in the local Hugging Face cache "
                "(HF_HUB_OFFLINE is set, so nothing is downloaded); `masktax models` lists known names"
            ) from offline_err
    try:
        return Path(snapshot_download(repo, **where))
    except GatedRepoError as err:
        raise MasktaxError(f"'{repo}' is gated on the Hugging Face Hub: accept its terms and log in "
                           "(`hf auth login`)") from err
    except RevisionNotFoundError as err:
        raise MasktaxError(f"the Hugging Face Hub has no revision '{revision}' of '{repo}'") from err
    except RepositoryNotFoundError as err:
        raise MasktaxError(f"unknown model '{name}': not a directory, not a known name, and the Hugging Face Hub "
                           f"has no repository '{repo}' (or it is private: log in with `hf auth login`)") from err
    except Exception as err:  # network, disk, server: the hub's message says which
        raise MasktaxError(f"could not download '{repo}'{at} from the Hugging Face Hub: {ckpt.reason(err)}") from err


def detect_family(config: dict) -> str:
    """The family of a checkpoint from its config.json (no code from the checkpoint is imported)."""
    model_type = str(config.get("model_type") or "")
    archs = [str(a) for a in config.get("architectures") or []]
    for family, (published_type, arch) in NATIVE_ARCHITECTURES.items():  # before "llada": see LLADA_MOE_KEYS
        if arch in archs or model_type == published_type:
            return family
    if model_type.lower() == "llada" and LLADA_MOE_KEYS <= config.keys():
        return "lladamoe"
    if model_type.lower() == "llada" or "LLaDAModelLM" in archs:
        return "llada"
    if model_type.lower() == "dream" or "DreamModel" in archs:
        return "dream"
    if model_type in ("diffusion_gemma", "diffusion_gemma_text"):
        return "diffusion_gemma"
    if remote.known_to_transformers(model_type):
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
            MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        )

        if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            return "ar"
        if any(a.endswith("ForMaskedLM") for a in archs):
            return "masked_lm"
        if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            return "ar"
        if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
            return "masked_lm"
        raise MasktaxError(f"model_type '{model_type}' is neither a causal LM nor a masked LM")
    if config.get("auto_map"):
        return "remote"
    raise MasktaxError(f"unsupported model_type '{model_type or '?'}' (no native family, no auto_map)")


def load_tokenizer(path: Path, trust_remote_code: bool):
    """The checkpoint's tokenizer, or None when it ships no tokenizer files.

    A tokenizer_config whose `auto_map` needs remote code (Dream's) falls back to the plain fast
    tokenizer from tokenizer.json, or Qwen2's from vocab.json + merges.txt, without running that code.
    Tokenizer files that no loader reads (broken JSON, a foreign tokenizer.json) are a MasktaxError.
    """
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    # AutoTokenizer reads config.json and warns that "llada"/"Dream" is not a transformers model
    # type; that is expected for the natively loaded families, so keep it off the user's terminal.
    # The tokenizers library raises a bare Exception for a tokenizer.json it cannot parse, hence
    # `except Exception` around these reads of the user's files (no masktax code runs inside).
    with ckpt.quiet_transformers(), warnings.catch_warnings():  # Dream's `rope_scaling: null` is "deprecated"
        warnings.filterwarnings("ignore", message=".*rope_scaling.*", category=FutureWarning)
        try:
            return AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        except Exception as err:  # noqa: BLE001 (see above)
            first = err
        try:
            if (path / "tokenizer.json").is_file():
                return PreTrainedTokenizerFast.from_pretrained(str(path))
            if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
                from transformers import Qwen2TokenizerFast

                return Qwen2TokenizerFast.from_pretrained(str(path))
        except Exception as err:  # noqa: BLE001 (see above)
            raise MasktaxError(f"could not load the tokenizer of '{path}': {ckpt.reason(err)}") from err
    raise MasktaxError(f"could not load the tokenizer of '{path}': {ckpt.reason(first)}") from first


def build_model(family: str, path: Path, config: dict, *, device: torch.device, dtype: torch.dtype,
                trust_remote_code: bool) -> torch.nn.Module:
    """Instantiate the family's model from `path` on `device` in `dtype`."""
    if family == "llada":
        from masktax.models.llada import LLaDAModelLM

        return LLaDAModelLM.from_pretrained(path, device=device, dtype=dtype)
    if family == "dream":
        from masktax.models.dream import DreamModel

        return DreamModel.from_pretrained(path, device=device, dtype=dtype)
    if family in NATIVE_ARCHITECTURES:
        return native_class(family).from_pretrained(path, device=device, dtype=dtype)
    if family == "diffusion_gemma":
        from masktax.models.diffusion_gemma import load_diffusion_gemma

        return load_diffusion_gemma(path, device=device, dtype=dtype)
    if family == "remote" or (remote.needs_remote_code(config) and family in ("ar", "masked_lm")):
        return remote.load_remote_model(path, config, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    auto = AutoModelForCausalLM if family == "ar" else AutoModelForMaskedLM
    what = "a causal LM" if family == "ar" else "a masked LM"
    model = ckpt.hf_from_pretrained(auto, path, what, dtype=dtype, trust_remote_code=trust_remote_code)
    return model.to(device).eval()


def native_class(family: str) -> type:
    """The native model class of one of NATIVE_ARCHITECTURES' families."""
    if family == "mmada":
        from masktax.models.mmada import MMadaModelLM

        return MMadaModelLM
    if family == "lladamoe":
        from masktax.models.llada_moe import LLaDAMoEModelLM

        return LLaDAMoEModelLM
    if family == "sdar_moe":
        from masktax.models.sdar_moe import SDARMoeForCausalLM

        return SDARMoeForCausalLM
    if family == "sdar":
        from masktax.models.sdar import SDARForCausalLM

        return SDARForCausalLM
    if family == "fast_dllm_v2":
        from masktax.models.fast_dllm_v2 import Fast_dLLM_QwenForCausalLM

        return Fast_dLLM_QwenForCausalLM
    from masktax.models.llada2 import LLaDA2MoeModelLM

    return LLaDA2MoeModelLM


# Config fields that declare a context length, first found wins (LLaDA's, the common HF name, GPT-2's,
# GPT-J/older configs', MPT's, ChatGLM's); text_config is searched the same way after the top level.
CONTEXT_FIELDS = ("max_sequence_length", "max_position_embeddings", "n_positions", "n_ctx", "max_seq_len",
                  "seq_length")


def config_max_length(config: dict, family: str) -> int | None:
    """The context length a config declares (the first of CONTEXT_FIELDS, then in text_config)."""
    text = config.get("text_config") or {}
    found = next(((where, key) for where, part in (("", config), ("text_config.", text)) for key in CONTEXT_FIELDS
                  if part.get(key) is not None), None)
    if found is None:
        return None
    value = (text if found[0] else config)[found[1]]
    if not (isinstance(value, int) and not isinstance(value, bool)) or value < 1:
        raise MasktaxError(f"the config's {found[0]}{found[1]} should be a positive integer, got {value!r:.60}")
    if family == "dream" and value == DREAM_INHERITED_POSITIONS:
        return DREAM_CONTEXT
    return value


def peek_kind(name_or_path: str | Path) -> Kind | None:
    """The kind `load` gives `name_or_path` ("mdlm", "ar" or "uniform"), told without loading it: from
    its model card, else its config.json (a local directory's, or the Hub's config.json alone, from
    the cache first); None when that cannot be told (`load` then says why it cannot load it)."""
    name, revision = split_revision(str(name_or_path))
    card = card_for(name)
    if card is not None:
        return KIND_SHIFT[card.family][0]
    try:
        local = Path(name).expanduser()
        path = local if local.is_dir() else hub_snapshot(name, None, [ckpt.CONFIG_NAME], revision)
        return KIND_SHIFT[detect_family(ckpt.read_config(path))][0]
    except MasktaxError:
        return None


def load(
    name_or_path: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    mask_token_id: int | None = None,
    family: str | None = None,
    revision: str | None = None,
) -> LoadedModel:
    """Load a model by card name, embedded name, local directory or Hub id as a `LoadedModel`.

    family forces the family ("llada", "dream", "ar", "masked_lm", "diffusion_gemma", "remote").
    revision: the Hub branch, tag or commit (also spelled `name@revision`, which every --model flag takes).
    """
    name, pinned = split_revision(str(name_or_path))
    if revision is not None and pinned is not None and revision != pinned:
        raise MasktaxError(f"two revisions for '{name}': '{pinned}' in the name and '{revision}'")
    revision = revision or pinned
    if family is not None and family not in FAMILIES:
        raise MasktaxError(f"unknown family '{family}'; choose one of {', '.join(FAMILIES)}")
    card = card_for(name)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype if dtype is not None or card is None or dev.type != "cuda" else card.dtype, dev)
    if dtype is not None and (notice := slow_dtype_notice(dt, dev)):
        print_notice(notice)  # a forced bf16/fp16 that this CPU runs slower than fp32
    path = resolve_path(name, card, revision)
    config = ckpt.read_config(path)
    if family is None:
        try:
            family = detect_family(config)
        except MasktaxError as err:
            raise MasktaxError(f"'{path / ckpt.CONFIG_NAME}': {err}") from err
    if family == "remote":
        remote.require_trust(name, config, trust_remote_code)  # before any import from the checkpoint
    model = build_model(family, path, config, device=dev, dtype=dt, trust_remote_code=trust_remote_code)
    model.eval()
    if card is not None and card.block_size is not None and card.family == family:
        model.config.block_size = card.block_size  # a checkpoint whose block size is only in its name (SDAR -b32)
    tokenizer = load_tokenizer(path, trust_remote_code)
    kind, shift = KIND_SHIFT[family]
    if card is not None and card.family == family:
        shift = card.shift

    mask_id = mask_token_id
    if mask_id is None and kind == "mdlm":
        mask_id = declared_mask_id(card, tokenizer, config)
    rows = model.get_input_embeddings().weight.shape[0]
    if mask_id is not None and not 0 <= mask_id < rows:
        raise MasktaxError(f"mask token id {mask_id} is outside the vocabulary of '{name}' ({rows} tokens)")

    max_length = (card.context_length if card else None) or config_max_length(config, family)
    if max_length is None:
        limit = getattr(tokenizer, "model_max_length", None)
        max_length = int(limit) if limit and limit < 1_000_000 else DREAM_CONTEXT
    eos_id = getattr(tokenizer, "eos_token_id", None)
    eos_id = eos_id if eos_id is not None else (card.eos_id if card else None) or _first(config.get("eos_token_id"))
    fmt, why = ("base", "") if card or tokenizer is None else auto_format(
        tokenizer, declared_eos_ids(config.get("eos_token_id"), path))
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = pad_id if pad_id is not None else _first(config.get("pad_token_id"))
    return LoadedModel(
        name=canonical_name(name) or name,
        model=model,
        tokenizer=tokenizer,
        kind=kind,
        mask_id=mask_id,
        shift=shift,
        max_length=max_length,
        honours_attention_mask=family != "remote",
        pad_id=pad_id if pad_id is not None else eos_id,
        eos_id=eos_id,
        extra={
            "family": family,
            "path": str(path),
            "revision": revision,
            "chat": bool(card.chat) if card else fmt == "chat",
            **({} if card else {"format_reason": why}),
            "position_ids": family in ("ar", "masked_lm"),
            "position_offset": position_offset(model),
        },
        block_size=getattr(model, "block_size", None),  # block-causal attention (LLaDA2, SDAR, Fast-dLLM v2), else None
    )


def position_offset(model: torch.nn.Module) -> int:
    """Where a model's absolute positions start: `padding_idx + 1` for RoBERTa-style embeddings (their
    position table reserves the rows up to the pad id, as `create_position_ids_from_input_ids` counts),
    else 0. Found as a `position_embeddings` table that has a padding_idx."""
    for name, module in model.named_modules():
        if name.endswith("position_embeddings") and isinstance(module, torch.nn.Embedding):
            return 0 if module.padding_idx is None else module.padding_idx + 1
    return 0


def auto_format(tokenizer, eos_ids: list[int]) -> tuple[str, str]:
    """(format, why) of a checkpoint without a model card, never from its directory name: "chat" when
    the tokenizer has a chat template AND that template ends turns with one of the model's
    end-of-sequence tokens (the tokenizer's EOS or `eos_ids`, literally or as `{{ eos_token }}`): an
    instruct model is tuned to stop where its turn ends, while a base model that ships a template
    (Qwen2.5 base) still ends at its plain EOS."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or not template:
        return "base", "the tokenizer has no chat template"
    names = {getattr(tokenizer, "eos_token", None)}
    names |= {tokenizer.convert_ids_to_tokens(i) for i in eos_ids if 0 <= i < len(tokenizer)}
    closing = sorted(n for n in names if isinstance(n, str) and n and n in template)
    if not closing and re.search(r"\{\{-?\s*eos_token\b", template) and getattr(tokenizer, "eos_token", None):
        closing = [tokenizer.eos_token]  # the template writes `{{ eos_token }}` (Mistral, Zephyr)
    if closing:
        return "chat", f"its chat template ends turns with its end-of-sequence token {closing[0]}"
    return "base", "its chat template does not end turns with any of its end-of-sequence tokens"


def declared_eos_ids(config_eos: int | list[int] | None, path: Path | None) -> list[int]:
    """End-of-sequence ids a checkpoint declares: config.json's and generation_config.json's `eos_token_id`."""
    values: list = [config_eos]
    gen = Path(path) / "generation_config.json" if path is not None else None
    if gen is not None and gen.is_file():
        try:
            values.append(json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id"))
        except (ValueError, AttributeError, OSError):
            pass  # a damaged generation config says nothing about the format
    return [v for value in values for v in (value if isinstance(value, list) else [value])
            if isinstance(v, int) and not isinstance(v, bool)]


def declared_mask_id(card: ModelCard | None, tokenizer, config: dict) -> int | None:
    """The mask id a checkpoint declares: model card > tokenizer.mask_token_id > config.json `mask_token_id`."""
    candidates = (card.mask_id if card else None, getattr(tokenizer, "mask_token_id", None), config.get("mask_token_id"))
    return next((m for m in candidates if m is not None), None)


def _first(value: int | list[int] | None) -> int | None:
    return value[0] if isinstance(value, list) and value else value
