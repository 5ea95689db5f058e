"""PHP serialize() subset: parsing, byte lengths, rejections and writing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.phpserial import PHPSerialError, dumps, loads


def test_loads_single_role():
    assert loads('a:1:{s:13:"administrator";b:1;}') == {"administrator": True}


def test_loads_several_roles_in_order():
    value = loads('a:3:{s:6:"editor";b:1;s:10:"subscriber";b:0;s:6:"author";b:1;}')

    assert value == {"editor": True, "subscriber": False, "author": True}
    assert list(value) == ["editor", "subscriber", "author"]


def test_loads_counts_string_length_in_bytes():
    # "éditeur" is 7 characters but 8 bytes in UTF-8.
    assert loads('a:1:{s:8:"éditeur";b:1;}') == {"éditeur": True}


def test_loads_four_byte_characters():
    assert loads('s:10:"coach 🏋";') == "coach 🏋"


def test_loads_rejects_length_in_characters():
    with pytest.raises(PHPSerialError):
        loads('a:1:{s:7:"éditeur";b:1;}')


def test_loads_accepts_bytes():
    assert loads('s:2:"é";'.encode()) == "é"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("N;", None),
        ("b:0;", False),
        ("b:1;", True),
        ("i:0;", 0),
        ("i:-42;", -42),
        ("i:+7;", 7),
        ("i:9223372036854775807;", 9223372036854775807),
        ("d:1.5;", 1.5),
        ("d:-0.25;", -0.25),
        ("d:1.0E+25;", 1.0e25),
        ("d:2;", 2.0),
        ("d:INF;", math.inf),
        ("d:-INF;", -math.inf),
        ('s:0:"";', ""),
        ('s:5:"a;b"c";', 'a;b"c'),
        ("a:0:{}", {}),
        ('a:2:{i:0;s:1:"x";i:5;N;}', {0: "x", 5: None}),
        ('a:1:{s:1:"k";a:1:{i:0;d:0.5;}}', {"k": {0: 0.5}}),
    ],
    ids=[
        "null",
        "false",
        "true",
        "zero",
        "negative-int",
        "plus-sign-int",
        "max-bigint",
        "float",
        "negative-float",
        "float-exponent",
        "float-without-dot",
        "infinity",
        "negative-infinity",
        "empty-string",
        "string-with-quotes-and-semicolon",
        "empty-array",
        "int-keys",
        "nested-array",
    ],
)
def test_loads_scalar_and_array_values(text, expected):
    assert loads(text) == expected


def test_loads_nan():
    assert math.isnan(loads("d:NAN;"))


@pytest.mark.parametrize(
    "text",
    [
        'O:8:"stdClass":0:{}',
        'a:1:{s:1:"x";O:8:"stdClass":1:{s:1:"a";b:1;}}',
        'C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}',
        'E:7:"Foo:Bar";',
        'a:2:{i:0;s:1:"x";i:1;r:2;}',
        'a:2:{i:0;s:1:"x";i:1;R:2;}',
    ],
    ids=[
        "object",
        "object-inside-array",
        "custom-object",
        "enum",
        "reference",
        "reference-by-value",
    ],
)
def test_loads_rejects_objects_and_references(text):
    with pytest.raises(PHPSerialError, match="not supported"):
        loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a:1:{",
        'a:1:{s:13:"administrator";b:1;',
        'a:2:{s:13:"administrator";b:1;}',
        'a:1:{s:13:"administrator";b:1;}trailing',
        's:50:"short";',
        's:-1:"";',
        's:3:"abc"',
        "b:2;",
        "b:true;",
        "i:12x;",
        "i:;",
        "d:one;",
        "N",
        "x:1;",
        "a:1:{b:1;b:1;}",
        "a:1:{N;b:1;}",
        "a:1:{d:1.5;b:1;}",
        "a:1:{a:0:{}b:1;}",
        "administrator",
    ],
    ids=[
        "empty",
        "unterminated-array",
        "missing-closing-brace",
        "count-too-high",
        "trailing-data",
        "string-longer-than-data",
        "negative-length",
        "string-missing-semicolon",
        "bool-out-of-range",
        "bool-as-word",
        "int-with-letters",
        "int-empty",
        "float-as-word",
        "null-missing-semicolon",
        "unknown-type",
        "bool-key",
        "null-key",
        "float-key",
        "array-key",
        "plain-text",
    ],
)
def test_loads_rejects_malformed_data(text):
    with pytest.raises(PHPSerialError):
        loads(text)


def test_loads_rejects_invalid_utf8_bytes():
    with pytest.raises(PHPSerialError, match="UTF-8"):
        loads(b's:2:"\xff\xfe";')


def test_loads_rejects_arrays_nested_past_limit():
    nested = "a:1:{i:0;" * 4 + "N;" + "}" * 4

    assert loads(nested, max_depth=4) == {0: {0: {0: {0: None}}}}
    with pytest.raises(PHPSerialError, match="deeper than 3"):
        loads(nested, max_depth=3)


def test_loads_rejects_deep_nesting_by_default():
    nested = "a:1:{i:0;" * 1000 + "N;" + "}" * 1000

    with pytest.raises(PHPSerialError, match="nested deeper"):
        loads(nested)


def test_dumps_writes_byte_lengths():
    assert dumps({"éditeur": True}) == 'a:1:{s:8:"éditeur";b:1;}'


def test_dumps_writes_each_type():
    value = {"n": None, "f": False, "i": -3, "d": 0.5, "l": ["x"]}

    assert dumps(value) == (
        'a:5:{s:1:"n";N;s:1:"f";b:0;s:1:"i";i:-3;s:1:"d";d:0.5;'
        's:1:"l";a:1:{i:0;s:1:"x";}}'
    )


def test_dumps_rejects_unsupported_values():
    with pytest.raises(TypeError):
        dumps(object())
    with pytest.raises(TypeError):
        dumps({None: 1})


php_keys = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=12))
php_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
php_values = st.recursive(
    php_scalars,
    lambda children: st.dictionaries(php_keys, children, max_size=5),
    max_leaves=20,
)


@given(php_values)
def test_dumps_then_loads_round_trips(value):
    assert loads(dumps(value)) == value


@given(st.binary(max_size=64))
def test_loads_raises_only_phpserialerror_on_random_bytes(data):
    try:
        loads(data)
    except PHPSerialError:
        pass
