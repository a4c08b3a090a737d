"""Operation calls sent together on a real Redis: each caller gets its own reply or error."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from taskiq_fleet.redis_server import free_port
from taskiq_fleet_worker.batching import Operation, ScriptBatcher

pytestmark = pytest.mark.integration

COUNT = Operation("count", "redis.call('INCR', KEYS[1]) return ARGV[1]")
FAIL_ON_NO = Operation(
    "fail_on_no", "if ARGV[1] == 'no' then return redis.error_reply('refused') end return 1"
)
NOTHING = Operation("nothing", "return nil")
OPERATIONS = (COUNT, FAIL_ON_NO, NOTHING)


@pytest.fixture
def batcher(redis_client: redis.asyncio.Redis) -> ScriptBatcher:
    return ScriptBatcher(redis_client, OPERATIONS)


async def test_calls_made_together_each_get_their_own_reply(
    batcher: ScriptBatcher, redis_client: redis.asyncio.Redis
) -> None:
    replies = await asyncio.gather(*(batcher.call(COUNT, ["n"], [i]) for i in range(50)))

    assert replies == [str(i).encode() for i in range(50)]
    assert int(await redis_client.get("n")) == 50


async def test_a_failing_script_fails_its_own_caller_only(batcher: ScriptBatcher) -> None:
    replies = await asyncio.gather(
        batcher.call(FAIL_ON_NO, [], ["yes"]),
        batcher.call(FAIL_ON_NO, [], ["no"]),
        batcher.call(FAIL_ON_NO, [], ["yes"]),
        return_exceptions=True,
    )

    assert replies[0] == replies[2] == 1
    assert isinstance(replies[1], redis.exceptions.ResponseError)
    assert "refused" in str(replies[1])


async def test_a_lua_error_fails_its_own_caller_and_names_the_operation(
    batcher: ScriptBatcher, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.rpush("a-list", "x")

    replies = await asyncio.gather(
        batcher.call(COUNT, ["n"], ["before"]),
        batcher.call(COUNT, ["a-list"], ["wrong type"]),
        batcher.call(NOTHING, [], []),
        batcher.call(COUNT, ["n"], ["after"]),
        return_exceptions=True,
    )

    assert replies[0] == b"before"
    assert isinstance(replies[1], redis.exceptions.ResponseError)
    assert "count" in str(replies[1])
    assert "WRONGTYPE" in str(replies[1])
    assert replies[2] is None
    assert replies[3] == b"after"
    assert int(await redis_client.get("n")) == 2


async def test_an_operation_the_batcher_was_not_built_with_is_refused(
    batcher: ScriptBatcher,
) -> None:
    stranger = Operation("count", "return 0")

    with pytest.raises(ValueError, match="'count' is not one of this batcher's"):
        await batcher.call(stranger, [], [])


@pytest.mark.parametrize("together", [1, 5])
async def test_scripts_redis_forgot_are_loaded_again(
    batcher: ScriptBatcher, redis_client: redis.asyncio.Redis, together: int
) -> None:
    await batcher.call(COUNT, ["n"], ["warm"])
    await redis_client.script_flush()

    replies = await asyncio.gather(*(batcher.call(COUNT, ["n"], ["x"]) for _ in range(together)))

    assert replies == [b"x"] * together
    assert int(await redis_client.get("n")) == 1 + together


async def test_a_call_cancelled_before_it_left_is_not_sent(
    batcher: ScriptBatcher, redis_client: redis.asyncio.Redis
) -> None:
    cancelled = asyncio.ensure_future(batcher.call(COUNT, ["n"], ["dropped"]))
    kept = asyncio.ensure_future(batcher.call(COUNT, ["n"], ["kept"]))
    await asyncio.sleep(0)
    cancelled.cancel()

    assert await kept == b"kept"
    assert cancelled.cancelled()
    assert int(await redis_client.get("n")) == 1


async def test_a_lost_connection_fails_every_call_sent_with_it() -> None:
    client = redis.asyncio.Redis(port=free_port(), retry=Retry(NoBackoff(), retries=0))
    batcher = ScriptBatcher(client, OPERATIONS)
    try:
        replies = await asyncio.gather(
            *(batcher.call(COUNT, ["n"], [i]) for i in range(3)), return_exceptions=True
        )
        again = await asyncio.gather(batcher.call(COUNT, ["n"], [0]), return_exceptions=True)
    finally:
        await client.aclose()

    assert all(isinstance(r, redis.exceptions.ConnectionError) for r in [*replies, *again])
