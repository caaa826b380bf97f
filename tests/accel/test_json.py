"""json_object_spans: both implementations against the same vectors, orjson's verdicts and the
members' own values.

Every vector goes through both implementations as str and as UTF-8 bytes: the results must be
identical (the same spans, or the same error message), valid exactly when orjson.loads gives a
dict, and each span's text must decode to that member's value.
"""

from __future__ import annotations

import contextlib
import json
import re
from types import ModuleType

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .strategies import json_objects, mutated_json

MAX_DEPTH = 1024  # orjson.loads' own nesting limit, so verdicts compare with it as they are

Outcome = dict[str, tuple[int, int]] | str


def outcome(impl: ModuleType, text: str | bytes, max_depth: int = MAX_DEPTH) -> Outcome:
    try:
        return impl.json_object_spans(text, max_depth)
    except ValueError as exc:
        return str(exc)


def orjson_accepts(text: str | bytes) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def check(pure: ModuleType, rust: ModuleType, text: str) -> bool:
    """Runs ``text`` through everything; whether it was accepted."""
    for form in (text, text.encode("utf-8", "surrogatepass")):
        got = outcome(pure, form)
        assert outcome(rust, form) == got, form
        assert isinstance(got, dict) is orjson_accepts(form), (form, got)
        if isinstance(got, str):
            assert re.fullmatch(r"invalid JSON at \d+: .+", got)
            continue
        parsed = orjson.loads(form)
        assert list(got) == list(parsed)  # keys in first-seen order, as dicts keep them
        # Comparing values nested ~1000 deep exceeds Python's recursion limit: those are skipped.
        with contextlib.suppress(RecursionError):
            for key, (start, end) in got.items():
                assert orjson.loads(form[start:end]) == parsed[key]
            # json keeps big integers exact, so it checks the spans once more.
            exact = json.loads(form)
            assert all(json.loads(form[start:end]) == exact[key] for key, (start, end) in got.items())
    return isinstance(got, dict)


