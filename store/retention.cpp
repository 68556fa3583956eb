// Retention: the pruner's unit of work (prune_step) and a whole run (prune).
#include "store/retention.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/db.hpp"
#include "store/keys.hpp"

namespace cllavio::store {

policy::Retention RetentionRules::shortest() const {
  policy::Retention r = defaults;
  for (const auto& [org, o] : orgs) {
    r.messages_s = std::min(r.messages_s, o.messages_s);
    r.audit_s = std::min(r.audit_s, o.audit_s);
    r.dead_letters_s = std::min(r.dead_letters_s, o.dead_letters_s);
    r.rejects_s = std::min(r.rejects_s, o.rejects_s);
  }
  return r;
}

PruneCounts& PruneCounts::operator+=(const PruneCounts& o) {
  messages += o.messages;
  rejects += o.rejects;
  delivery_states += o.delivery_states;
  audit += o.audit;
  dead_letters += o.dead_letters;
  chains += o.chains;
  expiries += o.expiries;
  return *this;
}

namespace {

constexpr std::int64_t kUsPerS = 1'000'000;

// The first microsecond that is still kept: everything strictly older goes.
std::int64_t cutoff(std::int64_t now_us, std::int64_t keep_s) { return now_us - keep_s * kUsPerS; }

// Where the table walks of one run stand (prune() carries it from step to step, so each
// run reads each table at most once; a lone prune_step starts from the beginning).
struct Resume {
  std::string audit, dead, chain, expiry;  // the next key to look at ("" = the first)
  bool audit_done = false, dead_done = false, chain_done = false, expiry_done = false;
};

// Entries a step may look at without removing them (kept ones), per table walk.
std::size_t scan_bound(std::size_t max_entries) { return std::max<std::size_t>(max_entries * 16, 4096); }

std::string after(std::string_view key) {
  std::string k(key);
  k.push_back('\0');  // the smallest key greater than `key`
  return k;
}

class Step {
 public:
  Step(Tables& t, const RetentionRules& rules, std::int64_t now_us, std::size_t max_entries, Resume& r)
      : t_(t), h_(t.handles), rules_(rules), now_(now_us), budget_(std::max<std::size_t>(max_entries, 1)), r_(r) {}

  PruneStep run() {
    records();
    if (!out_.more) audit();
    if (!out_.more) dead_letters();
    if (!out_.more) chains();
    if (!out_.more) expiries();
    return out_;
  }

 private:
  bool spent() const { return used_ >= budget_; }

  std::size_t delivery_states_of(std::uint64_t id) {
    if (h_.delivery == 0) return 0;
    std::size_t n = 0;
    auto k = lmdb::be64(id);
    for (const auto& e : lmdb::prefix_range(t_.txn, h_.delivery, std::string(lmdb::view(k)))) {
      (void)e;
      ++n;
    }
    return n;
  }

  // Records per (org, kind) of the retention index, oldest first: one seek per pair.
  void records() {
    if (h_.by_org == 0) return;
    std::string seek;  // "" = the first key
    for (;;) {
      std::string org;
      char kind = 0;
      {
        lmdb::Cursor cur(t_.txn, h_.by_org);
        MDB_val k = lmdb::val(seek), v{};
        if (!cur.get(k, v, seek.empty() ? MDB_FIRST : MDB_SET_RANGE)) return;
        std::string_view key = lmdb::view(k);
        std::size_t nul = key.find('\0');
        if (nul == std::string_view::npos || nul + 1 >= key.size()) {  // not an index key: skip it
          seek = after(key);
          continue;
        }
        org.assign(key.substr(0, nul));
        kind = key[nul + 1];
      }
      std::string prefix = keys::by_org_prefix(org, kind);
      seek = prefix;
      seek.back() = static_cast<char>(kind + 1);  // the first key after this pair's
      if (kind != keys::accepted && kind != keys::refused) continue;
      const policy::Retention& ret = rules_.of(org);
      const auto limit = cutoff(now_, kind == keys::accepted ? ret.messages_s : ret.rejects_s);

      // The ids due in this pair, at most one more than the budget left (each costs >= 1).
      std::vector<std::uint64_t> due;
      bool beyond = false;
      for (const auto& e : lmdb::prefix_range(t_.txn, h_.by_org, prefix)) {
        if (e.suffix().size() != 8) continue;
        std::uint64_t id = lmdb::from_be64(e.suffix());
        if (static_cast<std::int64_t>(id) >= limit) break;
        if (due.size() >= budget_ - used_) {
          beyond = true;
          break;
        }
        due.push_back(id);
      }
      for (std::uint64_t id : due) {
        std::size_t states = delivery_states_of(id);
        // A record with more states than a whole step still goes (alone), or it never would.
        if (used_ > 0 && used_ + 1 + states > budget_) {
          out_.more = true;
          return;
        }
        auto rec = t_.records.remove(id);
        if (!rec) {  // an index entry without its record: drop the entry
          lmdb::del(t_.txn, h_.by_org, keys::by_org(org, kind, id));
          ++used_;
          continue;
        }
        std::size_t forgotten = t_.delivery.forget(id);
        (kind == keys::accepted ? out_.removed.messages : out_.removed.rejects) += 1;
        out_.removed.delivery_states += forgotten;
        used_ += 1 + forgotten;
      }
      if (beyond || spent()) {
        // More of this pair may be due; later pairs were not looked at.
        out_.more = true;
        return;
      }
    }
  }

