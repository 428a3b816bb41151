"""A probe's options: the flag-value parsers (every error message), each probe's Options dataclass (a
library call and the command line give the same values and errors), and RunConfig's checks."""

from __future__ import annotations

import dataclasses
import re

import pytest

from masktax.errors import MasktaxError
from masktax.probes import PROBES, RunConfig
from masktax.probes.options import (
    flag_name,
    int_grid,
    int_list,
    name_grid,
    name_list,
    one_int,
    pieces,
    to_json,
)


def raises(message: str):
    """pytest.raises(MasktaxError) matching the whole message."""
    return pytest.raises(MasktaxError, match=f"^{re.escape(message)}$")


def test_pieces_split_strings_and_keep_ints_and_sequences():
    assert pieces(" a, b ,c", "--x", "a,b") == ["a", "b", "c"]
    assert pieces(7, "--x", "1,2") == [7] and pieces((1, 2), "--x", "1,2") == [1, 2]
    assert pieces("", "--x", "a,b") == [] and pieces("  ", "--x", "a,b") == []


def test_int_grid():
    assert int_grid("0, 2,20", "masks") == (0, 2, 20) == int_grid((0, 2, 20), "masks")
    assert int_grid([0, "2", 20], "masks") == (0, 2, 20)
    assert int_grid(5, "masks") == (5,)


POSITIONS = ("left", "middle", "right")
ORDERS = ("random", "confidence")


def test_name_grid():
    assert name_grid("right,left", "query-position", POSITIONS) == ("right", "left")
    assert name_grid(("middle",), "query-position", POSITIONS) == ("middle",)


def test_int_list():
    assert int_list("2,4,6", "--steps", minimum=1) == (2, 4, 6) == int_list((2, 4, 6), "--steps", minimum=1)
    assert int_list(40, "--steps", minimum=1) == (40,)


def test_name_list():
    assert name_list("confidence, random", "--order", ORDERS) == ("confidence", "random")


ERRORS = [
    (lambda: pieces("a,,b", "--x", "a,b"), "--x 'a,,b' has an empty entry; give comma-separated values such as a,b"),
    (lambda: pieces("a,", "--x", "a,b"), "--x 'a,' has an empty entry; give comma-separated values such as a,b"),
    (lambda: int_grid("", "masks"), "--grid is empty for the masks probe"),
    (lambda: int_grid((), "masks"), "--grid is empty for the masks probe"),
    (lambda: int_grid("1,,x", "masks"), "--grid '1,,x' has an empty entry; give comma-separated values such as 0,1,2"),
    (lambda: int_grid("0,x", "masks"), "--grid value 'x' is not an integer"),
    (lambda: int_grid("1.5", "masks"), "--grid value '1.5' is not an integer"),
    (lambda: int_grid("-1,2", "masks"), "--grid value -1 is out of range for masks: at least 0"),
    (lambda: int_grid("0,41", "locality", maximum=40), "--grid value 41 is out of range for locality: at least 0 and at most 40"),
    (lambda: int_grid("0", "p", minimum=1, maximum=3), "--grid value 0 is out of range for p: at least 1 and at most 3"),
    (lambda: int_grid("0,2,0", "masks"), "--grid has repeated values: 0,2,0"),
    (lambda: name_grid("", "query-position", POSITIONS), "--grid is empty for the query-position probe"),
    (lambda: name_grid("left,up", "query-position", POSITIONS), "--grid value 'up' is not valid for query-position; use left,middle,right"),
    (lambda: name_grid("left,,up", "query-position", POSITIONS), "--grid 'left,,up' has an empty entry; give comma-separated values such as left,middle,right"),
    (lambda: name_grid("left,left", "query-position", POSITIONS), "--grid has repeated values: left,left"),
    (lambda: int_list("", "--steps", minimum=1), "--steps is empty; give comma-separated integers such as 2,4,6"),
    (lambda: int_list("2,,4", "--steps", minimum=1), "--steps '2,,4' has an empty entry; give comma-separated values such as 2,4,6"),
    (lambda: int_list("two", "--steps", minimum=1), "--steps value 'two' is not an integer"),
    (lambda: int_list("2,0", "--steps", minimum=1), "--steps values must be at least 1, got 0"),
    (lambda: int_list("2,2", "--steps", minimum=1), "--steps has repeated values: 2,2"),
    (lambda: name_list("", "--order", ORDERS), "--order is empty; choose random or confidence"),
    (lambda: name_list("random,sideways", "--order", ORDERS), "--order 'sideways' is unknown; choose one of random, confidence"),
    (lambda: name_list("random,", "--order", ORDERS), "--order 'random,' has an empty entry; give comma-separated values such as random,confidence"),
    (lambda: name_list(("random", "random"), "--order", ORDERS), "--order has repeated values: random,random"),
]


@pytest.mark.parametrize("call,message", ERRORS)
def test_parsers_errors(call, message):
    with raises(message):
        call()