# Hand-written cases in the spirit of JSONTestSuite: y_ must be accepted, n_ refused.
CORPUS = {
    "y_empty": "{}",
    "y_whitespace_all_four": " \t\r\n{ \t\r\n}\n\t\r ",
    "y_members": '{"a":1,"b":[true,false,null],"c":{"d":"e"}}',
    "y_duplicate_last_wins": '{"a":1,"b":2,"a":[3]}',
    "y_empty_key": '{"":0}',
    "y_escapes": r'{"\"\\\/\b\f\n\r\t":"\u0000\u001f\u00e9\uFFFF"}',
    "y_escaped_key_equals_plain": '{"\\u0061":1,"a":2}',
    "y_surrogate_pair": r'{"k":"\ud834\udd1e","\uD83D\uDE00":1}',
    "y_max_pair": r'{"k":"\udbff\udfff"}',
    "y_raw_non_ascii": '{"é":"€𝄞","ключ":"\u007f"}',
    "y_del_unescaped": '{"a":"\x7f"}',
    "y_numbers": '{"a":[0,-0,1,-1,0.5,-0.0e0,1E2,1e+2,1e-2,1.5E-300,123456789]}',
    "y_big_int": '{"a":123456789012345678901234567890}',
    "y_308_nines": '{"a":' + "9" * 308 + "}",
    "y_max_double": '{"a":1.7976931348623157e308,"b":1.7976931348623158e308}',
    "y_underflow": '{"a":1e-400,"b":-5e-999999999}',
    "y_value_spacing": '{"a" : [ 1 , { } , [ ] ] , "b":"x" }',
    "y_nested_objects_and_keys": '{"a":{"b":{"c":{"d":{}}}},"e":[{"f":[{"g":1}]}]}',
    "y_depth_1024": '{"a":' + "[" * 1023 + "]" * 1023 + "}",
    "y_brackets_in_strings": '{"a":"}]{[,:\\"","b":"\\\\"}',
    "n_empty": "",
    "n_only_whitespace": " \n",
    "n_array_top": "[1]",
    "n_string_top": '"a"',
    "n_number_top": "1",
    "n_literal_top": "null",
    "n_two_objects": "{}{}",
    "n_trailing_garbage": '{"a":1}x',
    "n_trailing_comma_object": '{"a":1,}',
    "n_trailing_comma_array": '{"a":[1,]}',
    "n_leading_comma": '{,"a":1}',
    "n_double_comma": '{"a":[1,,2]}',
    "n_missing_colon": '{"a" 1}',
    "n_double_colon": '{"a"::1}',
    "n_missing_value": '{"a":}',
    "n_missing_comma": '{"a":1 "b":2}',
    "n_unquoted_key": "{a:1}",
    "n_number_key": "{1:1}",
    "n_single_quotes": "{'a':1}",
    "n_unclosed_object": '{"a":1',
    "n_unclosed_array": '{"a":[1}',
    "n_mismatched_close": '{"a":[1}]',
    "n_extra_close": '{"a":1}}',
    "n_unclosed_string": '{"a":"abc}',
    "n_leading_zero": '{"a":01}',
    "n_neg_leading_zero": '{"a":-01}',
    "n_plus_sign": '{"a":+1}',
    "n_minus_only": '{"a":-}',
    "n_dot_only": '{"a":.5}',
    "n_trailing_dot": '{"a":1.}',
    "n_exponent_no_digits": '{"a":1e}',
    "n_exponent_sign_only": '{"a":1e+}',
    "n_hex": '{"a":0x1}',
    "n_nan": '{"a":NaN}',
    "n_infinity": '{"a":Infinity}',
    "n_minus_infinity": '{"a":-Infinity}',
    "n_overflow": '{"a":1e309}',
    "n_overflow_negative": '{"a":-1.8e308}',
    "n_309_nines": '{"a":' + "9" * 309 + "}",
    "n_capital_true": '{"a":True}',
    "n_truncated_literal": '{"a":nul}',
    "n_literal_suffix": '{"a":truex}',
    "n_comment_block": '{"a":1/* c */}',
    "n_comment_line": '{"a":1}// c',
    "n_control_in_string": '{"a":"\x01"}',
    "n_tab_in_string": '{"a":"\t"}',
    "n_newline_in_key": '{"a\n":1}',
    "n_bad_escape": r'{"a":"\x41"}',
    "n_escaped_apostrophe": r'{"a":"\'"}',
    "n_short_unicode_escape": r'{"a":"\u12"}',
    "n_bad_hex_escape": r'{"a":"\u12G4"}',
    "n_backslash_at_end": '{"a":"\\',
    "n_lone_high_surrogate": r'{"a":"\ud800"}',
    "n_lone_low_surrogate": r'{"a":"\udc00"}',
    "n_high_then_letter": r'{"a":"\ud800x"}',
    "n_high_then_non_low": r'{"a":"\ud800\u0041"}',
    "n_high_high_low": r'{"a":"\ud800\ud800\udc00"}',
    "n_reversed_pair": r'{"a":"\udc00\ud800"}',
    "n_lone_surrogate_key": r'{"\udfff":1}',
    "n_lone_surrogate_nested": r'{"a":[{"b":"\udbff"}]}',
    "n_raw_surrogate": '{"a":"\ud800"}',
    "n_bom": "\ufeff{}",
    "n_nbsp_whitespace": "\u00a0{}",
    "n_form_feed_whitespace": '{"a":\x0c1}',
    "n_vertical_tab_whitespace": "{\x0b}",
    "n_nul_after": "{}\x00",
    "n_depth_1025": '{"a":' + "[" * 1024 + "]" * 1024 + "}",
}


@pytest.mark.parametrize("name", CORPUS)
def test_corpus(pure: ModuleType, rust: ModuleType, name: str) -> None:
    assert check(pure, rust, CORPUS[name]) is name.startswith("y_")


