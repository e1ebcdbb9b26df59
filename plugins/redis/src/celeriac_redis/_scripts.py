"""Lua scripts of the streams layout: each runs atomically on the server, in one round trip.

Keys of one queue are passed as ``bands..., delayed, dead, wake`` (bands in ascending
priority). A delivery is identified by its band, its entry id and the PEL delivery counter
it was handed out with: a consumer may ack, extend, requeue or dead-letter an entry only
while the PEL still says it is that consumer's, with that counter. A consumer whose lease
ran out (and whose message another consumer reclaimed) therefore cannot settle it.
An entry's optional ``n`` field counts deliveries before it was requeued, so the delivery
count a worker sees is ``n`` plus the PEL counter.
"""

from __future__ import annotations

_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fields(entry)
  local f = {}
  for i = 1, #entry, 2 do f[entry[i]] = entry[i + 1] end
  return f
end
local function owned(key, group, consumer, id, count)
  local p = redis.pcall('XPENDING', key, group, id, id, 1)
  if type(p) ~= 'table' or p.err or not p[1] then return false end
  return p[1][2] == consumer and tostring(p[1][4]) == count
end
"""

#: Move due delayed messages, reclaim expired leases, read new entries, highest band first.
#: ARGV: group, consumer, limit, reclaim (0/1), min idle ms, bands per queue, promote batch,
#: then (queue index, id) pairs of wake entries to acknowledge.
#: Returns {flat 6-tuples (queue index, band, id, m, n, pel count), ms to next due or -1}.
#: When nothing was found, every band and wake stream is made to exist with the group, so
#: that the caller can block on them with XREADGROUP.
FETCH = (
    _COMMON
    + """
local group, consumer = ARGV[1], ARGV[2]
local remaining = tonumber(ARGV[3])
local reclaim = ARGV[4] == '1'
local min_idle = tonumber(ARGV[5])
local nb = tonumber(ARGV[6])
local batch = tonumber(ARGV[7])
local per = nb + 3
local nq = #KEYS / per
local now = now_ms()
local out = {}
local next_due = -1

for i = 8, #ARGV, 2 do
  redis.pcall('XACK', KEYS[tonumber(ARGV[i]) * per + per], group, ARGV[i + 1])
end

