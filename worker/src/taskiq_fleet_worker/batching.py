"""Server-side operations called by many runs at once, sent to Redis as one script call.

A worker runs many agent runs side by side, and each claims and finishes its run with
one server-side operation. Calls made during one turn of the event loop are queued
and go out in the next turn as a single ``EVALSHA`` of a script that runs each call
in order and answers with one reply per call: one command to encode, one reply to
read, one borrowed connection, whether one call goes out or fifty. A lone call goes
out the same way.

Each call keeps its own reply or error: an operation that fails (an error reply, or
a Lua error caught by the script) fails its caller only, while a lost connection fails
every call sent with it, and each caller's retry loop sends its call again (the
session operations are safe to repeat). A call whose caller was cancelled before the
script left is not sent.

The operations of a batcher are fixed when it is built: they are the functions of
its one script, which Redis knows by its SHA1 once loaded and forgets on a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio
from redis.exceptions import NoScriptError, ResponseError

# The dispatcher after the operations' table. ARGV[1] is the number of calls; then per
# call: the operation's name, its key count, its argument count and its arguments.
# KEYS are every call's keys, in call order. An operation's Lua error becomes that
# call's error reply; a nil reply becomes false, which keeps the reply table whole.
_DISPATCH: Final = """
local replies = {}
local key_at, arg_at = 0, 2
for i = 1, tonumber(ARGV[1]) do
  local name = ARGV[arg_at]
  local nkeys, nargs = tonumber(ARGV[arg_at + 1]), tonumber(ARGV[arg_at + 2])
  local keys, args = {}, {}
  for j = 1, nkeys do keys[j] = KEYS[key_at + j] end
  for j = 1, nargs do args[j] = ARGV[arg_at + 2 + j] end
  key_at, arg_at = key_at + nkeys, arg_at + 3 + nargs
  local ok, reply = pcall(operations[name], keys, args)
  if not ok then
    if type(reply) == 'table' and reply.err then reply = reply.err end
    reply = redis.error_reply(name .. ': ' .. tostring(reply))
  elseif reply == nil then
    reply = false
  end
  replies[i] = reply
end
return replies
"""


@dataclass(frozen=True, slots=True)
class Operation:
    """One server-side operation: the body of a Lua function of ``KEYS`` and ``ARGV``.

    The body reads its own keys and arguments as ``KEYS[1]``, ``ARGV[1]`` and so on,
    exactly as a script of its own would, and returns its reply.
    """

    name: str
    body: str

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"operation name {self.name!r} must be a Lua identifier")


def batch_script(operations: Iterable[Operation]) -> str:
    """The one script that runs any batch of calls of ``operations``."""
    functions = "".join(
        f"operations[{op.name!r}] = function(KEYS, ARGV)\n{op.body}\nend\n" for op in operations
    )
    return f"local operations = {{}}\n{functions}{_DISPATCH}"


@dataclass(frozen=True, slots=True)
class _Call:
    operation: Operation
    keys: Sequence[str]
    args: Sequence[Any]
    reply: asyncio.Future[Any]


class ScriptBatcher:
    """Queues operation calls and sends each turn's calls as one script call."""

    def __init__(self, client: redis.asyncio.Redis, operations: Iterable[Operation]) -> None:
        self.client = client
        self.operations = {op.name: op for op in operations}
        self.script = batch_script(self.operations.values())
        self.sha = hashlib.sha1(self.script.encode()).hexdigest()  # noqa: S324 - Redis's id
        self._queued: list[_Call] = []
        self._scheduled = False
        self._sending: asyncio.Task[None] | None = None

    async def call(self, operation: Operation, keys: Sequence[str], args: Sequence[object]) -> Any:
        """Run ``operation`` with ``keys`` and ``args`` and return its reply."""
        if self.operations.get(operation.name) is not operation:
            raise ValueError(f"operation {operation.name!r} is not one of this batcher's")
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._queued.append(_Call(operation, keys, args, reply))
        self._schedule()
        return await reply

    def _schedule(self) -> None:
        # One script call in flight at a time: what is called meanwhile waits for it and
        # goes out together. The send runs after every callback already due in this
        # turn, so their calls join in too.
        if self._queued and not self._scheduled and self._sending is None:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send_queued)

    def _send_queued(self) -> None:
        self._scheduled = False
        calls = [call for call in self._queued if not call.reply.cancelled()]
        self._queued = []
        if calls:
            self._sending = asyncio.get_running_loop().create_task(self._send(calls))
            self._sending.add_done_callback(self._sent)

    def _sent(self, _task: asyncio.Task[None]) -> None:
        self._sending = None
        self._schedule()

    async def _send(self, calls: list[_Call]) -> None:
        try:
            replies = await self._execute(calls)
        except asyncio.CancelledError:
            # The loop is closing: the callers are cancelled with it.
            for call in calls:
                call.reply.cancel()
            raise
        except Exception as exc:
            # Gives up on this batch: every caller gets the error, and decides itself
            # whether to send its call again.
            for call in calls:
                if not call.reply.done():
                    call.reply.set_exception(exc)
            return
        for call, reply in zip(calls, replies, strict=True):
            if call.reply.done():
                continue
            if isinstance(reply, ResponseError):
                call.reply.set_exception(reply)
            else:
                call.reply.set_result(reply)

    async def _execute(self, calls: list[_Call]) -> list[Any]:
        keys: list[str] = []
        args: list[Any] = [len(calls)]
        for call in calls:
            keys.extend(call.keys)
            args.extend((call.operation.name, len(call.keys), len(call.args), *call.args))
        try:
            replies = await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # Redis forgets scripts when it restarts: load ours and send the batch again.
            await self.client.script_load(self.script)
            replies = await self.client.evalsha(self.sha, len(keys), *keys, *args)
        return list(replies)