@pytest.mark.parametrize(
    ("data", "offset"),
    [(b'{"a":"\xff"}', 6), (b'{"a":"\xc0\xaf"}', 6), (b'{"a":"\xed\xa0\x80"}', 6), (b'{"a":"\xe2\x82"}', 6),
     (b"{\x80}", 1), (b'{"\xf4\x90\x80\x80":1}', 2), (b'{"\xc3\xa9":1}\xe2', 8)],
)
def test_invalid_utf8_bytes(pure: ModuleType, rust: ModuleType, data: bytes, offset: int) -> None:
    message = f"invalid JSON at {offset}: invalid UTF-8"
    assert outcome(pure, data) == outcome(rust, data) == message
    assert not orjson_accepts(data)


def test_spans_are_in_the_input_units(impl: ModuleType) -> None:
    text = '{"é":"€𝄞", "b" : [1,{}] ,"a":{"é":1}, "b":0}'
    spans = impl.json_object_spans(text, 4)
    assert spans == {"é": (5, 9), "b": (42, 43), "a": (29, 36)}
    data = text.encode()
    byte_spans = impl.json_object_spans(data, 4)
    assert {key: data[s:e].decode() for key, (s, e) in byte_spans.items()} == {
        key: text[s:e] for key, (s, e) in spans.items()
    }
    for buffer in (bytearray(data), memoryview(data)):
        assert impl.json_object_spans(buffer, 4) == byte_spans


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"é":1,}', "invalid JSON at 7: expected a key"),
        (b'{"\xc3\xa9":1,}', "invalid JSON at 8: expected a key"),
        ('  [1]', "invalid JSON at 2: the top level is not an object"),
        ('{"a":"\ud800"}', "invalid JSON at 6: str contains a surrogate"),
        ('{"a":"x\\q"}', "invalid JSON at 5: invalid string"),
        ('{"a":1e999}', "invalid JSON at 5: number out of range"),
        ('{"a":-x}', "invalid JSON at 5: invalid number"),
        ('{"a":[1 }', "invalid JSON at 8: expected ',' or ']'"),
        ('{"a":1 ]', "invalid JSON at 7: expected ',' or '}'"),
        ('{"a" ,', "invalid JSON at 5: expected ':'"),
        ('{"a":[', "invalid JSON at 6: unexpected end of input"),
        ("{} {", "invalid JSON at 3: unexpected content after the object"),
    ],
)
def test_error_messages_give_the_position(impl: ModuleType, text: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        impl.json_object_spans(text, 8)


def test_depth_counts_the_top_level_object_as_one(impl: ModuleType) -> None:
    assert impl.json_object_spans("{}", 1) == {}
    assert impl.json_object_spans('{"a":1,"b":"[{"}', 1) == {"a": (5, 6), "b": (11, 15)}
    for max_depth in (0, -1):
        with pytest.raises(ValueError, match="at 1: nesting deeper than max_depth"):
            impl.json_object_spans(" {}", max_depth)
    nested = '{"a":[{"b":[]}], "c":{}}'
    assert impl.json_object_spans(nested, 4)["a"] == (5, 15)
    with pytest.raises(ValueError, match="at 11: nesting deeper than max_depth"):
        impl.json_object_spans(nested, 3)
    with pytest.raises(ValueError, match="at 5: nesting deeper than max_depth"):
        impl.json_object_spans('{"a":[]}', 1)
    deep = '{"a":' + "[" * 5000 + "]" * 5000 + "}"  # far past any recursion limit
    assert impl.json_object_spans(deep, 5001) == {"a": (5, 10005)}
    with pytest.raises(ValueError, match="at 5004: nesting"):
        impl.json_object_spans(deep, 5000)


def test_long_bad_strings_fail_in_linear_time(impl: ModuleType) -> None:
    # An unterminated string must not make a backtracking scanner explode.
    with pytest.raises(ValueError, match="at 5: invalid string"):
        impl.json_object_spans('{"a":"' + "ab\\n" * 100_000, 2)


@given(text=json_objects())
def test_generated_objects(pure: ModuleType, rust: ModuleType, text: str) -> None:
    assert check(pure, rust, text)


@given(data=st.data(), text=json_objects())
def test_mutated_objects(pure: ModuleType, rust: ModuleType, data: st.DataObject, text: str) -> None:
    check(pure, rust, data.draw(mutated_json(text)))