local function emit(q, b, entry, count)
  local f = fields(entry[2])
  out[#out + 1] = q; out[#out + 1] = b; out[#out + 1] = entry[1]
  out[#out + 1] = f['m'] or ''; out[#out + 1] = f['n'] or '0'; out[#out + 1] = count
  remaining = remaining - 1
end

local function read(key)
  local reply = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', remaining, 'STREAMS', key, '>')
  if type(reply) == 'table' and reply.err then
    if not string.find(reply.err, 'NOGROUP') then error(reply.err) end
    -- A stream written before any worker saw it (or recreated after a flush): serve it all.
    redis.pcall('XGROUP', 'CREATE', key, group, '0')
    reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', remaining, 'STREAMS', key, '>')
  end
  return reply
end

for q = 0, nq - 1 do
  local base = q * per
  local delayed = KEYS[base + nb + 1]
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, batch)
  for _, member in ipairs(due) do
    local band = tonumber(string.sub(member, 17, 17))
    redis.call('XADD', KEYS[base + band + 1], '*', 'm', string.sub(member, 18))
  end
  if #due > 0 then redis.call('ZREM', delayed, unpack(due)) end
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if first[2] then
    local wait = math.max(tonumber(first[2]) - now, 0)
    if next_due < 0 or wait < next_due then next_due = wait end
  end
end

if reclaim then
  for b = nb - 1, 0, -1 do
    for q = 0, nq - 1 do
      local key = KEYS[q * per + b + 1]
      if remaining > 0 and redis.call('EXISTS', key) == 1 then
        local idle = redis.pcall('XPENDING', key, group, 'IDLE', min_idle, '-', '+', remaining)
        if type(idle) == 'table' and not idle.err then
          for _, p in ipairs(idle) do
            local claimed = redis.call('XCLAIM', key, group, consumer, min_idle, p[1])
            if type(claimed[1]) == 'table' then emit(q, b, claimed[1], p[4] + 1) end
          end
        end
      end
    end
  end
end

for b = nb - 1, 0, -1 do
  for q = 0, nq - 1 do
    local key = KEYS[q * per + b + 1]
    if remaining > 0 and redis.call('EXISTS', key) == 1 then
      local reply = read(key)
      if reply and reply[1] then
        for _, entry in ipairs(reply[1][2]) do emit(q, b, entry, 1) end
      end
    end
  end
end

if #out == 0 then
  for q = 0, nq - 1 do
    for i = 1, per do
      local key = KEYS[q * per + i]
      if (i <= nb or i == per) and redis.call('EXISTS', key) == 0 then
        redis.pcall('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
      end
    end
  end
end
return {out, next_due}
"""
)

#: ARGV: group, consumer, then (band, id, pel count) triples. KEYS: the queue's bands.
ACK = (
    _COMMON
    + """
local done = 0
for i = 3, #ARGV, 3 do
  local key = KEYS[tonumber(ARGV[i]) + 1]
  if owned(key, ARGV[1], ARGV[2], ARGV[i + 1], ARGV[i + 2]) then
    redis.call('XACK', key, ARGV[1], ARGV[i + 1])
    redis.call('XDEL', key, ARGV[i + 1])
    done = done + 1
  end
end
return done
"""
)

#: Renew leases: XCLAIM with JUSTID resets the idle time and leaves the counter alone.
EXTEND = (
    _COMMON
    + """
local done = 0
for i = 3, #ARGV, 3 do
  local key = KEYS[tonumber(ARGV[i]) + 1]
  if owned(key, ARGV[1], ARGV[2], ARGV[i + 1], ARGV[i + 2]) then
    redis.call('XCLAIM', key, ARGV[1], ARGV[2], 0, ARGV[i + 1], 'JUSTID')
    done = done + 1
  end
end
return done
"""
)

#: Give messages back at once: a fresh entry at the end of its band, deliveries carried in ``n``.
REQUEUE = (
    _COMMON
    + """
local done = 0
for i = 3, #ARGV, 3 do
  local key, id = KEYS[tonumber(ARGV[i]) + 1], ARGV[i + 1]
  if owned(key, ARGV[1], ARGV[2], id, ARGV[i + 2]) then
    local entry = redis.call('XRANGE', key, id, id)[1]
    if entry then
      local f = fields(entry[2])
      local n = tonumber(f['n'] or '0') + tonumber(ARGV[i + 2])
      redis.call('XADD', key, '*', 'm', f['m'], 'n', n)
    end
    redis.call('XACK', key, ARGV[1], id)
    redis.call('XDEL', key, id)
    done = done + 1
  end
end
return done
"""
)

#: Give back entries read but never handed out (a blocking read returned more than asked):
#: like REQUEUE, but the delivery is not counted.
RELEASE = REQUEUE.replace("tonumber(f['n'] or '0') + tonumber(ARGV[i + 2])", "tonumber(f['n'] or '0')")

#: KEYS: bands..., dead. ARGV: group, consumer, band, id, pel count, reason, queue, max length.
DEAD_LETTER = (
    _COMMON
    + """
local nb = #KEYS - 1
local key, id = KEYS[tonumber(ARGV[3]) + 1], ARGV[4]
if not owned(key, ARGV[1], ARGV[2], id, ARGV[5]) then return 0 end
local entry = redis.call('XRANGE', key, id, id)[1]
if entry then
  local f = fields(entry[2])
  local count = tonumber(f['n'] or '0') + tonumber(ARGV[5])
  -- An entry another program added may lack 'm'; a nil argument would fail the script and
  -- leave the entry pending, to come back and fail again after every visibility timeout.
  redis.call('XADD', KEYS[nb + 1], 'MAXLEN', '~', ARGV[8], '*', 'm', f['m'] or '', 'reason', ARGV[6],
    'queue', ARGV[7], 'band', ARGV[3], 'deliveries', count, 'failed_at', now_ms())
end
redis.call('XACK', key, ARGV[1], id)
redis.call('XDEL', key, id)
return 1
"""
)

#: KEYS: bands..., dead. ARGV: dead-letter id. Back to its band as never delivered.
REQUEUE_DEAD = """
local nb = #KEYS - 1
local entry = redis.call('XRANGE', KEYS[nb + 1], ARGV[1], ARGV[1])[1]
if not entry then return 0 end
local m, band = '', 0
for i = 1, #entry[2], 2 do
  if entry[2][i] == 'm' then m = entry[2][i + 1] end
  if entry[2][i] == 'band' then band = math.min(tonumber(entry[2][i + 1]), nb - 1) end
end
redis.call('XADD', KEYS[band + 1], '*', 'm', m)
redis.call('XDEL', KEYS[nb + 1], ARGV[1])
return 1
"""

#: KEYS: bands..., delayed. ARGV: group. Deletes entries not yet delivered, and delayed ones.
PURGE = """
local nb = #KEYS - 1
local purged = redis.call('ZCARD', KEYS[nb + 1])
redis.call('DEL', KEYS[nb + 1])
for b = 1, nb do
  local key = KEYS[b]
  if redis.call('EXISTS', key) == 1 then
    local last = nil
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
      local info = {}
      for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
      if info['name'] == ARGV[1] then last = info['last-delivered-id'] end
    end
    if last == nil then
      purged = purged + redis.call('XLEN', key)
      redis.call('DEL', key)
    else
      while true do
        local entries = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 500)
        if #entries == 0 then break end
        local ids = {}
        for i, e in ipairs(entries) do ids[i] = e[1] end
        purged = purged + redis.call('XDEL', key, unpack(ids))
        last = ids[#ids]
      end
    end
  end
end
return purged
"""

#: KEYS: bands..., delayed. ARGV: group. Entries not yet delivered, plus delayed ones.
LENGTH = """
local nb = #KEYS - 1
local total = redis.call('ZCARD', KEYS[nb + 1])
for b = 1, nb do
  local n = redis.call('XLEN', KEYS[b])
  if n > 0 then
    local summary = redis.pcall('XPENDING', KEYS[b], ARGV[1])
    if type(summary) == 'table' and not summary.err then n = n - summary[1] end
    total = total + n
  end
end
return total
"""

#: KEYS: delayed, wake. ARGV: delay ms, then members (16-char id, band digit, packed envelope).
#: Scores come from the server's clock, so producers' clocks do not matter.
DELAY = (
    _COMMON
    + """
local due = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], due, ARGV[i]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '1', '*', 'w', '1')
return due
"""
)
