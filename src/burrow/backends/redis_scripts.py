"""Lua sources of the Redis backend: each operation that must be atomic is one script.

Every script is called with KEYS[1] = the account's hash `b:{<hex account>}:a`;
the other keys of the account are derived from that prefix, so they all share
the account's hash slot (see `burrow.backends.redis` for the layout). Deadlines
are integer milliseconds on the Redis server's clock (`TIME`); 0 means "never"
(ttl) or "visible" (hide). Messages are reported as flat lists
`id, body, expires, hidden_until, put, receives` after a header of `now` and one extra
value, where `put` is `<sent ms>:<meta>` and `receives` is
`<count>:<first received ms>:<latest receipt>` ('' for a message never received, or one
stored before these fields existed).
"""

from __future__ import annotations

PRELUDE = """
local A = KEYS[1]
local P = string.sub(A, 1, -2)
local QS, XQ, QB = P .. 'qs', P .. 'xq', P .. 'qb'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function hex(s)
  return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end))
end

local function qkeys(qhex)
  local b = P .. 'q:' .. qhex .. ':'
  return {
    o = b .. 'o', r = b .. 'r', h = b .. 'h', x = b .. 'x', b = b .. 'b',
    m = b .. 'm', v = b .. 'v', f = b .. 'f',
  }
end

-- Set a hash's field to `value` if it holds `expected` ('' = none, else '=' .. the value):
-- 'new' or 'replaced' if set, false if not.
local function compare_and_set(key, field, value, expected)
  local stored = redis.call('HGET', key, field)
  if expected == '' then
    if stored then return false end
  elseif stored ~= string.sub(expected, 2) then
    return false
  end
  redis.call('HSET', key, field, value)
  return stored and 'replaced' or 'new'
end

local function score(key, id)
  local s = redis.call('ZSCORE', key, id)
  if s then return tonumber(s) end
  return 0
end

local function expired(k, id, now)
  local at = score(k.x, id)
  return at > 0 and at <= now
end

local function live(k, now)
  return redis.call('ZCARD', k.o) > redis.call('ZCOUNT', k.x, '-inf', now)
end

-- Hidden messages whose deadline passed go back to the ready set, in their place.
local function promote(k, now)
  local due = redis.call('ZRANGEBYSCORE', k.h, '-inf', now)
  for _, id in ipairs(due) do
    redis.call('ZADD', k.r, redis.call('ZSCORE', k.o, id), id)
  end
  if #due > 0 then redis.call('ZREMRANGEBYSCORE', k.h, '-inf', now) end
end

-- Calls use(chunk) on the ids 200 at a time: commands that take many ids at once
-- (HMGET, ZREM, HDEL) cost one call a chunk rather than one an id.
local function by_chunks(ids, use)
  for first = 1, #ids, 200 do
    use({unpack(ids, first, math.min(first + 199, #ids))})
  end
end

-- Appends each of `ids` to `out`, as the module docstring says.
local function report(out, k, ids, now)
  by_chunks(ids, function(chunk)
    local bodies = redis.call('HMGET', k.b, unpack(chunk))
    local puts = redis.call('HMGET', k.m, unpack(chunk))
    local receives = redis.call('HMGET', k.v, unpack(chunk))
    for i, id in ipairs(chunk) do
      local hidden = score(k.h, id)
      if hidden <= now then hidden = 0 end
      local n = #out
      out[n + 1], out[n + 2], out[n + 3] = id, bodies[i] or '', score(k.x, id)
      out[n + 4], out[n + 5], out[n + 6] = hidden, puts[i] or '', receives[i] or ''
    end
  end)
end

-- Received messages are in `v` and `f` (and only they): both go together.
local function forget_receives(k, ids)
  if redis.call('HDEL', k.v, unpack(ids)) > 0 then redis.call('ZREM', k.f, unpack(ids)) end
end

-- The latest receive's receipt, '' if none.
local function receipt_of(k, id)
  local v = redis.call('HGET', k.v, id)
  if not v then return '' end
  return string.match(v, '^%d+:%d+:(.*)$')
end

-- Whether a live message `id` is there, received last with the receipt `wanted` names
-- ('' = any, else '=' .. the receipt).
local function held(k, id, wanted, now)
  if not redis.call('ZSCORE', k.o, id) or expired(k, id, now) then return false end
  return wanted == '' or receipt_of(k, id) == string.sub(wanted, 2)
end

-- One more receive, with its receipt (after the hide it comes with was set).
local function receive(k, id, receipt, now)
  local count, first = 0, now
  local v = redis.call('HGET', k.v, id)
  if v then
    local c, f = string.match(v, '^(%d+):(%d+):')
    count, first = tonumber(c), f
  end
  redis.call('HSET', k.v, id, (count + 1) .. ':' .. first .. ':' .. receipt)
  redis.call('ZADD', k.f, score(k.h, id), id)
end

-- Returns the removed bodies' length.
local function remove(k, ids)
  local len = 0
  by_chunks(ids, function(chunk)
    for _, id in ipairs(chunk) do len = len + redis.call('HSTRLEN', k.b, id) end
    for _, key in ipairs({k.o, k.r, k.h, k.x}) do redis.call('ZREM', key, unpack(chunk)) end
    redis.call('HDEL', k.b, unpack(chunk))
    redis.call('HDEL', k.m, unpack(chunk))
    forget_receives(k, chunk)
  end)
  return len
end

local function set_ttl(k, id, ttl, now)
  if ttl > 0 then
    redis.call('ZADD', k.x, now + ttl * 1000, id)
  else
    redis.call('ZREM', k.x, id)
  end
end

-- Returns the hidden-until deadline (0: visible).
local function set_hide(k, id, hide, now)
  if hide > 0 then
    redis.call('ZADD', k.h, now + hide * 1000, id)
    redis.call('ZREM', k.r, id)
    return now + hide * 1000
  end
  redis.call('ZREM', k.h, id)
  redis.call('ZADD', k.r, redis.call('ZSCORE', k.o, id), id)
  return 0
end

-- An update of a stored message: ttl and hide where given (-1 = keep). A received
-- message's deadline in `f` follows its hide (`f` is what counts messages in flight).
local function set_attributes(k, id, ttl, hide, now)
  if ttl >= 0 then set_ttl(k, id, ttl, now) end
  if hide >= 0 then redis.call('ZADD', k.f, 'XX', set_hide(k, id, hide, now), id) end
end

-- A queue's keys, its place in the account's listings and its bytes in the
-- account's count go (`k`: its keys, when the caller has them already).
local function drop_queue(qname, k)
  k = k or qkeys(hex(qname))
  redis.call('UNLINK', k.o, k.r, k.h, k.x, k.b, k.m, k.v, k.f)
  redis.call('ZREM', QS, qname)
  redis.call('ZREM', XQ, qname)
  local bytes = tonumber(redis.call('HGET', QB, qname) or '0')
  if bytes ~= 0 then redis.call('HINCRBY', A, 'bytes', -bytes) end
  redis.call('HDEL', QB, qname)
end

-- After a write: account and queue byte counts, the queue's earliest expiry,
-- and an emptied queue leaves the account's listing.
local function settle(k, qname, delta)
  if delta ~= 0 then
    redis.call('HINCRBY', A, 'bytes', delta)
    redis.call('HINCRBY', QB, qname, delta)
  end
  if redis.call('EXISTS', k.o) == 0 then
    drop_queue(qname, k)
    return
  end
  local first = redis.call('ZRANGE', k.x, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', XQ, first[2], qname)
  else
    redis.call('ZREM', XQ, qname)
  end
end

-- A delete that answers: report the messages into `out`, then remove them.
local function report_removed(out, k, qname, ids, now)
  report(out, k, ids, now)
  settle(k, qname, -remove(k, ids))
end

-- Members of ZSET `source` that come after `marker` in ZSET `order` (from the start
-- when the marker is '' or unknown), in score order, for which keep(member) holds; at
-- most `limit` of them (0: no limit). Read 100 members at a time.
local function after_marker(order, marker, source, limit, keep)
  local start = '-inf'
  if marker ~= '' then
    local s = redis.call('ZSCORE', order, marker)
    if s then start = '(' .. s end
  end
  local found = {}
  while limit == 0 or #found < limit do
    local page = redis.call('ZRANGEBYSCORE', source, start, '+inf', 'WITHSCORES', 'LIMIT', 0, 100)
    for i = 1, #page, 2 do
      if keep(page[i]) then
        found[#found + 1] = page[i]
        if #found == limit then break end
      end
    end
    if #page < 200 then break end
    start = '(' .. page[#page]
  end
  return found
end

-- Wake-ups for other servers: the writer's id, then ms until each hidden one shows.
local function announce(channel, origin, hides)
  redis.call('PUBLISH', channel, origin .. ' ' .. table.concat(hides, ' '))
end

-- The token a writer needs to get the account indexed, or '' when it is indexed.
local function index_token()
  local rgen = redis.call('HGET', A, 'rgen') or '0'
  if redis.call('HGET', A, 'idx') == rgen then return '' end
  return rgen
end
"""

