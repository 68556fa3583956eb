#include "quota/redis_client.hpp"

#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <chrono>
#include <charconv>

namespace cllavio::quota {

namespace {

bool parse_int(std::string_view s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 6) return false;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::optional<RedisEndpoint> bad(std::string* error, std::string what) {
  if (error) *error = std::move(what);
  return std::nullopt;
}

}  // namespace

std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string* error) {
  RedisEndpoint ep;
  if (url.starts_with("unix:")) {
    std::string_view rest = url.substr(5);
    if (auto q = rest.find('?'); q != std::string_view::npos) {
      std::string_view query = rest.substr(q + 1);
      rest = rest.substr(0, q);
      if (!query.starts_with("db=") || !parse_int(query.substr(3), 0, 65535, &ep.db))
        return bad(error, "expected ?db=N (0..65535) after the socket path");
    }
    if (rest.empty() || rest.front() != '/') return bad(error, "a unix socket path must be absolute: unix:/path");
    ep.unix_path = std::string(rest);
    return ep;
  }
  if (!url.starts_with("redis://")) return bad(error, "expected redis://HOST[:PORT][/DB] or unix:/path[?db=N]");
  std::string_view rest = url.substr(8);
  if (rest.find('@') != std::string_view::npos)
    return bad(error, "no user or password in the URL (the secrets file holds [redis] password)");
  std::string_view hostport = rest, dbpart;
  bool has_db = false;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    dbpart = rest.substr(slash + 1);
    has_db = true;
  }
  std::string_view host, port;
  bool has_port = false;
  if (hostport.starts_with("[")) {
    auto close = hostport.find(']');
    if (close == std::string_view::npos || close == 1) return bad(error, "unclosed or empty [IPv6] address");
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad(error, "expected :PORT after the [IPv6] address");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    auto colon = hostport.find(':');
    if (colon != std::string_view::npos) {
      if (hostport.find(':', colon + 1) != std::string_view::npos)
        return bad(error, "an IPv6 address needs brackets: redis://[::1]:6379/0");
      host = hostport.substr(0, colon);
      port = hostport.substr(colon + 1);
      has_port = true;
    } else {
      host = hostport;
    }
  }
  if (host.empty()) return bad(error, "no host in the URL");
  for (char c : host)
    if (c <= ' ' || c == '?' || c == '#' || c == '[' || c == ']' || c == 0x7f)
      return bad(error, "invalid character in the host");
  if (has_port && !parse_int(port, 1, 65535, &ep.port)) return bad(error, "the port must be 1..65535");
  if (has_db && !dbpart.empty() && !parse_int(dbpart, 0, 65535, &ep.db))
    return bad(error, "the database must be a number 0..65535");
  ep.host = std::string(host);
  return ep;
}

namespace detail {

// ---- RedisConn -------------------------------------------------------------------------

RedisConn::~RedisConn() {
  if (pool_) pool_->give_back(c_, true);
}

RedisConn& RedisConn::operator=(RedisConn&& o) noexcept {
  if (this != &o) {
    if (pool_) pool_->give_back(c_, true);
    pool_ = o.pool_, c_ = o.c_, reused_ = o.reused_;
    o.pool_ = nullptr, o.c_ = nullptr;
  }
  return *this;
}

void RedisConn::discard() noexcept {
  if (pool_) pool_->give_back(c_, false);
  pool_ = nullptr;
  c_ = nullptr;
}

void RedisConn::fail(const std::string& what) {
  std::string where = pool_ ? pool_->where() : std::string("redis");
  discard();
  throw LedgerError(where + ": " + what);
}

ReplyPtr RedisConn::call(const std::vector<std::string_view>& args, bool allow_nil, std::string_view allowed_error) {
  if (!c_) throw LedgerError("redis: no connection");
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) argv.push_back(a.data()), lens.push_back(a.size());
  ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data())));
  std::string cmd(args.empty() ? std::string_view("?") : args.front());
  if (!r || c_->err) {
    std::string e = c_->err ? std::string(c_->errstr) : std::string("no reply");
    bool closed = c_->err == REDIS_ERR_EOF ||
                  (c_->err == REDIS_ERR_IO && (e == std::strerror(ECONNRESET) || e == std::strerror(EPIPE)));
    if (reused_ && closed) {
      std::string where = pool_ ? pool_->where() : std::string("redis");
      RedisPool* pool = pool_;
      discard();
      if (pool) pool->drop_idle();
      throw StaleConnection(where + ": " + cmd + ": " + e + " (a pooled connection was closed)");
    }
    if (c_->err == REDIS_ERR_IO && (e.find("temporarily unavailable") != std::string::npos ||
                                    e.find("timed out") != std::string::npos))
      e = "timeout (" + e + ")";
    fail(cmd + ": " + e);
  }
  if (r->type == REDIS_REPLY_NIL && !allow_nil) fail(cmd + ": unexpected nil reply");
  if (r->type == REDIS_REPLY_ERROR) {
    std::string_view msg(r->str, r->len);
    if (!allowed_error.empty() && msg.starts_with(allowed_error)) return r;
    fail(cmd + ": " + std::string(msg.substr(0, 300)));
  }
  return r;
}

