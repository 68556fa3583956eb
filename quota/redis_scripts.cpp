// The Lua scripts of the Redis ledger. Every script takes
//   KEYS  = PREFIX{ORG}:log, :gone, :res, :h
//   ARGV  = txn (32 hex), lease_us, a1, a2, nm, nr, then nm + nr pairs (per_us, max):
//           the message windows, then the recipient windows
// (a1/a2: reserve held | charge rcpts | replay at_us, rcpts; unused otherwise) and returns
//   { at_us, kind (0 none, 1 messages, 2 recipients), window index (1-based within its
//     kind), retry_at_us (-1: never / not refused), live reserved, usage of each window... }
// Nothing from the input becomes Lua text. Times are microseconds from the server's TIME;
// Lua doubles hold them exactly (< 2^53), and every number handed to redis.call is
// formatted with %d (Lua's tostring would print 1.7e+15).
//
// Data: log member = %016x cumulative recipients (including this message) .. txn .. ":" ..
// rcpts, scored by charge time; charge times never decrease (clamped to h.last), so equal
// scores sort in insertion order by the cumulative prefix. gone = uncharged members (same
// score). res = txn -> lease expiry. h: cum, last, rsv, c:<txn> -> member, r:<txn> -> held.
#include "quota/redis_scripts.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace cllavio::quota::detail {

namespace {

const char* const kPrelude = R"LUA(
pcall(redis.replicate_commands)
local K_LOG, K_GONE, K_RES, K_H = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local txn = ARGV[1]
local lease_us = tonumber(ARGV[2])
local a1, a2 = tonumber(ARGV[3]), tonumber(ARGV[4])
local nm, nr = tonumber(ARGV[5]), tonumber(ARGV[6])
local wins = {}
local longest = 0
for i = 1, nm + nr do
  local per, mx = tonumber(ARGV[5 + 2 * i]), tonumber(ARGV[6 + 2 * i])
  wins[i] = {per = per, max = mx, rc = i > nm}
  if per > longest then longest = per end
end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])

local function I(n) return string.format('%d', n) end
local function hnum(f) return tonumber(redis.call('HGET', K_H, f) or '0') end
local function m_cum(m) return tonumber(string.sub(m, 1, 16), 16) end
local function m_txn(m) return string.sub(m, 17, 48) end
local function m_rc(m) return tonumber(string.sub(m, 50)) end

-- Leases that ran out and charges no window can see any more.
local function cleanup()
  local ex = redis.call('ZRANGEBYSCORE', K_RES, '-inf', I(now))
  if #ex > 0 then
    local sub = 0
    for _, tx in ipairs(ex) do
      sub = sub + hnum('r:' .. tx)
      redis.call('HDEL', K_H, 'r:' .. tx)
    end
    local rsv = hnum('rsv') - sub
    if rsv < 0 then rsv = 0 end
    redis.call('HSET', K_H, 'rsv', I(rsv))
    redis.call('ZREMRANGEBYSCORE', K_RES, '-inf', I(now))
  end
  if nm + nr == 0 then return end  -- no policy (release, uncharge): the windows are unknown
  local cut = I(now - longest)
  local old = redis.call('ZRANGEBYSCORE', K_LOG, '-inf', cut)
  if #old > 0 then
    for _, m in ipairs(old) do redis.call('HDEL', K_H, 'c:' .. m_txn(m)) end
    redis.call('ZREMRANGEBYSCORE', K_LOG, '-inf', cut)
    redis.call('ZREMRANGEBYSCORE', K_GONE, '-inf', cut)
  end
end

local function live_reserved()
  local rsv = hnum('rsv')
  for _, tx in ipairs(redis.call('ZRANGEBYSCORE', K_RES, '-inf', I(now))) do rsv = rsv - hnum('r:' .. tx) end
  if rsv < 0 then rsv = 0 end
  return rsv
end

local function drop_res(tx)
  local v = redis.call('HGET', K_H, 'r:' .. tx)
  if v then
    local rsv = hnum('rsv') - tonumber(v)
    if rsv < 0 then rsv = 0 end
    redis.call('HSET', K_H, 'rsv', I(rsv))
    redis.call('HDEL', K_H, 'r:' .. tx)
  end
  redis.call('ZREM', K_RES, tx)
