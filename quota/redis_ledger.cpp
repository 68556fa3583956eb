// RedisLedger: each operation is one Lua script (quota/redis_scripts.cpp) run with
// EVALSHA on a pooled connection (quota/redis_client.hpp); a server that does not know
// the script (restart, SCRIPT FLUSH, failover) gets it once with EVAL, which caches it.
#include "quota/redis_ledger.hpp"

#include <array>
#include <stdexcept>

#include "quota/redis_client.hpp"
#include "quota/redis_scripts.hpp"

namespace cllavio::quota {

namespace {

constexpr std::int64_t kUs = 1000000;

struct Result {  // a script's reply (quota/redis_scripts.cpp)
  std::int64_t at_us = 0;
  int kind = 0;
  int idx = 0;
  std::int64_t retry = -1;
  std::int64_t reserved = 0;
  std::vector<std::int64_t> usage;
};

}  // namespace

struct RedisLedger::Impl {
  RedisSettings s;
  detail::RedisPool pool;
  std::array<std::string, detail::kOps> sha;

  static RedisEndpoint endpoint(const std::string& url) {
    std::string err;
    auto ep = parse_redis_url(url, &err);
    if (!ep) throw std::invalid_argument("redis url: " + err);
    return *ep;
  }

  explicit Impl(RedisSettings settings)
      : s(std::move(settings)),
        pool(endpoint(s.url), s.timeout_ms, s.connect_timeout_ms, s.pool_size, s.password) {
    for (int i = 0; i < detail::kOps; ++i) sha[i] = detail::sha1_hex(detail::script_text(static_cast<detail::Op>(i)));
  }

  std::string key(const std::string& org, std::string_view which) const {
    return s.key_prefix + "{" + org + "}:" + std::string(which);
  }

  // Runs a script; the reply is an integer or an array of integers, else LedgerError.
  detail::ReplyPtr run(detail::Op op, const std::string& org, const std::vector<std::string>& argv) {
    std::array<std::string, 4> keys{key(org, "log"), key(org, "gone"), key(org, "res"), key(org, "h")};
    std::vector<std::string_view> args{"EVALSHA", sha[static_cast<int>(op)], "4"};
    for (const auto& k : keys) args.push_back(k);
    for (const auto& a : argv) args.push_back(a);
    detail::RedisConn conn = pool.checkout();
    detail::ReplyPtr r;
    try {
      r = conn.call(args, false, "NOSCRIPT");
    } catch (const detail::StaleConnection&) {
      // Closed while idle (a restart, a server or NAT idle timeout): the scripts are
      // idempotent per transaction, so once more on a new connection.
      conn = pool.checkout();
      r = conn.call(args, false, "NOSCRIPT");
    }
    if (r->type == REDIS_REPLY_ERROR) {  // NOSCRIPT: EVAL loads it into the script cache
      args[0] = "EVAL";
      args[1] = detail::script_text(op);
      r = conn.call(args);
    }
    bool ok = r->type == REDIS_REPLY_INTEGER;
    if (r->type == REDIS_REPLY_ARRAY) {
      ok = r->elements >= 5;
      for (size_t i = 0; ok && i < r->elements; ++i) ok = r->element[i]->type == REDIS_REPLY_INTEGER;
    }
    if (!ok) conn.fail("unexpected reply from the ledger script");
    return r;
  }

  Result call(detail::Op op, const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy* p,
              std::int64_t a1 = 0, std::int64_t a2 = 0) {
    std::vector<std::string> argv{txn.hex(), std::to_string(std::int64_t{s.lease_s} * kUs), std::to_string(a1),
                                  std::to_string(a2)};
    std::size_t nw = 0;
    argv.push_back(std::to_string(p ? p->messages.size() : 0));
    argv.push_back(std::to_string(p ? p->recipients.size() : 0));
    if (p) {
      for (const auto* ws : {&p->messages, &p->recipients})
        for (const auto& w : *ws) {
          argv.push_back(std::to_string(w.per_s * kUs));
          argv.push_back(std::to_string(w.max));
          ++nw;
        }
    }
    detail::ReplyPtr r = run(op, org, argv);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 + nw)
      throw LedgerError(pool.where() + ": the ledger script answered " + std::to_string(r->elements) +
                        " values for " + std::to_string(nw) + " windows");
    Result out;
    out.at_us = r->element[0]->integer;
    out.kind = static_cast<int>(r->element[1]->integer);
    out.idx = static_cast<int>(r->element[2]->integer);
    out.retry = r->element[3]->integer;
    out.reserved = r->element[4]->integer;
    for (std::size_t i = 0; i < nw; ++i) out.usage.push_back(r->element[5 + i]->integer);
    return out;
  }

