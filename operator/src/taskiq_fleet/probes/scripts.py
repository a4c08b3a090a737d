"""The Lua script that reads one stream's consumer group in a single pipelined command.

A script, because the fallback for a missing ``lag`` needs the group's last delivered
id, which is only known once ``XINFO GROUPS`` has answered: inside the server both
steps run back to back, so the whole probe stays one round trip.

KEYS[1]: the stream. ARGV[1]: the consumer group. ARGV[2]: the most entries counted
one by one when ``lag`` is unknown.

Returns one of:
  {"none"}                           the stream does not exist
  {"wrongtype", <type>}              the key holds something else
  {"nogroup", <xlen>}                the stream exists, the group does not
  {"ok", <lag>, <"lag"|"counted">, <pending>, <oldest pending id>, <first new id>, <xlen>}
    ids are "" when there is none; a counted lag above the cap reads as cap + 1.
"""

from __future__ import annotations

from typing import Final

STREAM_GROUP_LUA: Final = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return {'none'} end
if kind ~= 'stream' then return {'wrongtype', kind} end
local xlen = redis.call('XLEN', KEYS[1])
local group = nil
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #raw, 2 do fields[raw[i]] = raw[i + 1] end
  if fields['name'] == ARGV[1] then group = fields break end
end
if group == nil then return {'nogroup', xlen} end
local last_id = group['last-delivered-id']
local pending = tonumber(group['pending'])
local lag = group['lag']
local source = 'lag'
if lag == nil or lag == false then
  -- Redis 6.2 has no lag; 7+ reports none after deletions: count what follows last_id.
  local cap = tonumber(ARGV[2])
  lag = #redis.call('XRANGE', KEYS[1], '(' .. last_id, '+', 'COUNT', cap + 1)
  source = 'counted'
end
local oldest_pending = ''
if pending > 0 then
  local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
  if summary[2] then oldest_pending = summary[2] end
end
local first_new = ''
local following = redis.call('XRANGE', KEYS[1], '(' .. last_id, '+', 'COUNT', 1)
if #following > 0 then first_new = following[1][1] end
return {'ok', tonumber(lag), source, pending, oldest_pending, first_new, xlen}
"""
