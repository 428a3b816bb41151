"""Token ids of an appendix suite's prompt (masktax.tasks.appendix), in the layout of `encode_item`.

Base format: `[system + "\\n\\n"] + examples + query text + "\\n" + answer prefix`, examples
`<text>\\n<prefix><label><close>` joined by "\\n\\n"; with the question at the left end the examples
follow its `<close>`. Chat format (instruct models): a system turn when the task has one, each
example as a user turn (its text) and an assistant turn (its answer line), the question as a user
turn (the last one at the right end), then the answer prefix after the generation prompt.

Scoring a label (first-token rule): the answer position is the first position after the answer
prefix, as in the main suite; a label's id is the FIRST token it adds after the prefix. The engine's
restricted choice is the argmax over the labels' first-token logits and exact match compares the
full-vocabulary argmax with the correct label's first token. That is exact for single-token labels
([P1]'s ICL sets, HotPotQA's A/B) and a first-token rule for longer ones (e.g. "Above" in a
tokenizer that splits it). Labels whose first tokens coincide (e.g. both unknown to a word-level
tokenizer) cannot be told apart: an error suggests `--labels letters`. The engine holds three
label ids per item; two-label tasks repeat the first label's id in the third slot (the argmax takes
the first of equal values, so the repeat never wins and `choice` is always a real label).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from masktax.errors import MasktaxError
from masktax.prompts.encode import EncodedItem, _continuation, check_suffix_args, suffixed_ids
from masktax.prompts.render import SENTINEL, PromptText, _tokenizer_name, render_chat
from masktax.tasks.appendix import Item, TaskSet

_LABEL_IDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def label_token_ids(tokenizer: Any, task: TaskSet) -> tuple[int, int, int]:
    """The first token of each label after the answer prefix, padded to three (see the docstring)."""
    memo = _LABEL_IDS.setdefault(tokenizer, {})
    key = (task.answer_prefix, task.labels)
    if key not in memo:
        ids = []
        for label in task.labels:
            extra = _continuation(tokenizer, task.answer_prefix, label)
            if not extra:
                raise MasktaxError(f"tokenizer {_tokenizer_name(tokenizer)!r} does not continue "
                                   f"{task.answer_prefix!r} with the label {label!r}")
            ids.append(extra[0])
        unk = getattr(tokenizer, "unk_token_id", None)
        if len(set(ids)) != len(ids) or (unk is not None and unk in ids):
            raise MasktaxError(f"tokenizer {_tokenizer_name(tokenizer)!r} cannot tell the labels "
                               f"{', '.join(task.labels)} of {task.name} apart by their first token; use --labels letters")
        memo[key] = tuple(ids + ids[:1] * (3 - len(ids)))
    return memo[key]


def prompt_text(task: TaskSet, context: Sequence[Item], query: Item, *, fmt: str = "base",
                query_position: str = "right", tokenizer: Any = None) -> PromptText:
    """The prompt around the answer slot: `head + query` ends with the answer prefix, `rest` follows it."""
    if query_position not in ("right", "left"):
        raise MasktaxError(f"the appendix suites put the question at the right or left end, not '{query_position}'")
    before, after = (list(context), []) if query_position == "right" else ([], list(context))
    sep = task.separator
    if fmt == "base":
        head = (task.system + sep if task.system else "") + "".join(task.example_text(e) + sep for e in before)
        rest = task.answer_close + "".join(sep + task.example_text(e) for e in after)
        return PromptText(head=head, query=f"{query.text}\n{task.answer_prefix}", rest=rest)
    if fmt != "chat":
        raise MasktaxError(f"unknown prompt format '{fmt}'; choose from base, chat")
    if tokenizer is None:
        raise MasktaxError("the chat format needs a tokenizer with a chat template")
    system = [{"role": "system", "content": task.system}] if task.system else []
    query_turn = {"role": "user", "content": SENTINEL}
    text = render_chat(tokenizer, [*system, *_turns(task, before), query_turn], add_generation_prompt=True)
    text += task.answer_prefix
    if text.count(SENTINEL) != 1:
        raise MasktaxError("the chat template does not render the user's message verbatim; use the base format")
    rest = task.answer_close
    if after:  # as masktax.prompts.render.chat_parts: the turns after the answered question, as rendered
        label = task.labels[0]
        answered = {"role": "assistant", "content": f"{task.answer_prefix}{label}{task.answer_close}"}
        full = render_chat(tokenizer, [*system, query_turn, answered, *_turns(task, after)], add_generation_prompt=False)
        if not full.startswith(text + label):
            raise MasktaxError("the chat template renders an assistant turn differently from its generation prompt; "
                               "use the base format or the right query position")
        rest = full[len(text) + len(label):]
    cut = text.index(SENTINEL)
    return PromptText(head=text[:cut], query=text[cut:].replace(SENTINEL, query.text), rest=rest)


def _turns(task: TaskSet, examples: Sequence[Item]) -> list[dict[str, str]]:
    """Each example as a user turn (its text) and an assistant turn (its answer line)."""
    out: list[dict[str, str]] = []
    for e in examples:
        out += [{"role": "user", "content": e.text}, {"role": "assistant", "content": task.answer_text(e)}]
    return out


def encode_suite_item(
    tokenizer: Any,
    task: TaskSet,
    context: Sequence[Item],
    query: Item,
    *,
    fmt: str = "base",
    query_position: str = "right",
    suffix: str = "one_mask",
    n_extra: int = 0,
    mask_id: int | None = None,
    filler_id: int | None = None,
    canvas_ids: Sequence[int] | None = None,
    max_length: int | None = None,
) -> EncodedItem:
    """`masktax.prompts.encode.encode_item` for an appendix task: the same suffixes and checks."""
    check_suffix_args(suffix, n_extra, mask_id)
    labels = label_token_ids(tokenizer, task)
    text = prompt_text(task, context, query, fmt=fmt, query_position=query_position, tokenizer=tokenizer)
    ids, answer_pos = suffixed_ids(tokenizer, text, fmt=fmt, query_position=query_position, suffix=suffix,
                                   n_extra=n_extra, mask_id=mask_id, filler_id=filler_id, canvas_ids=canvas_ids,
                                   max_length=max_length)
    return EncodedItem(ids, answer_pos, labels[query.answer], labels)
