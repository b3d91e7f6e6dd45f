"""TURN REST credentials and the iceServers list (pure; coturn itself: test_signaling_coturn)."""

from __future__ import annotations

import pytest

from signaling.turn import (
    TurnConfig,
    credentials_valid,
    ice_servers,
    turn_credentials,
    turn_password,
)

SECRET = "north-secret-0123456789"


def test_password_matches_an_independent_hmac_sha1() -> None:
    # printf '%s' '1700000000:u-17' | openssl dgst -sha1 -hmac "$SECRET" -binary | base64
    assert turn_password(SECRET, "1700000000:u-17") == "/n8G4461qK/WnlPA/jMQXkzsR4Y="
    assert turn_password(SECRET.encode(), "1700000000:u-17") == "/n8G4461qK/WnlPA/jMQXkzsR4Y="


def test_credentials_carry_their_expiry_first() -> None:
    creds = turn_credentials(SECRET, "u-17", ttl_s=3600, now=1_699_996_400.2)
    assert creds.expires_at == 1_700_000_001  # rounded up: never shorter than asked
    assert creds.username == "1700000001:u-17"
    assert creds.password == turn_password(SECRET, creds.username)
    assert SECRET not in repr(creds)
    assert creds.password not in repr(creds)


def test_credentials_are_valid_until_expiry_only() -> None:
    creds = turn_credentials(SECRET, "u-17", ttl_s=600, now=1000.0)
    assert credentials_valid(SECRET, creds.username, creds.password, now=1599.0)
    assert not credentials_valid(SECRET, creds.username, creds.password, now=1600.0)
    assert not credentials_valid("another-secret-0123456789", creds.username, creds.password)
    forged = creds.username.replace("1600", "9999")
    assert not credentials_valid(SECRET, forged, creds.password, now=1000.0)
    assert not credentials_valid(SECRET, "u-17", creds.password, now=1000.0)


def test_a_user_with_a_colon_keeps_the_expiry_first() -> None:
    creds = turn_credentials(SECRET, "room:u-17", ttl_s=600, now=1000.0)
    assert creds.username == "1600:room:u-17"
    assert credentials_valid(SECRET, creds.username, creds.password, now=1000.0)


@pytest.mark.parametrize(
    ("user", "ttl_s", "secret"),
    [
        ("", 600, SECRET),
        ("x" * 257, 600, SECRET),
        ("line\nbreak", 600, SECRET),
        ("u-17", 10, SECRET),
        ("u-17", 600, "short"),
    ],
)
def test_bad_credential_requests_are_refused(user: str, ttl_s: int, secret: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by cause
        turn_credentials(secret, user, ttl_s=ttl_s, now=1000.0)


def test_ice_servers_offer_stun_then_turn_udp_tcp_and_turns_on_443() -> None:
    config = TurnConfig(secret=SECRET, host="turn.telemed.example", ttl_s=7200)
    servers = ice_servers(config, "u-17", now=1000.0)
    assert servers[0] == {"urls": ["stun:turn.telemed.example:3478"]}
    turn = servers[1]
    assert turn["urls"] == [
        "turn:turn.telemed.example:3478?transport=udp",
        "turn:turn.telemed.example:3478?transport=tcp",
        "turns:turn.telemed.example:443?transport=tcp",
    ]
    assert turn["username"] == "8200:u-17"
    assert credentials_valid(SECRET, turn["username"], turn["credential"], now=8199.0)
    assert len(servers) == 2


def test_ice_servers_follow_the_config() -> None:
    config = TurnConfig(
        secret=SECRET,
        host="2001:db8::1",
        port=3479,
        tls_host="turn.telemed.example",
        tls_port=5349,
        tcp=False,
        stun_urls=("stun:stun.example.org:19302",),
    )
    servers = ice_servers(config, "u-3")
    assert servers[0] == {"urls": ["stun:stun.example.org:19302"]}
    assert servers[1]["urls"] == [
        "turn:[2001:db8::1]:3479?transport=udp",
        "turns:turn.telemed.example:5349?transport=tcp",
    ]


def test_development_config_without_stun_or_tls() -> None:
    config = TurnConfig(secret=SECRET, host="127.0.0.1", tls_port=None, stun_urls=())
    servers = ice_servers(config, "u-3")
    assert [s["urls"] for s in servers] == [
        ["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"]
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": ""},
        {"host": "turn.example/x"},
        {"host": "[::1]"},
        {"host": "turn.example", "port": 0},
        {"host": "turn.example", "tls_port": 70000},
        {"host": "turn.example", "ttl_s": 5},
        {"host": "turn.example", "udp": False, "tcp": False, "tls_port": None},
        {"host": "turn.example", "secret": "short"},
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by cause
        TurnConfig(**{"secret": SECRET, **kwargs})  # type: ignore[arg-type]
