"""masktax.prompts.show: which suffixes `masktax suite show` offers."""

from __future__ import annotations

from masktax.prompts.encode import SUFFIXES
from masktax.prompts.show import SHOW_SUFFIXES


def test_show_suffixes_are_the_encoders_minus_canvas():
    assert SHOW_SUFFIXES == tuple(s for s in SUFFIXES if s != "canvas")
