from __future__ import annotations

import pytest

from aleph.security.origin import OriginPolicy, check_patterns

POLICY = OriginPolicy.from_config(
    ["https://app.example.com", "https://*.corp.example", "http://localhost:*"]
)


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com",
        "https://app.example.com:443",
        "HTTPS://APP.EXAMPLE.COM",
        "https://a.corp.example",
        "https://deep.a.corp.example",
        "http://localhost:5173",
        "http://localhost",
    ],
)
def test_allowed(origin: str) -> None:
    assert POLICY.allows(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com.evil.net",  # suffix attack
        "https://evilapp.example.com",
        "https://app.example.com:8443",  # other port
        "http://app.example.com",  # other scheme
        "app.example.com",  # no scheme
        "//app.example.com",
        "https://corp.example",  # the wildcard never matches the bare domain
        "https://a.corp.example.evil.net",
        "https://acorp.example",
        "https://user@app.example.com",
        "https://app.example.com/path",
        "null",
        "",
        "https://localhost:5173",
    ],
)
def test_refused(origin: str) -> None:
    assert not POLICY.allows(origin)


def test_no_origin_header_is_a_non_browser_client_and_allowed() -> None:
    assert POLICY.allows(None)
    assert OriginPolicy.from_config([]).allows(None)


def test_empty_list_refuses_every_browser_and_star_allows_all() -> None:
    assert not OriginPolicy.from_config([]).allows("https://app.example.com")
    assert OriginPolicy.from_config(["*"]).allows("https://anything.example")
    assert OriginPolicy.from_config(["*"]).allows("null")


def test_bad_patterns_are_reported() -> None:
    problems = check_patterns(
        ["app.example.com", "https://*.com", "https://a.*.b.com", "*", "https://ok.io"]
    )
    assert len(problems) == 3
    assert problems[0].startswith("gateway.allowed_origins[0]")
