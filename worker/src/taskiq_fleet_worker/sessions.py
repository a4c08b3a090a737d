"""A session's state in Redis: the dedup claim of a run and the session's event stream.

A run is claimed before it starts: ``keys.dedup_key(key)`` holds ``run:<owner>``
with a short lease that the running worker renews. When the run ends, the same
server-side step turns the claim into ``done:<outcome>:<task_id>`` (kept for a day)
and appends the terminal event, so a run is either finished with its event, or not
at all. A worker that dies mid-run stops renewing; its lease runs out and the
redelivered message (stream broker) claims the run afresh and finishes it. A failed
run releases its claim, so a retry can run it again.

Every operation here is safe to repeat after a lost reply: a claim or finish that
already took effect is recognised by its owner, so the retry loop around each call
can reconnect through a Redis restart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import redis.asyncio

from taskiq_fleet.contract import keys
from taskiq_fleet_worker.batching import Operation, ScriptBatcher
from taskiq_fleet_worker.connection import RETRY_WINDOW_S, retrying

Fields = Mapping[str, str]
ClaimStatus = Literal["claimed", "done", "held", "redelivered"]
Outcome = Literal["completed", "failed", "cancelled"]

# Events travel as JSON lists of alternating field names and values: one argument
# encoded in C on each side, where one argument per field cost the worker a pass of
# redis-py's encoder for every name and value.

# KEYS: dedup, events, cancel. ARGV: owner, task id, lease ms, events maxlen, events
# ttl s, [run.started fields, run.deduplicated fields] (JSON; "holder" is added here).
_CLAIM_LUA: Final = """
local function append(fields)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', unpack(fields))
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
local mine = 'run:' .. ARGV[1]
local current = redis.call('GET', KEYS[1])
if current == false or current == mine then
  redis.call('SET', KEYS[1], mine, 'PX', ARGV[3])
  if current == false then append(cjson.decode(ARGV[6])[1]) end
  return {'claimed', redis.call('EXISTS', KEYS[3])}
end
local holder = string.match(current, '^done:[^:]*:(.*)$') or string.match(current, '^run:([^:]*)')
if string.sub(current, 1, 5) ~= 'done:' and holder == ARGV[2] then
  return {'redelivered', 0, holder}
end
local fields = cjson.decode(ARGV[6])[2]
table.insert(fields, 'holder')
table.insert(fields, holder or '')
append(fields)
if string.sub(current, 1, 5) == 'done:' then return {'done', 0, holder or ''} end
return {'held', 0, holder or ''}
"""

# KEYS: dedup, events, cancel, and the task's result key when the result is stored
# here too. ARGV: owner, task id, outcome, done ttl s, events maxlen, events ttl s,
# events (JSON list of field lists), '1' to consume the cancel request, then the
# result and its ttl s when there is a fourth key.
_FINISH_LUA: Final = """
local mine = 'run:' .. ARGV[1]
local done = 'done:' .. ARGV[3] .. ':' .. ARGV[2]
local current = redis.call('GET', KEYS[1])
if current == done then return 1 end
if current ~= false and current ~= mine then return 0 end
if ARGV[3] == 'failed' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], done, 'EX', ARGV[4])
end
for _, fields in ipairs(cjson.decode(ARGV[7])) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
end
redis.call('EXPIRE', KEYS[2], ARGV[6])
if ARGV[8] == '1' then redis.call('DEL', KEYS[3]) end
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[9], 'EX', ARGV[10]) end
return 1
"""

_CLAIM: Final = Operation("claim", _CLAIM_LUA)
_FINISH: Final = Operation("finish", _FINISH_LUA)

# KEYS: dedup. ARGV: owner, lease ms. A claim lost to a restart of Redis is taken again.
_RENEW_LUA: Final = """
local mine = 'run:' .. ARGV[1]
local current = redis.call('GET', KEYS[1])
if current == false or current == mine then
  redis.call('SET', KEYS[1], mine, 'PX', ARGV[2])
  return 1
end
return 0
"""
_RENEW: Final = Operation("renew", _RENEW_LUA)


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a claim: ours now, finished before, or held by another task."""

    status: ClaimStatus
    cancel_requested: bool = False
    holder: str = ""


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A task result, encoded, to be stored together with the run's outcome."""

    key: str
    value: bytes
    ttl_s: int


