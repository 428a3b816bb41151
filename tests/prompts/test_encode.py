"""`masktax.prompts.encode`: answer position, suffix kinds, the token cache, the letter check, lengths."""

from __future__ import annotations

import string

import pytest
from tiny import tiny_tokenizer
from tokenizers import Tokenizer, models, processors
from transformers import PreTrainedTokenizerFast

from masktax.errors import MasktaxError
from masktax.prompts.encode import check_length, encode_item, filler_token_id, letter_token_ids
from masktax.prompts.render import arrange, prompt_text
from masktax.tasks.suite import LETTERS, get_dataset


def char_bpe(name: str, merges: list[tuple[str, str]], letters: str = "ABC") -> PreTrainedTokenizerFast:
    """A character-level BPE over printable ASCII (minus any letters left out) with the given merges."""
    vocab = {"[UNK]": 0, "<mask>": 1}
    for ch in string.printable:
        if ch not in "ABC" or ch in letters:
            vocab.setdefault(ch, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="[UNK]"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", mask_token="<mask>", name_or_path=name)


@pytest.fixture(scope="module")
def dataset():
    return get_dataset("object__smallest", n_test=20)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def plain(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("fmt", ["base", "chat"])
@pytest.mark.parametrize("position", ["right", "left", "middle"])
def test_answer_position_is_the_first_appended_id(dataset, tok, fmt, position):
    ctx = arrange(dataset, "mixed", seed=0)
    mask = tok.mask_token_id
    for query in dataset.tests[:3]:
        item = encode_item(tok, ctx, query, fmt=fmt, query_position=position, suffix="masks", n_extra=2, mask_id=mask)
        text = prompt_text(ctx, query, fmt=fmt, query_position=position, tokenizer=tok)
        assert item.ids[:item.answer_pos] == plain(tok, text.prefix)
        assert item.ids[item.answer_pos:item.answer_pos + 3] == [mask] * 3
        assert item.ids.count(mask) == 3
        rest = item.ids[item.answer_pos + 3:]
        assert rest == ([] if position == "right" else plain(tok, text.rest))
        assert item.letter_ids == tuple(tok.convert_tokens_to_ids(list(LETTERS)))
        assert item.answer_id == item.letter_ids[LETTERS.index(query.answer)]


def test_suffix_kinds(dataset, tok):
    ctx = arrange(dataset, "block", seed=0, block_position=40)
    query, mask = dataset.tests[0], tok.mask_token_id
    one = encode_item(tok, ctx, query, suffix="one_mask", mask_id=mask)
    assert one.ids[one.answer_pos:] == [mask] + plain(tok, "].")
    for n in (0, 1, 5):
        masks = encode_item(tok, ctx, query, suffix="masks", n_extra=n, mask_id=mask)
        assert masks.ids[masks.answer_pos:] == [mask] * (1 + n)
        assert masks.ids[:masks.answer_pos] == one.ids[:one.answer_pos]
        filler = encode_item(tok, ctx, query, suffix="filler", n_extra=n, mask_id=mask)
        assert filler.ids[filler.answer_pos:] == [mask] + [filler_token_id(tok)] * n
    assert filler_token_id(tok) == tok.convert_tokens_to_ids(".")
    custom = encode_item(tok, ctx, query, suffix="filler", n_extra=2, mask_id=mask, filler_id=7)
    assert custom.ids[custom.answer_pos:] == [mask, 7, 7]
    canvas = encode_item(tok, ctx, query, suffix="canvas", n_extra=2, canvas_ids=[30, 31, 32])
    assert canvas.ids[canvas.answer_pos:] == [30, 31, 32]


def test_base_prompts_get_the_tokenizers_bos_and_chat_prompts_do_not(dataset):
    tok = tiny_tokenizer()
    bos = tok.eos_token_id
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos)])
    ctx, query = arrange(dataset, "mixed", seed=0, n_distractor=3), dataset.tests[0]
    base = encode_item(tok, ctx, query, mask_id=tok.mask_token_id)
    assert base.ids[0] == bos and base.ids[1:base.answer_pos] == plain(tok, prompt_text(ctx, query).prefix)
    chat = encode_item(tok, ctx, query, fmt="chat", mask_id=tok.mask_token_id)
    assert chat.ids[0] != bos


