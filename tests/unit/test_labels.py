"""``--labels`` options and the ``LabelSet`` parameter: parsed, coloured and written back the same."""

from __future__ import annotations

import pytest
from gtaudit.exceptions import InvalidLabelSetError
from gtaudit.labels import DEFAULT_LABELS, PALETTE, parse_label_option, parse_label_set


def test_names_take_palette_colours_in_order() -> None:
    ls = parse_label_option("cat, dog")
    assert ls.names == ["cat", "dog"]
    assert [lb.color for lb in ls.labels] == list(PALETTE[:2])


def test_a_name_may_carry_its_colour_and_the_others_avoid_it() -> None:
    ls = parse_label_option("猫=#2CA02C,dog,人=#0000ff")
    assert ls.colors() == {"猫": "#2ca02c", "dog": PALETTE[1], "人": "#0000ff"}


def test_an_equals_sign_without_a_colour_stays_part_of_the_name() -> None:
    assert parse_label_option("a=b,c").names == ["a=b", "c"]


def test_json_and_empty_values_read_as_the_parameter_does() -> None:
    assert parse_label_option('[{"label": "cat", "color": "#123456"}]').colors() == {"cat": "#123456"}
    assert parse_label_option(None).names == list(DEFAULT_LABELS)
    assert parse_label_option("  ").names == list(DEFAULT_LABELS)


def test_to_json_round_trips_through_the_parameter_parser() -> None:
    ls = parse_label_option("猫=#2ca02c,dog")
    assert parse_label_set(ls.to_json()) == ls


@pytest.mark.parametrize("bad", ["cat,cat", "cat=#ffffff", "a=#111111,b=#111111", "BACKGROUND"])
def test_bad_sets_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(InvalidLabelSetError):
        parse_label_option(bad)
