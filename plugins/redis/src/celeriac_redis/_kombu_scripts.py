"""Lua scripts of the kombu layout.

Messages are kombu JSON envelopes in lists (``LPUSH`` by producers, popped from the right).
A delivered message is recorded exactly as kombu's ``QoS.append`` does (``unacked`` hash:
tag -> ``[message, exchange, routing_key]``; ``unacked_index`` sorted set: tag -> delivery
time), in the same script that pops it, so a worker dying between the two cannot lose it,
and Celery's own visibility sweep can restore it. Delivery counts, which kombu does not
keep, live in a celeriac hash keyed by delivery tag.
"""

from __future__ import annotations

#: KEYS: unacked, unacked_index, counts, lists (in serving order)..., delayed sets...
#: ARGV: limit, now (s), now (ms), lists, delayed sets, then each list's queue name.
#: Delayed members are ``<16 chars><list key>\n<message>``.
#: Returns {flat (list index, tag, message, delivery count), ms to next due or -1}.
FETCH = r"""
local remaining = tonumber(ARGV[1])
local now, now_ms = ARGV[2], tonumber(ARGV[3])
local nl, nd = tonumber(ARGV[4]), tonumber(ARGV[5])
local next_due = -1
for d = 1, nd do
  local key = KEYS[3 + nl + d]
  local due = redis.call('ZRANGEBYSCORE', key, '-inf', now_ms, 'LIMIT', 0, 1000)
  for _, member in ipairs(due) do
    local cut = string.find(member, '\n', 17, true)
    redis.call('LPUSH', string.sub(member, 17, cut - 1), string.sub(member, cut + 1))
  end
  if #due > 0 then redis.call('ZREM', key, unpack(due)) end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then
    local wait = math.max(tonumber(first[2]) - now_ms, 0)
    if next_due < 0 or wait < next_due then next_due = wait end
  end
end
local out = {}
for i = 1, nl do
  if remaining <= 0 then break end
  local items = redis.call('RPOP', KEYS[3 + i], remaining)
  if items then
    for j, item in ipairs(items) do
      local ok, msg = pcall(cjson.decode, item)
      local tag, ex, rk = nil, '', ARGV[5 + i]
      local stored = item
      if ok and type(msg) == 'table' and type(msg['properties']) == 'table' then
        tag = msg['properties']['delivery_tag']
        local info = msg['properties']['delivery_info']
        if type(info) == 'table' then
          if type(info['exchange']) == 'string' then ex = info['exchange'] end
          if type(info['routing_key']) == 'string' then rk = info['routing_key'] end
        end
      else
        stored = cjson.encode(item)  -- keep the unacked hash valid JSON for kombu's sweep
      end
      if type(tag) ~= 'string' then tag = 'celeriac-unreadable-' .. now .. '-' .. i .. '-' .. j end
      local entry = '[' .. stored .. ', ' .. cjson.encode(ex) .. ', ' .. cjson.encode(rk) .. ']'
      redis.call('HSET', KEYS[1], tag, entry)
      redis.call('ZADD', KEYS[2], now, tag)
      local count = redis.call('HINCRBY', KEYS[3], tag, 1)
      out[#out + 1] = i; out[#out + 1] = tag; out[#out + 1] = item; out[#out + 1] = count
      remaining = remaining - 1
    end
  end
end
return {out, next_due}
"""

#: KEYS: unacked, unacked_index, counts, delayed. ARGV: tag, due ms, member.
#: An ETA message a Celery client sent: kept in Redis until due, not in the worker.
PARK = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
return 1
"""

#: KEYS: unacked, unacked_index, counts, dead. ARGV: tag, packed envelope, reason, queue,
#: deliveries, max length, failed at (ms).
DEAD_LETTER = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'm', ARGV[2], 'reason', ARGV[3],
  'queue', ARGV[4], 'deliveries', ARGV[5], 'failed_at', ARGV[7])
return 1
"""

#: KEYS: dead, target list. ARGV: dead-letter id, kombu message.
REQUEUE_DEAD = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
"""

#: KEYS: the queue's lists..., delayed. Returns how many messages were deleted.
PURGE = """
local purged = 0
for i = 1, #KEYS - 1 do
  purged = purged + redis.call('LLEN', KEYS[i])
  redis.call('DEL', KEYS[i])
end
purged = purged + redis.call('ZCARD', KEYS[#KEYS])
redis.call('DEL', KEYS[#KEYS])
return purged
"""
