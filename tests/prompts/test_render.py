"""`masktax.prompts.render`: arrangements (mixed / block) and query positions in base and chat text."""

from __future__ import annotations

import pytest
from tiny import tiny_tokenizer

from masktax.errors import MasktaxError
from masktax.prompts.render import arrange, prompt_text, render_text, split_context
from masktax.tasks.suite import get_dataset, item_text


@pytest.fixture(scope="module")
def dataset():
    return get_dataset("animal__largest", n_test=5)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_block_position_moves_only_the_relevant_block(dataset):
    rel, dis = list(dataset.relevant_examples), list(dataset.distractor_examples)
    for position in range(0, 41):
        out = arrange(dataset, "block", seed=0, block_position=position)
        assert out[position:position + 10] == rel
        assert out[:position] + out[position + 10:] == dis
    assert arrange(dataset, "block", seed=0, block_position=7) == arrange(dataset, "block", seed=9, block_position=7)


def test_block_with_fewer_examples_uses_the_stored_prefixes(dataset):
    out = arrange(dataset, "block", seed=0, n_relevant=4, n_distractor=6, block_position=6)
    assert out == list(dataset.distractor_examples[:6]) + list(dataset.relevant_examples[:4])


def test_mixed_is_a_seeded_permutation(dataset):
    out = arrange(dataset, "mixed", seed=0)
    assert sorted(out, key=repr) == sorted(dataset.context, key=repr)
    assert out != list(dataset.context)
    assert arrange(dataset, "mixed", seed=0) == out
    assert arrange(dataset, "mixed", seed=1) != out
    small = arrange(dataset, "mixed", seed=0, n_relevant=10, n_distractor=5)
    assert sorted(small, key=repr) == sorted([*dataset.relevant_examples, *dataset.distractor_examples[:5]], key=repr)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arrangement": "block", "block_position": 41}, r"block position in 0..40, got 41"),
        ({"arrangement": "block", "block_position": -1}, r"block position in 0..40, got -1"),
        ({"arrangement": "block"}, r"block position in 0..40, got None"),
        ({"arrangement": "spiral"}, r"unknown arrangement 'spiral'"),
        ({"arrangement": "mixed", "n_relevant": 11}, r"n_relevant must be in 0..10, got 11"),
        ({"arrangement": "mixed", "n_distractor": -1}, r"n_distractor must be in 0..40, got -1"),
    ],
)
def test_arrange_rejects_bad_input(dataset, kwargs, message):
    with pytest.raises(MasktaxError, match=message):
        arrange(dataset, seed=0, **kwargs)


def test_split_context_positions(dataset):
    ctx = list(dataset.context)
    assert split_context(ctx, "right") == (ctx, [])
    assert split_context(ctx, "left") == ([], ctx)
    assert split_context(ctx, "middle") == (ctx[:25], ctx[25:])
    with pytest.raises(MasktaxError, match="unknown query position 'top'"):
        split_context(ctx, "top")


@pytest.mark.parametrize("position", ["right", "left", "middle"])
def test_base_query_sits_where_the_position_says(dataset, position):
    ctx = arrange(dataset, "mixed", seed=0)
    query = dataset.tests[0]
    before, after = {"right": (ctx, []), "left": ([], ctx), "middle": (ctx[:25], ctx[25:])}[position]
    expected = "\n\n".join(item_text(e) for e in [*before, query, *after])
    assert render_text(ctx, query, query_position=position) == expected
    text = prompt_text(ctx, query, query_position=position)
    assert text.head == "".join(item_text(e) + "\n\n" for e in before)
    assert text.query == item_text(query, answer=False)
    assert text.rest == "]." + "".join("\n\n" + item_text(e) for e in after)


@pytest.mark.parametrize("position", ["right", "left", "middle"])
def test_chat_query_is_the_last_user_turn_of_its_part(dataset, tok, position):
    ctx = arrange(dataset, "mixed", seed=0, n_distractor=4)
    query = dataset.tests[1]
    before, after = split_context(ctx, position)

    def turns(examples):
        out = []
        for e in examples:
            out += [{"role": "user", "content": item_text(e).split("\n")[0]},
                    {"role": "assistant", "content": item_text(e).split("\n")[1]}]
        return out

    q_user = {"role": "user", "content": item_text(query).split("\n")[0]}
    text = prompt_text(ctx, query, fmt="chat", query_position=position, tokenizer=tok)
    opened = tok.apply_chat_template([*turns(before), q_user], tokenize=False, add_generation_prompt=True)
    assert text.prefix == opened + "Answer:["
    full = render_text(ctx, query, fmt="chat", query_position=position, tokenizer=tok)
    if position == "right":
        assert text.rest == "]."
    else:
        answered = {"role": "assistant", "content": f"Answer:[{query.answer}]."}
        assert full == tok.apply_chat_template([*turns(before), q_user, answered, *turns(after)], tokenize=False)


def test_chat_errors(dataset):
    ctx = arrange(dataset, "mixed", seed=0, n_distractor=2)
    query = dataset.tests[0]
    with pytest.raises(MasktaxError, match="the chat format needs a tokenizer"):
        prompt_text(ctx, query, fmt="chat")
    with pytest.raises(MasktaxError, match="unknown prompt format 'markdown'"):
        prompt_text(ctx, query, fmt="markdown")
    bare = tiny_tokenizer()
    bare.chat_template = None
    with pytest.raises(MasktaxError, match="has no chat template; use the base format"):
        prompt_text(ctx, query, fmt="chat", tokenizer=bare)
    odd = tiny_tokenizer()  # the generation prompt differs from how assistant turns are rendered
    odd.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'assistant' %}<|system|>{% else %}<|user|>{% endif %}"
        "{{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    assert prompt_text(ctx, query, fmt="chat", tokenizer=odd).rest == "]."  # fine at the right end
    with pytest.raises(MasktaxError, match="renders an assistant turn differently"):
        prompt_text(ctx, query, fmt="chat", query_position="middle", tokenizer=odd)
