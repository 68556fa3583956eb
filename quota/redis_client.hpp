// Internal to the Redis ledger: a bounded pool of hiredis connections and one call on a
// checked-out connection (quota/redis_ledger.hpp is the public side).
//
// Contract: RedisPool is thread-safe; a redisContext is used by one thread at a time
// (checked out). checkout() waits at most timeout_ms for a free slot, then connects
// lazily (connect_timeout_ms; TCP keepalive; AUTH and SELECT on connect) and sets the
// socket timeouts to timeout_ms. Any failure throws LedgerError (never with the password
// in it) and discards the connection: a context that saw an error is never reused.
// Host names are resolved by getaddrinfo at every connect attempt, which the timeouts do
// not cover: configure an IP address (or a unix socket) where the timeout matters.
#pragma once

#include <hiredis/hiredis.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "quota/redis_ledger.hpp"

namespace cllavio::quota::detail {

struct ReplyFree {
  void operator()(redisReply* r) const noexcept {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

class RedisPool;

// A connection taken from the idle list was closed under us (EOF or reset before any
// reply: a server restart, its idle timeout, a NAT): every script is idempotent, so
// the caller may run the call once more on a new connection.
struct StaleConnection : LedgerError {
  using LedgerError::LedgerError;
};

// One checked-out connection: back to the pool when it leaves scope, unless discarded.
class RedisConn {
 public:
  RedisConn(RedisPool* pool, redisContext* c, bool reused) : pool_(pool), c_(c), reused_(reused) {}
  RedisConn(RedisConn&& o) noexcept : pool_(o.pool_), c_(o.c_), reused_(o.reused_) {
    o.pool_ = nullptr, o.c_ = nullptr;
  }
  RedisConn(const RedisConn&) = delete;
  RedisConn& operator=(const RedisConn&) = delete;
  RedisConn& operator=(RedisConn&& o) noexcept;
  ~RedisConn();

  // One command; the reply (never null). Throws LedgerError on I/O errors, on a nil reply
  // unless allow_nil, and on an error reply unless it starts with allowed_error (e.g.
  // "NOSCRIPT"); then the connection is discarded first. StaleConnection when a reused
  // connection was found closed (not on a timeout); the pool's idle ones are dropped too.
  ReplyPtr call(const std::vector<std::string_view>& args, bool allow_nil = false,
                std::string_view allowed_error = {});
  // Closes the connection for good (the pool makes a new one next time).
  void discard() noexcept;
  [[noreturn]] void fail(const std::string& what);  // discard, then throw LedgerError
  bool reused() const { return reused_; }

 private:
  RedisPool* pool_;
  redisContext* c_;
  bool reused_;
};

class RedisPool {
 public:
  RedisPool(RedisEndpoint ep, int timeout_ms, int connect_timeout_ms, int size, std::string password);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  RedisConn checkout();
  const std::string& where() const { return where_; }  // "redis 127.0.0.1:6379" for messages

 private:
  friend class RedisConn;
  redisContext* connect();  // a new, authenticated, selected context, or throws
  void give_back(redisContext* c, bool keep) noexcept;
  void drop_idle() noexcept;  // after a stale connection: the others are likely stale too

  RedisEndpoint ep_;
  int timeout_ms_, connect_timeout_ms_, size_;
  std::string password_;
  std::string where_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<redisContext*> idle_;
  int out_ = 0;  // slots checked out (connected or about to connect)
};

}  // namespace cllavio::quota::detail
