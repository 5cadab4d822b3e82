"""Settings parsing shared by every Lambda: defaults, types, and errors that name no value."""

from __future__ import annotations

import pytest

from lambdas.environment import SettingsError, flag, integer, names, number


def test_unset_or_empty_variables_take_the_default() -> None:
    assert integer({}, "N", 3) == 3
    assert integer({"N": ""}, "N", 3) == 3
    assert number({}, "X", 0.5) == 0.5
    assert flag({"F": " "}, "F", default=True) is True
    assert names({}, "L") == ()


def test_values_are_parsed() -> None:
    assert integer({"N": "7"}, "N", 3) == 7
    assert number({"X": "0.25"}, "X", 0.5) == 0.25
    assert flag({"F": "Yes"}, "F", default=False) is True
    assert flag({"F": "0"}, "F", default=True) is False
    assert names({"L": " a, ,b ,"}, "L") == ("a", "b")


@pytest.mark.parametrize(
    ("parse", "message"),
    [
        (lambda: integer({"N": "s3cr3t"}, "N", 1), "N must be an integer"),
        (lambda: number({"X": "s3cr3t"}, "X", 1.0), "X must be a number"),
        (lambda: flag({"F": "s3cr3t"}, "F", default=True), "F must be true or false"),
    ],
)
def test_errors_name_the_variable_never_the_value(parse: object, message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{message}$") as error:
        parse()  # type: ignore[operator]
    assert "s3cr3t" not in str(error.value)
