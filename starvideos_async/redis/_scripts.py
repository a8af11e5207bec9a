"""The Lua scripts: each shared step is one atomic script, one round trip.

Times are the Redis server's own clock (``TIME``), so that hosts whose clocks disagree
still agree on every lease and every spacing. Redis >= 5 runs scripts that read the clock
and then write (effects replication is the default there).

Keys all carry the namespace's hash tag (``starvideos:{...}:``), so that they live in
one slot of a Redis Cluster and a script may touch several.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACQUIRE", "CLAIM", "PAUSE", "PUBLISH", "RATE", "RELEASE", "RENEW"]

#: A concurrency slot, if fewer than ARGV[1] are held (each client applies its own limit
#: to the shared count). Expired leases (a killed holder) are dropped first. When the
#: slots are full, KEYS[2] tells releasers for a while that someone waits. The set's own
#: life is only ever lengthened: clients with a shorter lease must not expire the others'.
#: KEYS: slots (sorted set: token -> lease end, ms), waiting flag.
#: ARGV: limit, lease (ms), token, waiting flag's life (ms). Returns 1 (taken) or 0.
ACQUIRE: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  if redis.call('PTTL', KEYS[1]) < lease then  -- only ever longer: others' leases stay
    redis.call('PEXPIRE', KEYS[1], lease)
  end
  return 1
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
return 0
"""

#: Give back a slot; tell the waiting (if any) on the channel.
#: KEYS: slots, waiting flag. ARGV: token, channel. Returns 1 if the slot was held.
RELEASE: Final = """
local held = redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PUBLISH', ARGV[2], 'released')
end
return held
"""

#: Extend the leases of the slots a process holds (those still held).
#: KEYS: slots. ARGV: lease (ms), token, token... Returns how many were still held.
RENEW: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local lease = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
end
if renewed > 0 and redis.call('PTTL', KEYS[1]) < lease then  -- only ever longer
  redis.call('PEXPIRE', KEYS[1], lease)
end
return renewed
"""

#: A status-call pass, if the last pass (anyone's) is at least ARGV[1] us ago and no 429
#: pause runs. Each client spaces by its own rate: the shared passes are never closer
#: than the smallest spacing, i.e. never more than the largest rate configured.
#: KEYS: the gate (hash: last pass, paused until; us). ARGV: spacing (us).
#: Returns 0 (pass taken) or the microseconds to wait.
RATE: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000000 + clock[2]
local gate = redis.call('HMGET', KEYS[1], 'last', 'paused')
local ready = math.max((tonumber(gate[1]) or 0) + tonumber(ARGV[1]), tonumber(gate[2]) or 0)
if ready > now then
  return ready - now
end
redis.call('HSET', KEYS[1], 'last', now)
if redis.call('PTTL', KEYS[1]) < 60000 then
  redis.call('PEXPIRE', KEYS[1], 60000)
end
return 0
"""

#: A 429: no pass for anyone until ARGV[1] us from now (an earlier end never shortens it).
#: KEYS: the gate. ARGV: pause (us).
PAUSE: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000000 + clock[2]
local until_ = now + tonumber(ARGV[1])
if until_ > (tonumber(redis.call('HGET', KEYS[1], 'paused')) or 0) then
  redis.call('HSET', KEYS[1], 'paused', until_)
end
local life = math.max(60000, math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
if redis.call('PTTL', KEYS[1]) < life then  -- the pause outlives its key otherwise
  redis.call('PEXPIRE', KEYS[1], life)
end
return 0
"""

#: Before a task's status call: a snapshot fetched by someone after the asker's last one
#: and less than ARGV[1] ms ago (or a final one) answers it; else the first to ask claims
#: the call, and the others wait for its answer on the channel.
#: KEYS: snapshot ("<ms fetched> <F|R><json>"), claim. ARGV: freshness (ms), claim's life
#: (ms), claimant, when the asker's last snapshot was fetched (ms, 0: none).
#: Returns {'snapshot', json, ms fetched}, {'claimed'} or {'wait', ms left on the claim}.
CLAIM: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local snapshot = redis.call('GET', KEYS[1])
if snapshot then
  local space = string.find(snapshot, ' ', 1, true)
  local fetched = tonumber(string.sub(snapshot, 1, space - 1))
  local final = string.sub(snapshot, space + 1, space + 1) == 'F'
  if final or (fetched > tonumber(ARGV[4]) and now - fetched <= tonumber(ARGV[1])) then
    return {'snapshot', string.sub(snapshot, space + 2), fetched}
  end
end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then
  return {'claimed'}
end
return {'wait', redis.call('PTTL', KEYS[2])}
"""

#: After the status call: keep the snapshot a while, drop the claim, tell the waiting
#: (the message: ``<ms fetched> <task id JSON list>``, see SharedPolls).
#: KEYS: snapshot, claim. ARGV: claimant, json ('' when the call failed), 'F' (final) or
#: 'R', snapshot's life (ms), channel, message. Returns the ms fetched.
PUBLISH: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], now .. ' ' .. ARGV[3] .. ARGV[2], 'PX', ARGV[4])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
redis.call('PUBLISH', ARGV[5], now .. ' ' .. ARGV[6])
return now
"""