# ARGV: qname, qhex, origin, channel, cap_queue_messages, cap_account_queues,
#       cap_account_bytes, then (id, body, ttl, hide, meta) per message.
# A replace starts the message's sent time, meta and receives anew.
PUT = (
    PRELUDE
    + """
local qname, k = ARGV[1], qkeys(ARGV[2])
local caps = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])}
local now = now_ms()
local n = (#ARGV - 7) / 5
if caps[1] > 0 or caps[2] > 0 or caps[3] > 0 then
  local messages = redis.call('ZCARD', k.o)
  local bytes = tonumber(redis.call('HGET', A, 'bytes') or '0')
  local queues = redis.call('ZCARD', QS)
  if not redis.call('ZSCORE', QS, qname) then queues = queues + 1 end
  for i = 0, n - 1 do
    local id, body = ARGV[8 + i * 5], ARGV[9 + i * 5]
    if redis.call('ZSCORE', k.o, id) then
      messages = messages - 1
      bytes = bytes - redis.call('HSTRLEN', k.b, id)
    end
    messages = messages + 1
    bytes = bytes + #body
  end
  local counts = {messages, queues, bytes}
  for i = 1, 3 do
    if caps[i] > 0 and counts[i] > caps[i] then return {-1, '', messages, queues, bytes} end
  end
end
if not redis.call('ZSCORE', QS, qname) then
  redis.call('ZADD', QS, redis.call('HINCRBY', A, 'seq', 1), qname)
end
local out, hides, delta = {now, ''}, {}, 0
for i = 0, n - 1 do
  local id, body = ARGV[8 + i * 5], ARGV[9 + i * 5]
  local ttl, hide = tonumber(ARGV[10 + i * 5]), tonumber(ARGV[11 + i * 5])
  local seq = redis.call('ZSCORE', k.o, id)
  if seq and expired(k, id, now) then
    delta = delta - remove(k, {id})
    seq = false
  end
  if seq then
    delta = delta - redis.call('HSTRLEN', k.b, id)
    forget_receives(k, {id})
    out[#out + 1] = 0
  else
    redis.call('ZADD', k.o, redis.call('HINCRBY', A, 'seq', 1), id)
    out[#out + 1] = 1
  end
  redis.call('HSET', k.b, id, body)
  redis.call('HSET', k.m, id, now .. ':' .. ARGV[12 + i * 5])
  delta = delta + #body
  set_ttl(k, id, ttl, now)
  set_hide(k, id, hide, now)
  if hide > 0 then hides[#hides + 1] = hide * 1000 end
end
settle(k, qname, delta)
announce(ARGV[4], ARGV[3], hides)
out[2] = index_token()
return out
"""
)

