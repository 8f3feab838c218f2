"""The codec, as plain synchronous functions: text in, messages out."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aleph.protocol import jsonrpc
from aleph.protocol.errors import InternalError, InvalidRequest, ParseError, RpcError
from aleph.protocol.jsonrpc import Invalid, Notification, Request, Response, parse


def one(text: str | bytes) -> jsonrpc.Message:
    frame = parse(text)
    assert not isinstance(frame, list)
    return frame


def items(frame: jsonrpc.Frame) -> list[jsonrpc.Message]:
    """The messages of a frame, a batch or not (a batch is never empty)."""
    return frame if isinstance(frame, list) else [frame]


def test_request_with_named_and_positional_params() -> None:
    assert one('{"jsonrpc":"2.0","method":"sum","params":{"a":1},"id":7}') == Request(
        7, "sum", {"a": 1}
    )
    assert one('{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":"x"}') == Request(
        "x", "sum", [1, 2]
    )


def test_null_id_is_still_a_request_and_missing_id_is_a_notification() -> None:
    assert one('{"jsonrpc":"2.0","method":"m","id":null}') == Request(None, "m")
    assert one('{"jsonrpc":"2.0","method":"m"}') == Notification("m")


def test_parse_error_has_null_id() -> None:
    item = one('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    assert isinstance(item, Invalid)
    assert item.id is None
    assert isinstance(item.error, ParseError)
    assert item.error.code == -32700


@pytest.mark.parametrize(
    ("text", "expected_id"),
    [
        ('{"jsonrpc":"2.0","method":1,"params":"bar"}', None),
        ('{"jsonrpc":"2.0","method":1,"id":4}', 4),
        ('{"jsonrpc":"1.0","method":"m","id":5}', 5),
        ('{"method":"m","id":6}', 6),
        ('{"jsonrpc":"2.0","method":"m","params":3,"id":8}', 8),
        ('{"jsonrpc":"2.0","method":"m","id":true}', None),
        ('{"jsonrpc":"2.0","method":"m","id":{"a":1}}', None),
        ('{"jsonrpc":"2.0","id":9}', 9),
        ("42", None),
        ('"text"', None),
    ],
)
def test_invalid_requests_carry_the_id_when_readable(text: str, expected_id: object) -> None:
    item = one(text)
    assert isinstance(item, Invalid)
    assert isinstance(item.error, InvalidRequest)
    assert item.id == expected_id


def test_empty_batch_is_one_invalid_request_not_a_batch() -> None:
    frame = parse("[]")
    assert isinstance(frame, Invalid)
    assert frame.error.code == -32600


def test_batch_of_invalid_items_gives_one_error_each() -> None:
    frame = parse("[1,2,3]")
    assert isinstance(frame, list)
    assert [type(item) for item in frame] == [Invalid, Invalid, Invalid]


def test_batch_keeps_order_and_kinds() -> None:
    frame = parse(
        '[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b"},'
        '{"foo":"boo"},{"jsonrpc":"2.0","id":"s1","result":{"ok":true}}]'
    )
    assert isinstance(frame, list)
    kinds = [type(item) for item in frame]
    assert kinds == [Request, Notification, Invalid, Response]


def test_responses_from_the_peer() -> None:
    assert one('{"jsonrpc":"2.0","id":"s1","result":5}') == Response("s1", result=5)
    error = {"code": -1, "message": "no"}
    assert one('{"jsonrpc":"2.0","id":"s1","error":{"code":-1,"message":"no"}}') == Response(
        "s1", error=error
    )
    both = one('{"jsonrpc":"2.0","id":"s1","result":5,"error":{"code":1}}')
    assert isinstance(both, Invalid)


def test_ids_beyond_64_bits_are_refused_rather_than_echoed_wrong() -> None:
    item = one('{"jsonrpc":"2.0","method":"m","id":123456789012345678901234567890}')
    assert isinstance(item, Invalid)
    assert item.id is None
    assert item.error.code == -32600


def test_encode_round_trips_and_refuses_what_json_cannot_hold() -> None:
    message = jsonrpc.result_response(1, {"text": "héllo ✓"})
    assert orjson.loads(jsonrpc.encode(message)) == message
    with pytest.raises(InternalError):
        jsonrpc.encode(jsonrpc.result_response(1, {"x": object()}))


def test_error_objects_include_data_only_when_present() -> None:
    assert jsonrpc.error_response(None, ParseError()) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "parse error"},
    }
    error = RpcError("boom", {"why": 1}).to_json()
    assert error == {"code": -32603, "message": "boom", "data": {"why": 1}}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["jsonrpc", "method", "params", "id", "result", "error", "x"])
            | st.text(),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@given(st.binary(max_size=300))
def test_parse_never_raises_on_bytes(data: bytes) -> None:
    assert items(parse(data))


@given(st.text(max_size=300))
def test_parse_never_raises_on_text(text: str) -> None:
    assert items(parse(text))


@given(json_values)
def test_parse_never_raises_on_any_json_value_and_every_error_is_ours(value: object) -> None:
    for item in items(parse(orjson.dumps(value))):
        assert isinstance(item, Request | Notification | Response | Invalid)
        if isinstance(item, Invalid):
            assert isinstance(item.error, RpcError)
            # every error is answerable: its reply encodes
            jsonrpc.encode(jsonrpc.error_response(item.id, item.error))


@given(
    st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "method": st.text(max_size=20)},
        optional={
            "id": st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10) | st.none(),
            "params": json_values,
        },
    )
)
def test_well_formed_calls_parse_to_calls(message: dict[str, object]) -> None:
    item = one(orjson.dumps(message))
    if "params" in message and not isinstance(message["params"], dict | list):
        assert isinstance(item, Invalid)
    elif "id" in message:
        assert isinstance(item, Request)
        assert item.id == message["id"]
    else:
        assert isinstance(item, Notification)
