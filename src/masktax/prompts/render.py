"""Prompt text: arranging a dataset's in-context examples and rendering base / chat prompts.

A prompt is the in-context examples plus one query (a test point). The query sits at the right
end (after the context), the left end (before it) or the middle (after half of it). Every prompt
is split into three texts so that `masktax.prompts.encode` can put token ids at the answer position:

    head  = shared + query_text      everything up to and including `Answer:[` of the query
    (answer position: a mask, a canvas token, ...)
    tail  = `].` + the context that follows the query ("" context -> just `].`)

`shared` is the same for every query of a context, so its tokens can be cached.

Base format: items `Options: ...\\nAnswer:[X].` joined by "\\n\\n". Chat format ([P1]): each example
is a user turn (`Options: ...`) and an assistant turn (`Answer:[X].`); the query is a user turn,
the generation prompt opens the assistant turn, and `Answer:[` follows it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from masktax.errors import MasktaxError
from masktax.tasks.suite import (
    ANSWER_CLOSE,
    ANSWER_PREFIX,
    ITEM_SEPARATOR,
    Dataset,
    Example,
    answer_text,
    derived_seed,
    item_text,
    options_line,
)

ARRANGEMENTS = ("mixed", "block")
FORMATS = ("base", "chat")
QUERY_POSITIONS = ("right", "left", "middle")
SENTINEL = "\x00masktax-query\x00"  # stands in for the query's options line when rendering a chat template


def arrange(
    dataset: Dataset,
    arrangement: str,
    *,
    seed: int,
    n_relevant: int = 10,
    n_distractor: int = 40,
    block_position: int | None = None,
) -> list[Example]:
    """The in-context examples of a prompt: the first `n_relevant` relevant and first `n_distractor`
    distractor examples of the dataset's fixed context.

    "mixed": one seeded shuffle of both groups (seed derived from `seed`, dataset name and sizes).
    "block": the relevant examples as one contiguous block after `block_position` distractors
    (0 = at the start, n_distractor = at the end next to a right-end query); the order inside each
    group is the stored one, so only the block moves ([P1] locality probe).
    """
    relevant, distractor = dataset.relevant_examples, dataset.distractor_examples
    if not 0 <= n_relevant <= len(relevant):
        raise MasktaxError(f"n_relevant must be in 0..{len(relevant)}, got {n_relevant}")
    if not 0 <= n_distractor <= len(distractor):
        raise MasktaxError(f"n_distractor must be in 0..{len(distractor)}, got {n_distractor}")
    rel, dis = list(relevant[:n_relevant]), list(distractor[:n_distractor])
    if arrangement == "mixed":
        out = rel + dis
        random.Random(derived_seed(seed, dataset.name, "mixed", n_relevant, n_distractor)).shuffle(out)
        return out
    if arrangement == "block":
        if block_position is None or not 0 <= block_position <= n_distractor:
            raise MasktaxError(f"the block arrangement needs a block position in 0..{n_distractor}, got {block_position}")
        return dis[:block_position] + rel + dis[block_position:]
    raise MasktaxError(f"unknown arrangement '{arrangement}'; choose from {', '.join(ARRANGEMENTS)}")


def split_context(context: list[Example] | tuple[Example, ...], query_position: str) -> tuple[list[Example], list[Example]]:
    """(examples before the query, examples after it) for a query position."""
    context = list(context)
    if query_position == "right":
        return context, []
    if query_position == "left":
        return [], context
    if query_position == "middle":
        half = len(context) // 2
        return context[:half], context[half:]
    raise MasktaxError(f"unknown query position '{query_position}'; choose from {', '.join(QUERY_POSITIONS)}")


@dataclass(frozen=True)
class PromptParts:
    """A prompt as texts: `shared + query_text` ends with `Answer:[`; `tail` follows the answer slot.

    query_text contains `SENTINEL` where the query's options line goes (see `fill`), so one
    `PromptParts` serves every query of a context.
    """

    shared: str
    query_text: str
    tail: str

    def fill(self, query: Example) -> str:
        """The query-dependent part of the head for this query."""
        return self.query_text.replace(SENTINEL, options_line(query))


def base_parts(before: list[Example], after: list[Example]) -> PromptParts:
    """Base format: items with answers joined by "\\n\\n", the query cut after `Answer:[`."""
    shared = "".join(item_text(e) + ITEM_SEPARATOR for e in before)
    tail = ANSWER_CLOSE + "".join(ITEM_SEPARATOR + item_text(e) for e in after)
    return PromptParts(shared=shared, query_text=f"{SENTINEL}\n{ANSWER_PREFIX}", tail=tail)


def chat_messages(examples: list[Example]) -> list[dict[str, str]]:
    """Each example as a user turn (options line) and an assistant turn (`Answer:[X].`)."""
    out: list[dict[str, str]] = []
    for e in examples:
        out.append({"role": "user", "content": options_line(e)})
        out.append({"role": "assistant", "content": answer_text(e)})
    return out


def render_chat(tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool) -> str:
    """The tokenizer's chat template as text; MasktaxError if it has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise MasktaxError(f"tokenizer '{_tokenizer_name(tokenizer)}' has no chat template; use the base format")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    if not isinstance(text, str):
        raise MasktaxError("the chat template did not render to text")
    return text