# ARGV: qname, qhex, origin, channel, mode (get|update|delete), limit (0 = all),
#       marker ('' = none), match_hidden (0|1), ttl (-1 = keep), hide (-1 = keep),
#       receipt ('' = no receive, else '=' .. the receipt: an update that is a receive).
# Returns now, the earliest hidden deadline when nothing matched, the messages.
SELECT = (
    PRELUDE
    + """
local qname, k, mode = ARGV[1], qkeys(ARGV[2]), ARGV[5]
local limit, marker = tonumber(ARGV[6]), ARGV[7]
local ttl, hide = tonumber(ARGV[9]), tonumber(ARGV[10])
local now = now_ms()
promote(k, now)
local source = k.r
if ARGV[8] == '1' then source = k.o end
local matched = after_marker(k.o, marker, source, limit, function(id)
  return not expired(k, id, now)
end)
local out = {now, 0}
if #matched == 0 then
  local first = redis.call('ZRANGE', k.h, 0, 0, 'WITHSCORES')
  if first[2] then out[2] = tonumber(first[2]) end
  return out
end
if mode == 'delete' then
  report_removed(out, k, qname, matched, now)
  return out
end
if mode == 'update' and (ttl >= 0 or hide >= 0) then
  for _, id in ipairs(matched) do set_attributes(k, id, ttl, hide, now) end
  settle(k, qname, 0)
  local hides = {}
  if hide > 0 then hides[1] = hide * 1000 end
  announce(ARGV[4], ARGV[3], hides)
end
if mode == 'update' and ARGV[11] ~= '' then
  local receipt = string.sub(ARGV[11], 2)
  for _, id in ipairs(matched) do receive(k, id, receipt, now) end
end
report(out, k, matched, now)
return out
"""
)