end

-- The window (start, +inf): charges after now (a clock that went back) count too.
local function gone_in(start) return redis.call('ZRANGEBYSCORE', K_GONE, '(' .. I(start), '+inf') end
local function msgs(start)
  return redis.call('ZCOUNT', K_LOG, '(' .. I(start), '+inf') - redis.call('ZCOUNT', K_GONE, '(' .. I(start), '+inf')
end
local function rcpts(start)
  local f = redis.call('ZRANGEBYSCORE', K_LOG, '(' .. I(start), '+inf', 'LIMIT', 0, 1)
  if #f == 0 then return 0 end
  local l = redis.call('ZRANGE', K_LOG, -1, -1)
  local n = m_cum(l[1]) - (m_cum(f[1]) - m_rc(f[1]))
  for _, m in ipairs(gone_in(start)) do n = n - m_rc(m) end
  return n
end

-- policy::SlidingLog::fits_at over the live (not uncharged) members: -1 for never.
local function fits_at(rc, start, per, max, need)
  if need > max then return -1 end
  local used
  if rc then used = rcpts(start) else used = msgs(start) end
  if used + need <= max then return now end
  local drop = used + need - max
  local i0 = redis.call('ZCOUNT', K_LOG, '-inf', I(start))
  local n = redis.call('ZCARD', K_LOG)
  local gl = {}
  for _, m in ipairs(gone_in(start)) do
    local r = redis.call('ZRANK', K_LOG, m)
    if r then gl[#gl + 1] = {r, m_rc(m)} end
  end
  table.sort(gl, function(x, y) return x[1] < y[1] end)
  local j
  if not rc then
    j = i0 + drop - 1
    for _, g in ipairs(gl) do
      if g[1] <= j then j = j + 1 else break end
    end
  else
    local f = redis.call('ZRANGE', K_LOG, i0, i0)
    local base = m_cum(f[1]) - m_rc(f[1])
    local function live(r)
      local v = m_cum(redis.call('ZRANGE', K_LOG, r, r)[1]) - base
      for _, g in ipairs(gl) do
        if g[1] <= r then v = v - g[2] else break end
      end
      return v
    end
    local lo, hi = i0, n
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if live(mid) >= drop then hi = mid else lo = mid + 1 end
    end
    j = lo
  end
  if j >= n then return -1 end
  local at = tonumber(redis.call('ZRANGE', K_LOG, j, j, 'WITHSCORES')[2]) + per
  if at < now then at = now end
  return at
end

local function add(tx, t, rc)
  local last = redis.call('HGET', K_H, 'last')
  if last and t < tonumber(last) then t = tonumber(last) end
  local cum = hnum('cum') + rc
  local m = string.format('%016x', cum) .. tx .. ':' .. I(rc)
  redis.call('ZADD', K_LOG, I(t), m)
  redis.call('HSET', K_H, 'cum', I(cum), 'last', I(t), 'c:' .. tx, m)
  return t
end

-- Every key lives the longest window plus the lease after the last write. Without a
-- policy (release, uncharge) a key without a TTL gets the longest TTL of the others.
local function touch()
  if nm + nr > 0 then
    local ms = I(math.floor((longest + lease_us) / 1000) + 1)
    for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ms) end
    return
  end
  local ttl = math.floor(lease_us / 1000) + 1
  for _, k in ipairs(KEYS) do
    local t = redis.call('PTTL', k)
    if t > ttl then ttl = t end
  end
  for _, k in ipairs(KEYS) do
    if redis.call('PTTL', k) == -1 then redis.call('PEXPIRE', k, I(ttl)) end
  end
end

local function reply(at, kind, idx, retry, rsv)
  local r = {at, kind, idx, retry, rsv}
  for i, w in ipairs(wins) do
    if w.rc then r[5 + i] = rcpts(now - w.per) else r[5 + i] = msgs(now - w.per) end
  end
  return r