def chat_parts(tokenizer: Any, before: list[Example], after: list[Example]) -> PromptParts:
    """Chat format: the template rendered with a sentinel query, split around the sentinel.

    head = template(before turns + user query, generation prompt) + `Answer:[`. The tail is
    what the template renders after the answer letter when the query's assistant turn is
    `Answer:[X].` and the remaining turns follow; at the right end it is just `].`.
    MasktaxError if the template renders the assistant turn other than after its generation prompt.
    """
    query_turn = {"role": "user", "content": SENTINEL}
    head = render_chat(tokenizer, [*chat_messages(before), query_turn], add_generation_prompt=True) + ANSWER_PREFIX
    if head.count(SENTINEL) != 1:
        raise MasktaxError("the chat template does not render the user's message verbatim; use the base format")
    cut = head.index(SENTINEL)
    tail = ANSWER_CLOSE
    if after:
        answered = {"role": "assistant", "content": f"{ANSWER_PREFIX}A{ANSWER_CLOSE}"}
        full = render_chat(tokenizer, [*chat_messages(before), query_turn, answered, *chat_messages(after)],
                           add_generation_prompt=False)
        if not full.startswith(head + "A"):
            raise MasktaxError(
                "the chat template renders an assistant turn differently from its generation prompt; "
                "use the base format or the right query position"
            )
        tail = full[len(head) + 1:]
    return PromptParts(shared=head[:cut], query_text=head[cut:], tail=tail)


def prompt_parts(
    context: list[Example] | tuple[Example, ...], *, fmt: str = "base", query_position: str = "right", tokenizer: Any = None
) -> PromptParts:
    """The `PromptParts` of a context for a format and query position (chat needs the tokenizer)."""
    before, after = split_context(context, query_position)
    if fmt == "base":
        return base_parts(before, after)
    if fmt == "chat":
        if tokenizer is None:
            raise MasktaxError("the chat format needs a tokenizer with a chat template")
        return chat_parts(tokenizer, before, after)
    raise MasktaxError(f"unknown prompt format '{fmt}'; choose from {', '.join(FORMATS)}")


def render_text(
    context: list[Example] | tuple[Example, ...],
    query: Example,
    *,
    fmt: str = "base",
    query_position: str = "right",
    tokenizer: Any = None,
    slot: str | None = None,
) -> str:
    """The whole prompt as text with `slot` at the answer position (default: the query's letter)."""
    parts = prompt_parts(context, fmt=fmt, query_position=query_position, tokenizer=tokenizer)
    return parts.shared + parts.fill(query) + (query.answer if slot is None else slot) + parts.tail


@dataclass(frozen=True)
class PromptText:
    """One prompt as text around its answer slot: `head + query` ends with `Answer:[`, `rest` follows.

    `head` is shared by every query of a context and format (its tokens are cached by the encoder).
    """

    head: str
    query: str
    rest: str

    @property
    def prefix(self) -> str:
        """Everything up to and including the query's `Answer:[`."""
        return self.head + self.query


@lru_cache(maxsize=128)
def _cached_parts(context: tuple[Example, ...], fmt: str, query_position: str, tokenizer: Any) -> PromptParts:
    return prompt_parts(context, fmt=fmt, query_position=query_position, tokenizer=tokenizer)


def prompt_text(
    context: Sequence[Example], query: Example, *, fmt: str = "base", query_position: str = "right", tokenizer: Any = None
) -> PromptText:
    """The `PromptText` of `query` after (or before, or amid) `context` in a format.

    Chat templates are rendered once per (context, format, position, tokenizer) and reused.
    """
    key_tok = tokenizer if fmt == "chat" else None
    try:
        parts = _cached_parts(tuple(context), fmt, query_position, key_tok)
    except TypeError:  # an unhashable tokenizer: render without the cache
        parts = prompt_parts(context, fmt=fmt, query_position=query_position, tokenizer=tokenizer)
    return PromptText(head=parts.shared, query=parts.fill(query), rest=parts.tail)


def _tokenizer_name(tokenizer: Any) -> str:
    """A tokenizer's name for error messages."""
    return str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