# ARGV: qname, qhex, origin, channel, mode (get|update), id, ttl, hide,
#       receipt ('' = any, else '=' .. the receipt the latest receive must have).
ONE = (
    PRELUDE
    + """
local qname, k, mode, id = ARGV[1], qkeys(ARGV[2]), ARGV[5], ARGV[6]
local ttl, hide, wanted = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local now = now_ms()
local out = {now, 0}
if not held(k, id, wanted, now) then return out end
if mode == 'update' and (ttl >= 0 or hide >= 0) then
  set_attributes(k, id, ttl, hide, now)
  settle(k, qname, 0)
  local hides = {}
  if hide > 0 then hides[1] = hide * 1000 end
  announce(ARGV[4], ARGV[3], hides)
end
report(out, k, {id}, now)
return out
"""
)

# ARGV: qname, qhex, origin, channel, then pairs of id and receipt (as ONE's).
# Deletes those of the listed messages there (with a receipt, only while it is the
# latest receive's) and reports them, in the order listed.
DELETE_LISTED = (
    PRELUDE
    + """
local qname, k = ARGV[1], qkeys(ARGV[2])
local now = now_ms()
local out = {now, 0}
local found = {}
for i = 5, #ARGV, 2 do
  if held(k, ARGV[i], ARGV[i + 1], now) then found[#found + 1] = ARGV[i] end
end
if #found > 0 then report_removed(out, k, qname, found, now) end
return out
"""
)

# ARGV: mode (get|delete), limit (0 = all), marker ('' = none).
# The account's queues holding live messages, in creation order.
QUEUES = (
    PRELUDE
    + """
local mode, limit, marker = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local now = now_ms()
local names = after_marker(QS, marker, QS, limit, function(qname)
  return live(qkeys(hex(qname)), now)
end)
if mode == 'delete' then
  for _, qname in ipairs(names) do drop_queue(qname) end
end
return names
"""
)

# ARGV: mode: 'live' (1 when a queue holds live messages), 'delete' (drop every
# queue), 'purge' (delete up to ARGV[2] expired messages; returns how many, 1
# when more may be due, and the number of queues left), 'unindex' (when empty,
# bump the index generation and return nil; else return the generation).
ACCOUNT = (
    PRELUDE
    + """
local mode = ARGV[1]
local now = now_ms()
if mode == 'live' then
  for _, qname in ipairs(redis.call('ZRANGE', QS, 0, -1)) do
    if live(qkeys(hex(qname)), now) then return 1 end
  end
  return 0
elseif mode == 'delete' then
  for _, qname in ipairs(redis.call('ZRANGE', QS, 0, -1)) do drop_queue(qname) end
  return 1
elseif mode == 'purge' then
  local budget, purged = tonumber(ARGV[2]), 0
  for _, qname in ipairs(redis.call('ZRANGEBYSCORE', XQ, '-inf', now, 'LIMIT', 0, budget)) do
    local k = qkeys(hex(qname))
    local due = redis.call('ZRANGEBYSCORE', k.x, '-inf', now, 'LIMIT', 0, budget - purged)
    purged = purged + #due
    settle(k, qname, -remove(k, due))
    if purged >= budget then break end
  end
  local more = 0
  if purged >= budget then more = 1 end
  return {purged, more, redis.call('ZCARD', QS)}
end
-- unindex: an empty account's index entry may go; writers from now on re-add it.
if redis.call('ZCARD', QS) > 0 then return redis.call('HGET', A, 'rgen') or '0' end
redis.call('HINCRBY', A, 'rgen', 1)
redis.call('HDEL', A, 'idx')
redis.call('DEL', QB)
return false
"""
)

# ARGV: token from `index_token`. Marks the account indexed unless it was
# emptied (and its entry possibly removed) since the token was taken.
CONFIRM_INDEX = (
    PRELUDE
    + """
if (redis.call('HGET', A, 'rgen') or '0') == ARGV[1] and redis.call('ZCARD', QS) > 0 then
  redis.call('HSET', A, 'idx', ARGV[1])
end
return 1
"""
)