def test_one_int():
    assert one_int("49", "--n-masks", minimum=0) == 49 == one_int(49, "--n-masks", minimum=0)
    with raises("--n-masks must be an integer, got 'many'"):
        one_int("many", "--n-masks", minimum=0)
    with raises("--n-masks must be an integer, got 'None'"):
        one_int(None, "--n-masks", minimum=0)
    with raises("--n-masks must be at least 0, got -1"):
        one_int("-1", "--n-masks", minimum=0)


def test_every_probe_has_its_options_and_a_grid_as_text_or_tuple():
    grids = {"masks": "0,2", "filler": "0,2", "locality": "0,40", "context-length": "0,10", "unmask": "0,2",
             "uncertainty": "0,2", "query-position": "left,right", "format": "0,200"}
    for name, probe in PROBES.items():
        assert probe.NAME == name and dataclasses.is_dataclass(probe.Options)
        probe.Options()  # the defaults are valid
        fields = {f.name for f in dataclasses.fields(probe.Options)}
        assert ("grid" in fields) == (name in grids), name
        if name in grids:
            text = grids[name]
            as_tuple = tuple(int(v) if v.isdigit() else v for v in text.split(","))
            assert probe.Options(grid=text) == probe.Options(grid=as_tuple)
            assert probe.Options(grid=text).grid == as_tuple
    assert {f.name for f in dataclasses.fields(PROBES["unmask"].Options)} == {
        "grid", "steps", "order", "soft_mask", "soft_mask_from", "cache"}
    assert {f.name for f in dataclasses.fields(PROBES["attribution"].Options)} == {"n_masks", "orderings", "questions"}
    assert {f.name for f in dataclasses.fields(PROBES["uncertainty"].Options)} == {"grid", "from_run"}
    assert dataclasses.fields(PROBES["accuracy"].Options) == ()


def test_options_check_their_values_when_made():
    with raises("--grid value 41 is out of range for locality: at least 0 and at most 40"):
        PROBES["locality"].Options(grid="0,41")
    with raises("--grid value 41 is out of range for context-length: at least 0 and at most 40"):
        PROBES["context-length"].Options(grid=(41,))
    with raises("--steps values must be at least 1, got 0"):
        PROBES["unmask"].Options(steps="0")
    with raises("--orderings must be at least 1, got 0"):
        PROBES["attribution"].Options(orderings=0)
    unmask = PROBES["unmask"].Options(steps="2,4", order="random")
    assert unmask.steps == (2, 4) and unmask.order == ("random",) and unmask.series() == ["random-2", "random-4"]


def test_an_option_the_probe_does_not_take_is_a_type_error():
    with pytest.raises(TypeError, match="steps"):
        PROBES["masks"].Options(steps=2)
    with pytest.raises(TypeError, match="grid"):
        PROBES["accuracy"].Options(grid=(1,))


def test_flag_names_and_the_stored_form():
    unmask = {f.name: f for f in dataclasses.fields(PROBES["unmask"].Options)}
    uncertainty = {f.name: f for f in dataclasses.fields(PROBES["uncertainty"].Options)}
    assert flag_name(unmask["soft_mask_from"]) == "--soft-mask-from" and flag_name(uncertainty["from_run"]) == "--from"
    run = {f.name: f for f in dataclasses.fields(RunConfig)}
    assert flag_name(run["models"]) == "--model" and flag_name(run["finetunes"]) == "--finetune"
    assert to_json(PROBES["unmask"].Options(grid="0,2", steps=2, order="random")) == {
        "grid": [0, 2], "steps": [2], "order": ["random"], "soft_mask": False, "soft_mask_from": None}


@pytest.mark.parametrize(("kw", "message"), [
    ({"models": ()}, "give at least one --model"),
    ({"n_items": 0}, "--n-items must be at least 1, got 0"),
    ({"format": "fancy"}, "--format must be one of auto, base, chat, got 'fancy'"),
    ({"dtype": "int8"}, "--dtype must be one of auto, float32, bfloat16, float16, got 'int8'"),
    ({"device": "tpu"}, "--device must be one of auto, cpu, cuda or cuda:N, got 'tpu'"),
    ({"mask_token_id": -1}, "--mask-token-id must be non-negative, got -1"),
    ({"batch_size": 0}, "--batch-size must be 'auto' or a positive integer, got 0"),
    ({"batch_size": "lots"}, "--batch-size must be 'auto' or a positive integer, got 'lots'"),
    ({"datasets": "a,,b"}, "--datasets 'a,,b' has an empty entry; give comma-separated values such as "
                           "country__smallest,verb__largest"),
    ({"datasets": ()}, "--datasets is empty"),
    ({"models": ("m", "m")}, "the same --model is given twice (with the same --finetune)"),
])
def test_run_config_checks_its_flags(kw, message):
    with raises(message):
        RunConfig(**{"models": ("m",), "out": "unused", **kw})


def test_run_config_normalises_its_flags():
    cfg = RunConfig(models="m", out="o", datasets="a, b", batch_size="8", finetunes=("none",))
    assert cfg.models == ("m",) and cfg.datasets == ("a", "b") and cfg.batch_size == 8 and cfg.finetunes is None
    assert RunConfig(models=("m",), out="o", datasets="").datasets is None  # "" = all, as without the flag
    assert RunConfig(models=("m", "n"), out="o").finetune_dirs() == (None, None)
