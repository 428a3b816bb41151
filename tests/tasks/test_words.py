from masktax.embedded.tokenizer import build_tokenizer, pieces
from masktax.tasks.words import EXTRA_CATEGORIES, PROBE_CATEGORIES, all_words, category_of, load_words


def test_every_probe_category_has_at_least_60_words():
    words = load_words()
    for cat in PROBE_CATEGORIES:
        assert len(words[cat]) >= 60, cat


def test_extra_categories_are_substantial():
    words = load_words()
    assert len(EXTRA_CATEGORIES) >= 10
    for cat in EXTRA_CATEGORIES:
        assert len(words[cat]) >= 40, cat


def test_every_word_in_exactly_one_category_case_insensitively():
    seen: dict[str, str] = {}
    for cat, ws in load_words().items():
        for w in ws:
            assert w.lower() not in seen, f"{w} in {seen.get(w.lower())} and {cat}"
            seen[w.lower()] = cat


def test_words_are_plain_letters_and_case_matches_category():
    words = load_words()
    for ws in words.values():
        for w in ws:
            assert w.isalpha(), w
    assert all(w[0].isupper() and w[1:].islower() for w in words["capitalised"])
    assert all(w.islower() for w in words["lower_case"])


def test_category_of_and_tokenizer_covers_every_word_as_one_token():
    assert category_of("Garden") == "capitalised"
    assert category_of("nonexistentword") is None
    tok = build_tokenizer(all_words())
    for w in all_words():
        assert len(pieces(w)) == 1
        assert tok.convert_tokens_to_ids(w) != tok.unk_token_id, w
