"""A model's tokenizer without its weights: what `masktax suite show` encodes a prompt with.

Names resolve like `masktax.models.load` (embedded name, local directory, model card, cached Hub
id); for a known card only the tokenizer files are fetched. The id at the answer position follows
`load`'s mask id (explicit > model card > tokenizer > config.json `mask_token_id`); a model
without one (an AR baseline) gets its pad, else its EOS token there. A checkpoint that `load`
refuses without `--trust-remote-code` (its config.json needs its own modeling code) is refused
here too: it is the prompt of a model that runs only with that consent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from masktax.embedded.tokenizer import build_tokenizer
from masktax.errors import MasktaxError
from masktax.models import checkpoint as ckpt
from masktax.models import remote
from masktax.models.cards import card_for
from masktax.models.load import (
    declared_mask_id,
    detect_family,
    hub_snapshot,
    load_tokenizer,
    resolve_path,
    split_revision,
)
from masktax.tasks.words import all_words

# Files a tokenizer may need; a Hub fetch of these skips the weights.
TOKENIZER_PATTERNS = ["tokenizer*", "special_tokens_map.json", "vocab.*", "merges.txt", "*.model", "config.json",
                      "added_tokens.json", "*.jinja", "*.py"]  # chat_template.jinja: transformers 5 saves templates there


def embedded_tokenizer() -> Any:
    """The word-level tokenizer over the suite's vocabulary (what the embedded models use)."""
    return build_tokenizer(all_words())


def tokenizer_dir(name: str) -> Path:
    """The local directory holding `name`'s tokenizer, fetching only tokenizer files for a known card.

    Embedded names and local directories resolve like `masktax.models.load`; other names must be a
    model card (`masktax models`) or a Hub id already in the local cache.
    """
    name, revision = split_revision(name)
    card = card_for(name)
    if name.lower().startswith("embedded-") or Path(name).expanduser().exists():
        return resolve_path(name, card)
    return hub_snapshot(name, card, TOKENIZER_PATTERNS, revision)


def model_tokenizer(name: str, *, trust_remote_code: bool = False, mask_token_id: int | None = None) -> tuple[Any, int]:
    """(tokenizer, id at the answer position) for a model name, loading no weights.

    Mask id as in `masktax.models.load`: explicit > model card > tokenizer > config.json
    `mask_token_id`; a model without one (an AR baseline) shows its pad (else EOS) token there.
    """
    path = tokenizer_dir(name)
    config = ckpt.read_config(path) if (path / ckpt.CONFIG_NAME).is_file() else {}
    if remote.needs_remote_code(config) and detect_family(config) == "remote":
        remote.require_trust(name, config, trust_remote_code)
    tokenizer = load_tokenizer(path, trust_remote_code)
    if tokenizer is None:
        raise MasktaxError(f"'{name}' ships no tokenizer files (looked in {path})")
    candidates = (mask_token_id, declared_mask_id(card_for(name), tokenizer, config), tokenizer.pad_token_id,
                  tokenizer.eos_token_id)
    slot = next((c for c in candidates if c is not None), None)
    if slot is None:
        raise MasktaxError(f"the tokenizer of '{name}' has no mask, pad or EOS token; pass --mask-token-id")
    return tokenizer, int(slot)


def prompt_tokenizer(name: str | None, *, trust_remote_code: bool = False,
                     mask_token_id: int | None = None) -> tuple[Any, int]:
    """(tokenizer, id at the answer position): `name`'s tokenizer, or the embedded word-level one for None."""
    if name is not None:
        return model_tokenizer(name, trust_remote_code=trust_remote_code, mask_token_id=mask_token_id)
    tokenizer = embedded_tokenizer()
    return tokenizer, tokenizer.mask_token_id if mask_token_id is None else mask_token_id