  // A walk over a whole table from the resume key: `visit` returns whether it removed the
  // entry (the entry is removed through the walk's cursor). Bounded by the budget (removed)
  // and scan_bound (looked at); stops early when `stop` says so (keys in time order).
  template <class Visit>
  void walk(MDB_dbi dbi, std::string& resume, bool& done, Visit visit) {
    if (dbi == 0 || done) return;
    std::size_t looked = 0;
    for (const auto& e : lmdb::prefix_range(t_.txn, dbi, "", resume)) {
      if (spent() || looked >= scan_bound(budget_)) {
        resume.assign(e.key);
        out_.more = true;
        return;
      }
      ++looked;
      int r = visit(e);
      if (r < 0) {  // nothing further can be due
        done = true;
        return;
      }
      if (r > 0) {
        e.erase();
        ++used_;
      }
    }
    done = true;
  }

  void audit() {
    const auto oldest_limit = cutoff(now_, rules_.shortest().audit_s);
    walk(h_.audit, r_.audit, r_.audit_done, [&](const lmdb::PrefixRange::Entry& e) {
      if (e.key.size() != 8) return 0;
      auto id = static_cast<std::int64_t>(lmdb::from_be64(e.key));
      if (id >= oldest_limit) return -1;  // ids are times: nothing later is due for anyone
      std::string org;
      auto j = nlohmann::json::from_cbor(e.value.begin(), e.value.end(), true, false);
      if (!j.is_discarded() && j.is_object()) org = j.value("org", std::string());
      if (id >= cutoff(now_, rules_.of(org).audit_s)) return 0;
      ++out_.removed.audit;
      return 1;
    });
  }

  void dead_letters() {
    walk(h_.outbox_dead, r_.dead, r_.dead_done, [&](const lmdb::PrefixRange::Entry& e) {
      auto j = nlohmann::json::from_cbor(e.value.begin(), e.value.end(), true, false);
      if (j.is_discarded() || !j.is_object()) return 0;
      std::string org = j.value("org", std::string());
      std::int64_t at = j.value("at", std::int64_t{0});
      if (at >= cutoff(now_, rules_.of(org).dead_letters_s)) return 0;
      ++out_.removed.dead_letters;
      return 1;
    });
  }

  void chains() {
    walk(h_.delivery_chain, r_.chain, r_.chain_done, [&](const lmdb::PrefixRange::Entry& e) {
      if (e.value.size() != 8) return 0;
      std::string_view rec;
      if (lmdb::get(t_.txn, h_.messages, e.value, rec)) return 0;
      ++out_.removed.chains;
      return 1;
    });
  }

  void expiries() {
    walk(h_.delivery_expiries, r_.expiry, r_.expiry_done, [&](const lmdb::PrefixRange::Entry& e) {
      std::size_t nul = e.key.find('\0');
      if (nul == std::string_view::npos) return 0;
      std::string org(e.key.substr(0, nul));
      std::int64_t newest = 0;
      for (std::size_t i = 0; i + 8 <= e.value.size(); i += 8)
        newest = std::max(newest, static_cast<std::int64_t>(lmdb::from_be64(e.value.substr(i, 8))));
      if (newest >= cutoff(now_, rules_.of(org).messages_s)) return 0;
      ++out_.removed.expiries;
      return 1;
    });
  }

  Tables& t_;
  const Handles& h_;
  const RetentionRules& rules_;
  std::int64_t now_;
  std::size_t budget_;
  std::size_t used_ = 0;
  Resume& r_;
  PruneStep out_;
};

std::string status_json(std::int64_t now_us, const PruneRun& run) {
  const PruneCounts& c = run.removed;
  nlohmann::ordered_json j;
  j["at"] = now_us;
  j["removed"] = {{"messages", c.messages},         {"rejects", c.rejects}, {"delivery_states", c.delivery_states},
                  {"audit", c.audit},               {"dead_letters", c.dead_letters},
                  {"chains", c.chains},             {"expiries", c.expiries}, {"total", c.total()}};
  j["transactions"] = run.transactions;
  j["elapsed_ms"] = static_cast<double>(run.elapsed_us) / 1000.0;
  j["longest_txn_ms"] = static_cast<double>(run.longest_txn_us) / 1000.0;
  return j.dump();
}

}  // namespace

PruneStep prune_step(Tables& t, const RetentionRules& rules, std::int64_t now_us, std::size_t max_entries) {
  Resume fresh;
  return Step(t, rules, now_us, max_entries, fresh).run();
}

PruneRun prune(Db& db, const RetentionRules& rules, std::int64_t now_us, std::size_t max_entries_per_txn,
               std::size_t max_steps) {
  using clock = std::chrono::steady_clock;
  auto us = [](clock::duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  PruneRun run;
  Resume resume;
  const auto start = clock::now();
  for (std::size_t i = 0; i < std::max<std::size_t>(max_steps, 1); ++i) {
    bool more = false;
    db.write([&](Tables& t) {
      const auto t0 = clock::now();
      Resume r = resume;  // a step that throws leaves the walk where it was
      PruneStep s = Step(t, rules, now_us, max_entries_per_txn, r).run();
      more = s.more && i + 1 < max_steps;
      if (!more) {  // the last step: the run's summary commits with it
        PruneRun last = run;
        last.removed += s.removed;
        last.transactions += 1;
        last.longest_txn_us = std::max(last.longest_txn_us, us(clock::now() - t0));
        last.elapsed_us = us(clock::now() - start);
        t.meta.put(keys::kPruneStatus, status_json(now_us, last));
      }
      // Written only once the piece ran to its end (a throw above leaves the run as it was).
      resume = std::move(r);
      run.removed += s.removed;
      run.longest_txn_us = std::max(run.longest_txn_us, us(clock::now() - t0));
    });
    run.transactions += 1;
    if (!more) break;
  }
  run.elapsed_us = us(clock::now() - start);
  return run;
}

}  // namespace cllavio::store
