"""Query parsing: continue tokens are opaque and round-trip; anything else is a 400."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict

from reporter.errors import BadParameter
from reporter.params import decode_continue, encode_continue, integer


@given(st.text(min_size=1, max_size=300))
def test_a_continue_token_round_trips_any_name(name: str) -> None:
    token = encode_continue(name)
    assert decode_continue(MultiDict({"continue": token})) == name


@given(st.text(max_size=100))
def test_random_text_as_a_token_is_a_bad_parameter_or_a_name_never_a_crash(raw: str) -> None:
    rejected: BadParameter | None = None
    try:
        after = decode_continue(MultiDict({"continue": raw}))
    except BadParameter as e:
        rejected = e
    if rejected is not None:
        assert rejected.parameter == "continue"
    else:
        assert isinstance(after, str)
        assert after


@pytest.mark.parametrize("raw", ["", "n1.", "n1.bm90IGpzb24", "n1.eyJhZnRlciI6IDF9", "x" * 3000])
def test_malformed_tokens_name_the_continue_parameter(raw: str) -> None:
    with pytest.raises(BadParameter) as caught:
        decode_continue(MultiDict({"continue": raw}))
    assert caught.value.parameter == "continue"


def test_an_absent_integer_takes_its_default_and_a_present_one_is_range_checked() -> None:
    assert integer(MultiDict(), "hours", default=24, low=1, high=72) == 24
    assert integer(MultiDict({"hours": "72"}), "hours", default=24, low=1, high=72) == 72
    with pytest.raises(BadParameter, match="hours: must be from 1 to 72, got 73"):
        integer(MultiDict({"hours": "73"}), "hours", default=24, low=1, high=72)