end
)LUA";

// A late retry of a reserve whose transaction was already charged holds nothing.
const char* const kReserve = R"LUA(
cleanup()
local cur = hnum('r:' .. txn)
local rsv = hnum('rsv')
local kind, idx, retry = 0, 0, -1
local charged = redis.call('HEXISTS', K_H, 'c:' .. txn) == 1
if charged then
  touch()
  return reply(now, 0, 0, -1, rsv)
end
if a1 > cur then
  local need = a1 - cur
  for i, w in ipairs(wins) do
    if w.rc then
      local s = now - w.per
      if rcpts(s) + rsv + need > w.max then
        kind, idx = 2, i - nm
        retry = fits_at(true, s, w.per, w.max, rsv + need)
        break
      end
    end
  end
  if kind == 0 then
    rsv = rsv + need
    redis.call('HSET', K_H, 'r:' .. txn, I(a1), 'rsv', I(rsv))
  end
end
if kind == 0 then redis.call('ZADD', K_RES, I(now + lease_us), txn) end
touch()
return reply(now, kind, idx, retry, rsv)
)LUA";

const char* const kRelease = R"LUA(
cleanup()
drop_res(txn)
touch()
return reply(now, 0, 0, -1, hnum('rsv'))
)LUA";

const char* const kCharge = R"LUA(
cleanup()
local have = redis.call('HGET', K_H, 'c:' .. txn)
if have then
  local sc = redis.call('ZSCORE', K_LOG, have)
  drop_res(txn)
  touch()
  return reply(tonumber(sc) or now, 0, 0, -1, hnum('rsv'))
end
local kind, idx, retry = 0, 0, -1
for i, w in ipairs(wins) do
  if not w.rc then
    local s = now - w.per
    if msgs(s) + 1 > w.max then
      kind, idx = 1, i
      retry = fits_at(false, s, w.per, w.max, 1)
      break
    end
  end
end
local t = now
if kind == 0 then
  t = add(txn, now, a1)
  drop_res(txn)
end
touch()
return reply(t, kind, idx, retry, hnum('rsv'))
)LUA";

const char* const kUncharge = R"LUA(
cleanup()
local m = redis.call('HGET', K_H, 'c:' .. txn)
if m then
  local sc = redis.call('ZSCORE', K_LOG, m)
  if sc and not redis.call('ZSCORE', K_GONE, m) then redis.call('ZADD', K_GONE, sc, m) end
end
touch()
return reply(now, 0, 0, -1, hnum('rsv'))
)LUA";

// A host's time, never later than the ledger's now (a host clock ahead would make the
// charge count longer) and never before the last charge (as a charge).
const char* const kReplay = R"LUA(
cleanup()
local t = now
if not redis.call('HGET', K_H, 'c:' .. txn) then
  local at = a1
  if at > now then at = now end
  t = add(txn, at, a2)
end
touch()
return reply(t, 0, 0, -1, hnum('rsv'))
)LUA";

const char* const kUsage = R"LUA(
return reply(now, 0, 0, -1, live_reserved())
)LUA";

// Forgets the org: the charged messages still kept (not uncharged), then one DEL.
const char* const kReset = R"LUA(
local n = redis.call('ZCARD', KEYS[1]) - redis.call('ZCARD', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return n
)LUA";

std::array<std::string, kOps> build() {
  return {std::string(kPrelude) + kReserve, std::string(kPrelude) + kRelease, std::string(kPrelude) + kCharge,
          std::string(kPrelude) + kUncharge, std::string(kPrelude) + kReplay, std::string(kPrelude) + kUsage,
          std::string(kReset)};
}

}  // namespace

const std::string& script_text(Op op) {
  static const std::array<std::string, kOps> texts = build();
  return texts[static_cast<std::size_t>(op)];
}

std::string sha1_hex(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr) != 1 || len != 20)
    throw std::runtime_error("SHA1 failed");
  static const char* hexd = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += hexd[md[i] >> 4], out += hexd[md[i] & 15];
  return out;
}

}  // namespace cllavio::quota::detail