// ---- RedisPool -------------------------------------------------------------------------

RedisPool::RedisPool(RedisEndpoint ep, int timeout_ms, int connect_timeout_ms, int size, std::string password)
    : ep_(std::move(ep)),
      timeout_ms_(timeout_ms > 0 ? timeout_ms : 1),
      connect_timeout_ms_(connect_timeout_ms > 0 ? connect_timeout_ms : 1),
      size_(size > 0 ? size : 1),
      password_(std::move(password)) {
  where_ = ep_.unix_path.empty()
               ? "redis " + (ep_.host.find(':') != std::string::npos ? "[" + ep_.host + "]" : ep_.host) + ":" +
                     std::to_string(ep_.port)
               : "redis unix:" + ep_.unix_path;
}

RedisPool::~RedisPool() {
  std::lock_guard lock(mu_);
  for (redisContext* c : idle_) redisFree(c);
  idle_.clear();
}

static timeval to_tv(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

redisContext* RedisPool::connect() {
  timeval ct = to_tv(connect_timeout_ms_);
  redisContext* c = ep_.unix_path.empty() ? redisConnectWithTimeout(ep_.host.c_str(), ep_.port, ct)
                                          : redisConnectUnixWithTimeout(ep_.unix_path.c_str(), ct);
  if (!c) throw LedgerError(where_ + ": connect: out of memory");
  auto close_and_throw = [&](const std::string& what) {
    redisFree(c);
    throw LedgerError(where_ + ": " + what);
  };
  if (c->err) close_and_throw(std::string("connect: ") + c->errstr);
  if (redisSetTimeout(c, to_tv(timeout_ms_)) != REDIS_OK) close_and_throw("cannot set the socket timeout");
  if (ep_.unix_path.empty() && redisEnableKeepAlive(c) != REDIS_OK) close_and_throw("cannot enable TCP keepalive");
  auto simple = [&](const std::vector<std::string_view>& args, const char* what) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto a : args) argv.push_back(a.data()), lens.push_back(a.size());
    ReplyPtr r(
        static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r || c->err) close_and_throw(std::string(what) + ": " + (c->err ? c->errstr : "no reply"));
    if (r->type == REDIS_REPLY_ERROR) {
      // The server's text never contains the password, but keep it short anyway.
      close_and_throw(std::string(what) + " refused: " + std::string(r->str, std::min<size_t>(r->len, 200)));
    }
  };
  if (!password_.empty()) simple({"AUTH", password_}, "AUTH");
  if (ep_.db != 0) {
    std::string db = std::to_string(ep_.db);
    simple({"SELECT", db}, "SELECT");
  }
  return c;
}

RedisConn RedisPool::checkout() {
  std::unique_lock lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  if (!cv_.wait_until(lock, deadline, [&] { return !idle_.empty() || out_ < size_; }))
    throw LedgerError(where_ + ": no free connection within " + std::to_string(timeout_ms_) + " ms (pool of " +
                      std::to_string(size_) + ")");
  if (!idle_.empty()) {
    redisContext* c = idle_.back();
    idle_.pop_back();
    ++out_;
    return RedisConn(this, c, true);
  }
  ++out_;  // our slot while connecting (without the lock)
  lock.unlock();
  try {
    return RedisConn(this, connect(), false);
  } catch (...) {
    give_back(nullptr, false);
    throw;
  }
}

void RedisPool::drop_idle() noexcept {
  std::vector<redisContext*> idle;
  {
    std::lock_guard lock(mu_);
    idle.swap(idle_);
  }
  for (redisContext* c : idle) redisFree(c);
  cv_.notify_all();
}

void RedisPool::give_back(redisContext* c, bool keep) noexcept {
  {
    std::lock_guard lock(mu_);
    --out_;
    if (c && keep) {
      idle_.push_back(c);
      c = nullptr;
    }
  }
  cv_.notify_one();
  if (c) redisFree(c);
}

}  // namespace detail
}  // namespace cllavio::quota