  LedgerReply to_reply(const Result& r, const policy::QuotaPolicy& p) {
    LedgerReply out;
    out.at_us = r.at_us;
    std::size_t i = 0;
    for (const auto& w : p.messages) out.usage.push_back({false, w, static_cast<std::uint64_t>(r.usage[i++])});
    for (const auto& w : p.recipients) out.usage.push_back({true, w, static_cast<std::uint64_t>(r.usage[i++])});
    if (r.kind != 0) {
      const auto& ws = r.kind == 2 ? p.recipients : p.messages;
      if (r.idx < 1 || static_cast<std::size_t>(r.idx) > ws.size())
        throw LedgerError(pool.where() + ": the ledger script named no window of the policy");
      policy::QuotaRefusal ref;
      ref.recipients = r.kind == 2;
      ref.window = ws[static_cast<std::size_t>(r.idx - 1)];
      if (r.retry >= 0) ref.retry_at_us = r.retry;
      out.refused = ref;
    }
    return out;
  }
};

RedisLedger::RedisLedger(RedisSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {}
RedisLedger::~RedisLedger() = default;

const RedisSettings& RedisLedger::settings() const { return impl_->s; }

std::string RedisLedger::key(const std::string& org, std::string_view which) const { return impl_->key(org, which); }

LedgerReply RedisLedger::reserve(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p,
                                 std::uint64_t held) {
  if (held > (std::uint64_t{1} << 40)) throw std::invalid_argument("reserve: held out of range");
  return impl_->to_reply(impl_->call(detail::Op::reserve, txn, org, &p, static_cast<std::int64_t>(held)), p);
}

void RedisLedger::release(const core::TxnId& txn, const std::string& org) {
  impl_->call(detail::Op::release, txn, org, nullptr);
}

LedgerReply RedisLedger::charge(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p,
                                std::uint64_t rcpts) {
  if (rcpts > (std::uint64_t{1} << 40)) throw std::invalid_argument("charge: rcpts out of range");
  return impl_->to_reply(impl_->call(detail::Op::charge, txn, org, &p, static_cast<std::int64_t>(rcpts)), p);
}

void RedisLedger::uncharge(const core::TxnId& txn, const std::string& org) {
  if (txn.empty()) return;  // a charge recorded without its transaction: nothing to find
  impl_->call(detail::Op::uncharge, txn, org, nullptr);
}

void RedisLedger::replay(const core::TxnId& txn, const std::string& org, const policy::QuotaPolicy& p,
                         std::int64_t at_us, std::uint64_t rcpts) {
  if (rcpts > (std::uint64_t{1} << 40)) throw std::invalid_argument("replay: rcpts out of range");
  impl_->call(detail::Op::replay, txn, org, &p, at_us, static_cast<std::int64_t>(rcpts));
}

std::vector<policy::WindowUsage> RedisLedger::usage(const std::string& org, const policy::QuotaPolicy& p,
                                                    std::uint64_t* reserved) {
  Result r = impl_->call(detail::Op::usage, core::TxnId{}, org, &p);
  if (reserved) *reserved = static_cast<std::uint64_t>(r.reserved);
  return impl_->to_reply(r, p).usage;
}

std::uint64_t RedisLedger::reset(const std::string& org) {
  detail::ReplyPtr r = impl_->run(detail::Op::reset, org, {});
  if (r->type != REDIS_REPLY_INTEGER) throw LedgerError(impl_->pool.where() + ": unexpected reply to reset");
  return static_cast<std::uint64_t>(r->integer < 0 ? 0 : r->integer);
}

std::string RedisLedger::config_get(const std::string& name) {
  detail::RedisConn conn = impl_->pool.checkout();
  detail::ReplyPtr r = conn.call({"CONFIG", "GET", name});
  // RESP2: a flat array [name, value]; an unknown parameter gives an empty array.
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING)
    conn.fail("CONFIG GET " + name + ": no such parameter");
  return std::string(r->element[1]->str, r->element[1]->len);
}

void RedisLedger::ping() {
  detail::RedisConn conn = impl_->pool.checkout();
  detail::ReplyPtr r;
  try {
    r = conn.call({"PING"});
  } catch (const detail::StaleConnection&) {
    conn = impl_->pool.checkout();
    r = conn.call({"PING"});
  }
  if (r->type != REDIS_REPLY_STATUS || std::string_view(r->str, r->len) != "PONG") conn.fail("PING: unexpected reply");
}

}  // namespace cllavio::quota
