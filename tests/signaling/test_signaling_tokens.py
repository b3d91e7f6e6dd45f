"""Join tokens: signing, expiry with an injected clock, single use in memory and in Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from redis.asyncio import Redis

from signaling.protocol import ErrorCode
from signaling.tokens import (
    MemoryJtiStore,
    RedisJtiStore,
    TokenError,
    TokenVerifier,
    capacity_for,
    mint_token,
    verify_and_consume,
)

SECRET = b"s" * 32
NOW = 1_767_261_600.0


class Clock:
    """A hand-moved clock: tests say what time it is instead of sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def mint(**over: object) -> str:
    args: dict[str, object] = {
        "room": "consult-42",
        "participant": "u-17",
        "name": "Dr M. Mokoena",
        "role": "specialist",
        "ttl_s": 60,
        "now": NOW,
    }
    args.update(over)
    return mint_token(SECRET, **args)  # type: ignore[arg-type]


def test_a_minted_token_verifies_to_its_claims() -> None:
    token = mint(capacity=3, jti="j1", name="Ntate Mosèli")
    claims = TokenVerifier(SECRET, clock=Clock(NOW + 59)).verify(token)
    assert (claims.room, claims.participant, claims.role) == ("consult-42", "u-17", "specialist")
    assert claims.name == "Ntate Mosèli"
    assert claims.capacity == 3
    assert claims.jti == "j1"
    assert claims.expires_at == NOW + 60


def test_payload_is_compact_json_in_base64url() -> None:
    body = mint(jti="j1").split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert payload == {
        "v": 1,
        "room": "consult-42",
        "sub": "u-17",
        "name": "Dr M. Mokoena",
        "role": "specialist",
        "cap": 2,
        "exp": int(NOW) + 60,
        "jti": "j1",
    }


def test_expiry_follows_the_injected_clock() -> None:
    token = mint()
    clock = Clock(NOW + 59.9)
    verifier = TokenVerifier(SECRET, clock=clock)
    verifier.verify(token)
    clock.now = NOW + 60
    with pytest.raises(TokenError) as caught:
        verifier.verify(token)
    assert caught.value.code is ErrorCode.TOKEN_EXPIRED
    assert TokenVerifier(SECRET, clock=clock, leeway_s=5).verify(token).participant == "u-17"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "x" + t,
        lambda t: t.replace(".", ""),
        lambda t: t + ".extra",
        lambda t: "",
        lambda t: "é." + t.split(".")[1],
        lambda t: t.split(".")[0] + "." + "A" * 5000,
    ],
)
def test_tampered_or_malformed_tokens_are_bad_tokens(tamper: object) -> None:
    token = tamper(mint())  # type: ignore[operator]
    with pytest.raises(TokenError) as caught:
        TokenVerifier(SECRET, clock=Clock(NOW)).verify(token)
    assert caught.value.code is ErrorCode.BAD_TOKEN


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = mint_token(b"o" * 32, room="r", participant="p", name="n", role="observer", now=NOW)
    with pytest.raises(TokenError) as caught:
        TokenVerifier(SECRET, clock=Clock(NOW)).verify(token)
    assert caught.value.code is ErrorCode.BAD_TOKEN


def test_claims_validated_even_when_the_signature_is_good() -> None:
    body = base64.urlsafe_b64encode(json.dumps({"v": 1, "room": "r"}).encode()).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).rstrip(b"=")
    with pytest.raises(TokenError) as caught:
        TokenVerifier(SECRET, clock=Clock(NOW)).verify(f"{body.decode()}.{sig.decode()}")
    assert caught.value.code is ErrorCode.BAD_TOKEN


@pytest.mark.parametrize(
    "bad",
    [
        {"role": "visitor"},
        {"capacity": 4},
        {"capacity": 1},
        {"room": ""},
        {"participant": "x" * 129},
    ],
)
def test_minting_refuses_invalid_claims(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        mint(**bad)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        TokenVerifier(b"short")


def test_capacity_is_three_only_with_an_interpreter_or_observer() -> None:
    assert capacity_for(["clinician", "specialist"]) == 2
    assert capacity_for(["clinician", "specialist", "interpreter"]) == 3
    assert capacity_for(["clinician", "observer"]) == 3


async def test_memory_store_allows_each_jti_once_and_forgets_expired_ones() -> None:
    clock = Clock(NOW)
    store = MemoryJtiStore(clock=clock)
    assert await store.consume("a", NOW + 60)
    assert not await store.consume("a", NOW + 60)
    assert await store.consume("b", NOW + 30)
    clock.now = NOW + 3600
    assert await store.consume("c", NOW + 3700)
    assert len(store) == 1


async def test_verify_and_consume_checks_room_before_using_the_token() -> None:
    verifier = TokenVerifier(SECRET, clock=Clock(NOW))
    store = MemoryJtiStore(clock=Clock(NOW))
    token = mint()
    with pytest.raises(TokenError) as caught:
        await verify_and_consume(verifier, store, token, room="consult-43")
    assert caught.value.code is ErrorCode.WRONG_ROOM
    assert (await verify_and_consume(verifier, store, token, room="consult-42")).jti
    with pytest.raises(TokenError) as caught:
        await verify_and_consume(verifier, store, token, room="consult-42")
    assert caught.value.code is ErrorCode.TOKEN_REUSED


async def test_redis_store_is_single_use_across_store_instances(
    redis_client: Redis, key_prefix: str
) -> None:
    clock = Clock(NOW)
    one = RedisJtiStore(redis_client, prefix=key_prefix, clock=clock)
    two = RedisJtiStore(redis_client, prefix=key_prefix, clock=clock)
    assert await one.consume("jti-1", NOW + 60)
    assert not await two.consume("jti-1", NOW + 60)
    ttl = await redis_client.ttl(key_prefix + "jti-1")
    assert 0 < ttl <= 60
    # A token already past its expiry still gets a short-lived key, never a permanent one.
    assert await one.consume("jti-2", NOW - 10)
    assert 0 < await redis_client.ttl(key_prefix + "jti-2") <= 1
    await redis_client.delete(key_prefix + "jti-1", key_prefix + "jti-2")
