#include "quota/redis_client.hpp"

#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "conf/redis_url.hpp"

namespace cllavio::quota {

// One URL parser (conf/redis_url.hpp, which the config schema uses too).
std::optional<RedisEndpoint> parse_redis_url(std::string_view url, std::string* error) {
  auto ep = conf::parse_redis_url(url, error);
  if (!ep) return std::nullopt;
  return RedisEndpoint{ep->host, ep->port, ep->unix_path, ep->db};
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
