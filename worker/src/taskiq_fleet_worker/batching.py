"""Server-side scripts called by many runs at once, sent to Redis together.

A worker runs many agent runs side by side, and each claims and finishes its run with
one script call. Calls made during one turn of the event loop are queued and go out
in the next turn as a single pipeline (one write, one read, one borrowed connection);
a lone call goes out on its own. Each call keeps its own reply or error: a script
that fails fails its caller only, while a lost connection fails every call of the
pipeline, and each caller's retry loop sends its call again (the session scripts are
safe to repeat). A call whose caller was cancelled before the pipeline left is not
sent.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio
from redis.exceptions import NoScriptError

#: Script replies a pipeline may carry instead of a value; each goes to its own caller.
_REPLY_ERRORS: Final = (redis.exceptions.ResponseError,)


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script, known to Redis by the SHA1 of its text once loaded."""

    text: str
    sha: str

    @classmethod
    def of(cls, text: str) -> Script:
        return cls(text=text, sha=hashlib.sha1(text.encode()).hexdigest())  # noqa: S324


@dataclass(frozen=True, slots=True)
class _Call:
    script: Script
    keys: Sequence[str]
    args: Sequence[Any]
    reply: asyncio.Future[Any]

    def send(self, client: redis.asyncio.Redis) -> Any:
        """EVALSHA on ``client``: a reply to await, or a command queued on a pipeline."""
        return client.evalsha(self.script.sha, len(self.keys), *self.keys, *self.args)


class ScriptBatcher:
    """Queues script calls and sends each turn's calls as one pipeline."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._queued: list[_Call] = []
        self._scheduled = False
        self._sending: asyncio.Task[None] | None = None

    async def call(self, script: Script, keys: Sequence[str], args: Sequence[object]) -> Any:
        """Run ``script`` with ``keys`` and ``args`` and return its reply."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._queued.append(_Call(script, keys, args, reply))
        self._schedule()
        return await reply

    def _schedule(self) -> None:
        # One pipeline in flight at a time: what is called meanwhile waits for it and
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
            # Gives up on this pipeline: every caller gets the error, and decides itself
            # whether to send its call again.
            for call in calls:
                if not call.reply.done():
                    call.reply.set_exception(exc)
            return
        for call, reply in zip(calls, replies, strict=True):
            if call.reply.done():
                continue
            if isinstance(reply, _REPLY_ERRORS):
                call.reply.set_exception(reply)
            else:
                call.reply.set_result(reply)

    async def _execute(self, calls: list[_Call], *, loaded: bool = False) -> list[Any]:
        if len(calls) == 1:
            try:
                return [await calls[0].send(self.client)]
            except NoScriptError as exc:
                replies: list[Any] = [exc]
        else:
            async with self.client.pipeline(transaction=False) as pipe:
                for call in calls:
                    call.send(pipe)
                replies = await pipe.execute(raise_on_error=False)

        # Redis forgets scripts when it restarts: load what it lacks and send those again.
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if not missing or loaded:
            return replies
        for script in {calls[i].script for i in missing}:
            await self.client.script_load(script.text)
        again = await self._execute([calls[i] for i in missing], loaded=True)
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
        return replies