# KEYS: the account index, its sequence. ARGV: the account name.
INDEX_ADD = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
end
return 1
"""

# ARGV: qhex, qname. Returns the queue's live messages: visible, in flight (hidden,
# received), delayed (hidden, never received); its bodies' bytes; when its oldest and
# newest live messages (in creation order) were put, in ms (0: none, or not known).
# Counted from the sets' sizes and scores, so a big queue costs no walk; only expired
# messages the sweeper has yet to purge are visited.
COUNT = (
    PRELUDE
    + """
local k, now = qkeys(ARGV[1]), now_ms()
local live = redis.call('ZCARD', k.o)
local hidden = redis.call('ZCOUNT', k.h, '(' .. now, '+inf')
local flying = redis.call('ZCOUNT', k.f, '(' .. now, '+inf')
for _, id in ipairs(redis.call('ZRANGEBYSCORE', k.x, '-inf', now)) do
  live = live - 1
  if score(k.h, id) > now then
    hidden = hidden - 1
    if score(k.f, id) > now then flying = flying - 1 end
  end
end
-- The put time of the first live message from one end (1: the oldest, -1: the newest).
local function end_put(step)
  local at = 0
  if step < 0 then at = -1 end
  while true do
    local ids = redis.call('ZRANGE', k.o, at, at)
    if #ids == 0 then return 0 end
    if not expired(k, ids[1], now) then
      local put = redis.call('HGET', k.m, ids[1]) or ''
      return tonumber(string.match(put, '^(%d+):')) or 0
    end
    at = at + step
  end
end
local bytes = tonumber(redis.call('HGET', QB, ARGV[2]) or '0')
return {live - hidden, flying, hidden - flying, bytes, end_put(1), end_put(-1)}
"""
)

# Queue infos, in the account's slot: `P i` HASH queue name -> info, `P io` ZSET
# queue name -> seq of its first info (the listing's order).
# ARGV: 'get', queue | 'set', queue, info, expected ('' = none, else '=' .. the
# document) | 'delete', queue | 'list', limit (0 = all), marker ('' = none).
INFO = (
    PRELUDE
    + """
local I, IO, mode = P .. 'i', P .. 'io', ARGV[1]
if mode == 'get' then
  return redis.call('HGET', I, ARGV[2])
elseif mode == 'set' then
  local stored = compare_and_set(I, ARGV[2], ARGV[3], ARGV[4])
  if stored == 'new' then redis.call('ZADD', IO, redis.call('HINCRBY', A, 'seq', 1), ARGV[2]) end
  return stored and 1 or 0
elseif mode == 'delete' then
  if redis.call('HDEL', I, ARGV[2]) == 0 then return 0 end
  redis.call('ZREM', IO, ARGV[2])
  return 1
end
return after_marker(IO, ARGV[3], IO, tonumber(ARGV[2]), function() return true end)
"""
)

# Subscriptions, in the account's slot: `P s:<hex q>` HASH name -> document, `P sn:<hex q>`
# ZSET of the names, all scored 0 (so listed by name, in byte order: code point order).
# ARGV: 'get', qhex, name | 'set', qhex, name, document, expected (as INFO's) |
# 'delete', qhex, name | 'list', qhex, limit (0 = all), marker ('' = none).
SUBSCRIPTION = (
    PRELUDE
    + """
local S, SN, mode = P .. 's:' .. ARGV[2], P .. 'sn:' .. ARGV[2], ARGV[1]
if mode == 'get' then
  return redis.call('HGET', S, ARGV[3])
elseif mode == 'set' then
  if not compare_and_set(S, ARGV[3], ARGV[4], ARGV[5]) then return 0 end
  redis.call('ZADD', SN, 0, ARGV[3])
  return 1
elseif mode == 'delete' then
  if redis.call('HDEL', S, ARGV[3]) == 0 then return 0 end
  redis.call('ZREM', SN, ARGV[3])
  return 1
end
local low = '-'
if ARGV[4] ~= '' then low = '(' .. ARGV[4] end
if ARGV[3] == '0' then return redis.call('ZRANGEBYLEX', SN, low, '+') end
return redis.call('ZRANGEBYLEX', SN, low, '+', 'LIMIT', 0, tonumber(ARGV[3]))
"""
)