@dataclass(frozen=True, slots=True)
class Retention:
    """How long session state is kept, and how much of it."""

    events_maxlen: int = 1000
    events_ttl_s: int = 86_400
    done_ttl_s: int = 86_400
    cancel_ttl_s: int = 3_600


class SessionStore:
    """Claims, events and cancel requests of agent sessions on one Redis."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        retention: Retention | None = None,
        retry_window_s: float = RETRY_WINDOW_S,
    ) -> None:
        self.client = client
        self.retention = retention or Retention()
        self.retry_window_s = retry_window_s
        self.scripts = ScriptBatcher(client, (_CLAIM, _FINISH, _RENEW))

    async def claim(
        self,
        *,
        dedup_key: str,
        session_id: str,
        owner: str,
        task_id: str,
        lease_ms: int,
        started: Fields,
        deduplicated: Fields,
    ) -> Claim:
        """Claim the run, appending ``run.started``; or append ``run.deduplicated``."""
        args = [
            owner,
            task_id,
            lease_ms,
            self.retention.events_maxlen,
            self.retention.events_ttl_s,
            _json([_flat(started), _flat(deduplicated)]),
        ]
        reply = await self._call(_CLAIM, self._keys(dedup_key, session_id), args, "claim")
        status, cancel, *rest = reply
        return Claim(
            status=_text(status),  # type: ignore[arg-type]
            cancel_requested=bool(int(cancel)),
            holder=_text(rest[0]) if rest else "",
        )

    async def flush(self, *, session_id: str, events: Sequence[Fields]) -> bool:
        """Append buffered events; returns whether a cancel was requested."""
        stream = keys.session_events_key(session_id)

        async def run() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for fields in events:
                    entry: dict[Any, Any] = dict(fields)
                    pipe.xadd(stream, entry, maxlen=self.retention.events_maxlen, approximate=True)
                pipe.exists(keys.session_cancel_key(session_id))
                return await pipe.execute()

        replies = await retrying(run, what="writing session events", window_s=self.retry_window_s)
        return bool(replies[-1])

    async def finish(
        self,
        *,
        dedup_key: str,
        session_id: str,
        owner: str,
        task_id: str,
        outcome: Outcome,
        events: Sequence[Fields],
        consume_cancel: bool = False,
        result: StoredResult | None = None,
    ) -> bool:
        """End the run; ``False`` when another worker holds the claim now (nothing written).

        With ``result``, the task's result is stored in the same server-side step, which
        saves the worker a round trip per run.
        """
        keys_ = self._keys(dedup_key, session_id)
        args: list[object] = [
            owner,
            task_id,
            outcome,
            self.retention.done_ttl_s,
            self.retention.events_maxlen,
            self.retention.events_ttl_s,
            _json([_flat(fields) for fields in events]),
            "1" if consume_cancel else "0",
        ]
        if result is not None:
            keys_.append(result.key)
            args.extend((result.value, result.ttl_s))
        reply = await self._call(_FINISH, keys_, args, "finish")
        return bool(int(reply))

    async def renew(self, *, dedup_key: str, owner: str, lease_ms: int) -> bool:
        """Extend the lease; ``False`` when another worker took the run over."""
        keys_ = [keys.dedup_key(dedup_key)]
        reply = await self._call(_RENEW, keys_, [owner, lease_ms], "renewing a claim")
        return bool(int(reply))

    async def request_cancel(self, *, session_id: str) -> None:
        """Ask the session's current or next run to stop at its next step boundary."""
        key = keys.session_cancel_key(session_id)
        await retrying(
            lambda: self.client.set(key, "1", ex=self.retention.cancel_ttl_s),
            what="requesting a cancel",
            window_s=self.retry_window_s,
        )

    @staticmethod
    def _keys(dedup_key: str, session_id: str) -> list[str]:
        return [
            keys.dedup_key(dedup_key),
            keys.session_events_key(session_id),
            keys.session_cancel_key(session_id),
        ]

    async def _call(
        self, operation: Operation, keys_: Sequence[str], args: Sequence[object], what: str
    ) -> Any:
        return await retrying(
            lambda: self.scripts.call(operation, keys_, args),
            what=f"{what} (session state)",
            window_s=self.retry_window_s,
        )


def _flat(fields: Fields) -> list[str]:
    return [part for pair in fields.items() for part in pair]


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
