"""``botkit.http_json.loads_json``: standard JSON in UTF-8 only (the readers of request
bodies are tested through both servers: test_agent_api_bodies.py and
tests/connectors/web/test_web_bodies.py)."""

from __future__ import annotations

import codecs

import pytest

from botkit.http_json import loads_json


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        '{"n": Infinity}',
        "[-Infinity]",
        b'{"t": "\xff"}',  # not UTF-8
        b'{"t": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 (json.loads takes it)
        codecs.BOM_UTF16_LE + '{"t": 1}'.encode("utf-16-le"),  # json.loads guesses UTF-16
        '{"t": 1',
    ],
)
def test_what_is_not_standard_json_in_utf8_is_refused(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        loads_json(text)


def test_standard_json_is_read_as_json_loads_reads_it() -> None:
    assert loads_json('{"a": 1, "a": 2, "f": 1.5e3}') == {"a": 2, "f": 1500.0}  # last wins
    assert loads_json(codecs.BOM_UTF8 + '{"é": "ü"}'.encode()) == {"é": "ü"}
    assert loads_json('"\\ud800"') == "\ud800"  # an escape is JSON text, as before
    with pytest.raises(RecursionError):
        loads_json("[" * 100_000)
