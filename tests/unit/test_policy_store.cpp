#define BOOST_TEST_MODULE policy_store
#include <boost/test/unit_test.hpp>

#include "store/policy_store.hpp"
#include "tmpdir.hpp"

using namespace cllavio::store;
using cllavio::policy::Consent;
using cllavio::policy::ConsentState;
using cllavio::test::TmpDir;

namespace {

StoreOptions opts(const TmpDir& dir, bool read_only = false) {
  StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 4;
  o.read_only = read_only;
  o.create = !read_only;
  return o;
}

Consent c(ConsentState s, std::int64_t at, std::string src = "cli") { return Consent{s, at, std::move(src)}; }

}  // namespace

BOOST_AUTO_TEST_CASE(consent_set_read_and_audited) {
  TmpDir dir;
  Store st(opts(dir));
  PolicyStore ps(st);
  BOOST_TEST((ps.consent("acme", "bob@example.net").state == ConsentState::none));
  auto ch = ps.set_consent("acme", "bob@example.net", c(ConsentState::granted, 100), "tester", "consent.grant");
  BOOST_TEST(ch.changed);
  BOOST_TEST((ch.before.state == ConsentState::none));
  BOOST_TEST((ps.consent("acme", "bob@example.net") == c(ConsentState::granted, 100)));
  BOOST_TEST((ps.consent("globex", "bob@example.net").state == ConsentState::none));  // per org
  // The same state again: no change, no audit entry.
  BOOST_TEST(!ps.set_consent("acme", "bob@example.net", c(ConsentState::granted, 200), "tester", "consent.grant").changed);
  ps.set_consent("acme", "bob@example.net", c(ConsentState::unsubscribed, 300, "unsubscribe"), "api", "consent.unsubscribe");
  std::vector<AuditEntry> log;
  ps.scan_audit(0, [&](const AuditEntry& e) {
    log.push_back(e);
    return true;
  });
  BOOST_REQUIRE(log.size() == 2u);
  BOOST_TEST(log[0].action == "consent.grant");
  BOOST_TEST(log[0].from == "none");
  BOOST_TEST(log[0].to == "granted");
  BOOST_TEST(log[1].actor == "api");
  BOOST_TEST(log[1].from == "granted");
  BOOST_TEST(log[1].to == "unsubscribed");
  BOOST_TEST(log[1].source == "unsubscribe");
  BOOST_TEST(log[0].id < log[1].id);
  std::vector<AuditEntry> later;
  ps.scan_audit(static_cast<std::int64_t>(log[1].id), [&](const AuditEntry& e) {
    later.push_back(e);
    return true;
  });
  BOOST_TEST(later.size() == 1u);
}

BOOST_AUTO_TEST_CASE(import_keeps_newer_stored_states_and_exports_per_org) {
  TmpDir dir;
  Store st(opts(dir));
  PolicyStore ps(st);
  ps.set_consent("acme", "late@example.net", c(ConsentState::unsubscribed, 5000), "t", "consent.unsubscribe");
  std::vector<PolicyStore::ImportRow> rows = {
      {"a@example.net", c(ConsentState::granted, 1000, "import")},
      {"late@example.net", c(ConsentState::granted, 1000, "import")},  // older than the unsubscribe: kept
      {"b@example.net", c(ConsentState::revoked, 1000, "import")},
  };
  auto r = ps.import_consent("acme", rows, "t");
  BOOST_TEST(r.changed == 2u);
  BOOST_TEST(r.older == 1u);
  BOOST_TEST(ps.import_consent("acme", rows, "t").unchanged == 2u);
  BOOST_TEST((ps.consent("acme", "late@example.net").state == ConsentState::unsubscribed));
  ps.set_consent("globex", "z@example.net", c(ConsentState::granted, 1), "t", "consent.grant");
  std::vector<std::string> seen;
  ps.scan_consent("acme", [&](const std::string& a, const Consent&) {
    seen.push_back(a);
    return true;
  });
  BOOST_TEST(seen == (std::vector<std::string>{"a@example.net", "b@example.net", "late@example.net"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(quota_events_commit_with_the_record_and_prune_and_reset) {
  TmpDir dir;
  Store st(opts(dir));
  PolicyStore ps(st);
  for (int i = 0; i < 5; ++i) {
    MessageRecord r;
    r.org = "acme";
    r.action = "accept";
    st.append(r, [&](lmdb::Txn& txn) { ps.put_quota_event(txn, "acme", 1000 + i, r.id, 2, 0); });
  }
  auto ev = ps.quota_events("acme", 0);
  BOOST_REQUIRE(ev.size() == 5u);
  BOOST_TEST(ev[0].first == 1000);
  BOOST_TEST(ev[0].second == 2u);
  BOOST_TEST(ps.quota_events("acme", 1003).size() == 2u);
  BOOST_TEST(ps.quota_events("acm", 0).empty());  // org prefixes do not leak into each other
  // A failing record write takes its quota event with it.
  MessageRecord bad;
  bad.org = "acme";
  BOOST_CHECK_THROW(st.append(bad,
                              [&](lmdb::Txn& txn) {
                                ps.put_quota_event(txn, "acme", 2000, 1, 1, 0);
                                throw std::runtime_error("later step failed");
                              }),
                    std::runtime_error);
  BOOST_TEST(ps.quota_events("acme", 0).size() == 5u);
  // Pruning: events before the horizon go as new ones are written.
  MessageRecord r;
  r.org = "acme";
  st.append(r, [&](lmdb::Txn& txn) { ps.put_quota_event(txn, "acme", 3000, r.id, 1, 1003); });
  BOOST_TEST(ps.quota_events("acme", 0).size() == 3u);
  BOOST_TEST(ps.quota_epoch("acme") == 0u);
  BOOST_TEST(ps.reset_quota("acme", "t") == 3u);
  BOOST_TEST(ps.quota_events("acme", 0).empty());
  BOOST_TEST(ps.quota_epoch("acme") == 1u);
  bool audited = false;
  ps.scan_audit(0, [&](const AuditEntry& e) {
    audited = audited || (e.action == "quota.reset" && e.org == "acme");
    return true;
  });
  BOOST_TEST(audited);
}

BOOST_AUTO_TEST_CASE(read_only_open_of_a_store_without_the_tables_reads_empty) {
  TmpDir dir;
  { Store st(opts(dir)); }  // a store written before these tables existed
  Store ro(opts(dir, true));
  PolicyStore ps(ro);
  BOOST_TEST((ps.consent("acme", "a@b.example").state == ConsentState::none));
  BOOST_TEST(ps.quota_events("acme", 0).empty());
  BOOST_CHECK_THROW(ps.set_consent("acme", "a@b.example", c(ConsentState::granted, 1), "t", "x"), lmdb::Error);
}