def test_cached_head_gives_the_same_ids_as_the_whole_prefix(dataset, tok):
    """Exact split (word-level) and a merge across the head/query boundary (BPE merging "\\nO")."""
    merging = char_bpe("newline-merging-bpe", [("\n", "O")])
    for tokenizer, fmt in ((tok, "base"), (tok, "chat"), (merging, "base")):
        for position in ("right", "middle"):
            ctx = arrange(dataset, "mixed", seed=1)
            for query in dataset.tests[:8]:
                item = encode_item(tokenizer, ctx, query, fmt=fmt, query_position=position, suffix="masks",
                                   mask_id=tokenizer.mask_token_id)
                text = prompt_text(ctx, query, fmt=fmt, query_position=position, tokenizer=tokenizer)
                assert item.ids[:item.answer_pos] == plain(tokenizer, text.prefix), (fmt, position)
    head = plain(merging, prompt_text(ctx, dataset.tests[0]).head)
    assert plain(merging, prompt_text(ctx, dataset.tests[0]).prefix)[:len(head)] != head  # the split is inexact


def test_letter_check_names_the_tokenizer(dataset):
    ctx, query = arrange(dataset, "mixed", seed=0, n_distractor=2), dataset.tests[0]
    fine = char_bpe("plain-chars", [])
    assert letter_token_ids(fine) == tuple(fine.convert_tokens_to_ids(list(LETTERS)))
    merging = char_bpe("bracket-merging-bpe", [("[", "A"), ("[", "B"), ("[", "C")])
    with pytest.raises(MasktaxError, match=r"tokenizer 'bracket-merging-bpe' does not encode the answer letter 'A' "
                                           r"as one token after 'Answer:\['"):
        encode_item(merging, ctx, query, mask_id=1)
    no_letters = char_bpe("no-letters", [], letters="")
    with pytest.raises(MasktaxError, match="tokenizer 'no-letters' maps A, B, C to the same token"):
        letter_token_ids(no_letters)


def test_check_length_message(dataset, tok):
    check_length(10, 10)
    check_length(10**6, None)
    with pytest.raises(MasktaxError, match=r"^prompt of 11 tokens exceeds the model's context of 10$"):
        check_length(11, 10)
    ctx, query = arrange(dataset, "mixed", seed=0), dataset.tests[0]
    n = len(encode_item(tok, ctx, query, suffix="masks", n_extra=3, mask_id=tok.mask_token_id).ids)
    encode_item(tok, ctx, query, suffix="masks", n_extra=3, mask_id=tok.mask_token_id, max_length=n)
    with pytest.raises(MasktaxError, match=f"prompt of {n + 1} tokens exceeds the model's context of {n}"):
        encode_item(tok, ctx, query, suffix="masks", n_extra=4, mask_id=tok.mask_token_id, max_length=n)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"suffix": "dots"}, r"unknown suffix 'dots'; choose one of: one_mask, masks, filler, canvas"),
        ({"suffix": "masks", "n_extra": -1}, r"n_extra must be >= 0 \(and 0 for one_mask\), got -1"),
        ({"suffix": "one_mask", "n_extra": 2}, r"n_extra must be >= 0 \(and 0 for one_mask\), got 2"),
        ({"suffix": "masks", "mask_id": None}, r"suffix 'masks' needs a mask token id"),
        ({"suffix": "canvas", "n_extra": 1, "canvas_ids": [5]}, r"suffix 'canvas' needs 2 canvas ids, got 1"),
        ({"fmt": "markdown"}, r"unknown prompt format 'markdown'"),
        ({"query_position": "top"}, r"unknown query position 'top'"),
    ],
)
def test_encode_item_rejects_bad_input(dataset, tok, kwargs, message):
    ctx, query = arrange(dataset, "mixed", seed=0, n_distractor=2), dataset.tests[0]
    kwargs = {"mask_id": tok.mask_token_id, **kwargs}
    with pytest.raises(MasktaxError, match=message):
        encode_item(tok, ctx, query, **kwargs)


def test_filler_must_be_one_token():
    with pytest.raises(MasktaxError, match=r"tokenizer 'spaced-chars' does not encode ' \.' as one token; pass filler_id"):
        filler_token_id(char_bpe("spaced-chars", []))
