#define BOOST_TEST_MODULE erase
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/erasure.hpp"
#include "core/event.hpp"
#include "store/db.hpp"
#include "store/erase.hpp"
#include "tmpdir.hpp"

// store/erase.cpp and core/erasure.cpp: everything naming one address goes.

using namespace cllavio::store;
using cllavio::policy::Consent;
using cllavio::policy::ConsentState;
using cllavio::test::TmpDir;


namespace {

const std::string kRaw = "<bob.erase@EXAMPLE.NET>";
const std::string kAddr = "bob.erase@example.net";
const std::string kAlice = "alice@example.org";
constexpr std::uint64_t kMax = 1 << 20;

StoreOptions opts(const TmpDir& dir) {
  StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 8;
  return o;
}

struct Seeded {
  std::uint64_t only = 0, edited = 0, sender = 0, beta = 0, noorg = 0;
};

MessageRecord rec(Db& db, const std::string& org, const std::string& q, const std::string& from,
                  std::vector<std::string> rcpts) {
  MessageRecord r;
  r.id = db.allocate_id();
  r.org = org;
  r.queue_id = q;
  r.sender = from;
  r.recipients = std::move(rcpts);
  r.recipient_count = r.recipients.size();
  r.action = "accept";
  return r;
}

Seeded seed(Db& db) {
  Seeded s;
  auto r1 = rec(db, "acme", "Q1", "news@acme.example", {kRaw});
  auto r2 = rec(db, "acme", "Q2", "news@acme.example", {kAlice, kRaw});
  r2.suppressed = {kAddr};
  r2.sasl_login = kAddr;
  auto r3 = rec(db, "acme", "Q3", kRaw, {"carol@example.org"});
  auto r4 = rec(db, "beta", "Q4", "news@beta.example", {kRaw});
  auto r5 = rec(db, "", "Q5", "x@nowhere.example", {kRaw});
  s = {r1.id, r2.id, r3.id, r4.id, r5.id};
  DeliveryState st{"delivered", 0, "2.0.0", "250 ok <" + kAddr + ">", "mx", 1.0, 1, "Q1"};
  DeliveryState other{"delivered", 0, "2.0.0", "250 ok", "mx", 1.0, 1, "Q2"};
  db.write([&](Tables& t) {
    for (auto* r : {&r1, &r2, &r3, &r4, &r5}) t.records.append(*r);
    t.delivery.put(r1.id, kRaw, st);
    t.delivery.put(r2.id, kRaw, st);
    t.delivery.put(r2.id, kAlice, other);
    t.delivery.put(r4.id, kRaw, st);
    t.delivery.chain("NQ1", kRaw, r1.id);
    t.delivery.chain("NQ1", kAlice, r2.id);
    t.delivery.chain("NQ4", kRaw, r4.id);
    t.delivery.expired("acme", kAddr, 5, 0, 5);
    t.delivery.expired("beta", kAddr, 5, 0, 5);
    t.delivery.expired("acme", kAlice, 5, 0, 5);
    t.delivery.pend(1, 1, "postfix/smtp[1]: Q9: to=<Bob.Erase@Example.NET>, status=deferred");
    t.delivery.pend(2, 1, "postfix/smtp[1]: Q8: to=<alice@example.org>, status=deferred");
    t.consent.set("acme", kAddr, Consent{ConsentState::unsubscribed, 1, "cli"}, "t", "consent.unsubscribe");
    t.consent.set("beta", kAddr, Consent{ConsentState::bounced, 1, "bounce"}, "t", "consent.bounce");
    t.consent.set("gamma", kAddr, Consent{ConsentState::granted, 1, "cli"}, "t", "consent.grant");
    t.consent.set("acme", kAlice, Consent{ConsentState::granted, 1, "cli"}, "t", "consent.grant");
    t.audit.append(AuditEntry{0, 0, "t", "consent.import", "acme", "", "", "", "import", "bad line " + kRaw});
    t.audit.append(AuditEntry{0, 0, "t", "quota.reset", "acme", "", "", "", "cli", "removed 3"});
    // outbox: sole recipient (dropped), a list (rewritten), unrelated (kept), beta's
    t.outbox.put("acme", cllavio::core::to_text(*cllavio::core::from_record(r1)), kMax);
    t.outbox.put("acme", cllavio::core::to_text(*cllavio::core::from_record(r2)), kMax);
    t.outbox.put("acme", cllavio::core::to_text(*cllavio::core::from_record(r3)), kMax);
    auto unrelated = rec(db, "acme", "Q6", "news@acme.example", {kAlice});
    t.outbox.put("acme", cllavio::core::to_text(*cllavio::core::from_record(unrelated)), kMax);
    t.outbox.put("beta", cllavio::core::to_text(*cllavio::core::from_record(r4)), kMax);
    // dead letters: one about it alone, one listing it beside alice
    auto items = t.outbox.peek("acme", 2, kMax);
    for (const auto& it : items) t.outbox.bury(it, "422 refused");
  });
  return s;
}

std::uint64_t outbox_sum(const Db& db) {
  std::uint64_t n = 0;
  for (const auto& it : db.read()->outbox.list(false, 1000)) n += it.json.size() + 8;
  return n;
}

bool names(const std::string& s) {
  std::string l = s;
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return l.find(kAddr) != std::string::npos;
}

EraseReport erase(Db& db, std::vector<std::string> orgs, bool all = false) {
  EraseReport r;
  EraseRequest req{kRaw, std::move(orgs), all, "cllavioctl (uid 0)", "cli"};
  db.write([&](Tables& t) { r = erase_address(t, req); });
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(erase_in_one_org) {
  TmpDir dir;
  Db db(opts(dir));
  Seeded s = seed(db);
  // dead letters are the first two acme events (r1 alone, r2 with alice)
  BOOST_REQUIRE_EQUAL(db.read()->outbox.list(true, 10).size(), 2u);
  auto r = erase(db, {"acme"});
  BOOST_TEST(r.address == kAddr);
  BOOST_TEST(r.records_deleted == 2u);  // only recipient, sender
  BOOST_TEST(r.records_edited == 1u);
  BOOST_TEST(r.delivery_states == 2u);
  BOOST_TEST(r.consent_rows == 1u);
  BOOST_TEST(r.tombstones == 1u);
  BOOST_TEST(r.chains == 1u);
  BOOST_TEST(r.expiries == 1u);
  BOOST_TEST(r.pending_lines == 1u);
  BOOST_TEST(r.events_dropped == 1u);  // r3's (sender)
  BOOST_TEST(r.events_edited == 0u);
  BOOST_TEST(r.dead_letters == 2u);
  BOOST_TEST(r.orgs == std::vector<std::string>{"acme"});

  auto v = db.read();
  // records
  BOOST_TEST(!v->records.get(s.only));
  BOOST_TEST(!v->records.get(s.sender));
  BOOST_TEST(v->records.ids_by_queue_id("Q1").empty());
  auto e = v->records.get(s.edited);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->recipients == std::vector<std::string>{kAlice});
  BOOST_TEST(e->suppressed.empty());
  BOOST_TEST(e->sasl_login.empty());
  BOOST_TEST(e->recipient_count == 2u);
  auto idx = v->records.by_address(kAddr);
  std::vector<std::uint64_t> ids;
  for (auto& [id, roles] : idx) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  BOOST_TEST(ids == (std::vector<std::uint64_t>{s.beta, s.noorg}));  // other orgs' records stay
  bool alice_indexed = false;
  for (auto& [id, roles] : v->records.by_address(kAlice)) alice_indexed |= id == s.edited;
  BOOST_TEST(alice_indexed);
  // delivery
  BOOST_TEST(v->delivery.of(s.only).empty());
  BOOST_TEST(!v->delivery.get(s.edited, kAddr));
  BOOST_TEST(v->delivery.get(s.edited, kAlice).has_value());
  BOOST_TEST(v->delivery.get(s.beta, kAddr).has_value());
  BOOST_TEST(!v->delivery.chained("NQ1", kAddr));
  BOOST_TEST(v->delivery.chained("NQ1", kAlice).has_value());
  BOOST_TEST(v->delivery.chained("NQ4", kAddr).has_value());
  auto pend = v->delivery.pending();
  BOOST_REQUIRE_EQUAL(pend.size(), 1u);
  BOOST_TEST(pend[0].seq == 2u);
  // consent: row gone, tombstone keeps it unsubscribed; other addresses none
  BOOST_CHECK(v->consent.get("acme", kAddr).state == ConsentState::unsubscribed);
  bool row = false;
  v->consent.scan("acme", [&](const std::string& a, const Consent&) {
    row |= a == kAddr;
    return true;
  });
  BOOST_TEST(!row);
  BOOST_CHECK(v->consent.get("acme", "someone@example.net").state == ConsentState::none);
  BOOST_CHECK(v->consent.get("beta", kAddr).state == ConsentState::bounced);  // beta's row untouched
  // audit: acme entries naming it gone, the erasure's entry has the hash only
  std::size_t erasures = 0;
  v->audit.scan(0, [&](const AuditEntry& a) {
    if (a.org == "acme") BOOST_TEST(!names(a.address + a.detail));
    if (a.action == "subject.erase") {
      ++erasures;
      BOOST_TEST(a.address.empty());
      BOOST_TEST(a.detail.find("hash=" + r.hash_hex) == 0u);
      BOOST_TEST(a.actor == "cllavioctl (uid 0)");
      BOOST_TEST(a.source == "cli");
    }
    return true;
  });
  BOOST_TEST(erasures == 1u);
  // outbox and dead letters
  for (const auto& it : v->outbox.list(false, 100))
    if (it.org == "acme") BOOST_TEST(!names(it.json));
  BOOST_TEST(v->outbox.list(false, 100).size() == 2u);  // the unrelated one, beta's
  BOOST_TEST(v->outbox.stats().queued_bytes == outbox_sum(db));
  auto dead = v->outbox.list(true, 10);
  BOOST_REQUIRE_EQUAL(dead.size(), 1u);  // r1's dropped, r2's rewritten
  BOOST_TEST(!names(dead[0].json));
  BOOST_TEST(dead[0].json.find(kAlice) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(outbox_list_rewritten_and_bytes) {
  TmpDir dir;
  Db db(opts(dir));
  auto r2 = rec(db, "acme", "Q2", "news@acme.example", {kAlice, kRaw});
  auto r1 = rec(db, "acme", "Q1", "news@acme.example", {kRaw});
  db.write([&](Tables& t) {
    t.outbox.put("acme", cllavio::core::to_text(*cllavio::core::from_record(r2)), kMax);
    t.outbox.put("acme", cllavio::core::to_text(*cllavio::core::from_record(r1)), kMax);
  });
  auto other = rec(db, "acme", "Q7", "jim" + kAddr, {kAddr + ".example"});  // longer addresses, not it
  db.write([&](Tables& t) {
    t.outbox.put("acme", cllavio::core::to_text(*cllavio::core::from_record(other)), kMax);
    t.delivery.pend(1, 1, "to=<jim" + kAddr + ">, status=sent");
  });
  auto r = erase(db, {"acme"});
  BOOST_TEST(r.events_edited == 1u);
  BOOST_TEST(r.events_dropped == 1u);
  BOOST_TEST(r.pending_lines == 0u);
  auto v = db.read();
  auto items = v->outbox.list(false, 10);
  BOOST_REQUIRE_EQUAL(items.size(), 2u);
  BOOST_TEST(!names(items[0].json));
  BOOST_TEST(items[0].json.find(kAlice) != std::string::npos);
  BOOST_TEST(v->outbox.stats().queued_bytes == outbox_sum(db));
}

BOOST_AUTO_TEST_CASE(all_orgs_and_tombstones) {
  TmpDir dir;
  Db db(opts(dir));
  Seeded s = seed(db);
  auto r = erase(db, {}, true);
  BOOST_TEST(r.orgs == (std::vector<std::string>{"", "acme", "beta", "gamma"}));
  BOOST_TEST(r.records_deleted == 4u);
  BOOST_TEST(r.consent_rows == 3u);
  BOOST_TEST(r.tombstones == 2u);  // unsubscribed, bounced; not granted
  BOOST_TEST(r.audited.size() == 4u);
  auto v = db.read();
  BOOST_TEST(v->records.by_address(kAddr).empty());
  BOOST_TEST(!v->records.get(s.beta));
  BOOST_TEST(!v->records.get(s.noorg));
  BOOST_CHECK(v->consent.get("acme", kAddr).state == ConsentState::unsubscribed);
  BOOST_CHECK(v->consent.get("beta", kAddr).state == ConsentState::bounced);
  BOOST_CHECK(v->consent.get("gamma", kAddr).state == ConsentState::none);
  BOOST_CHECK(v->consent.get("acme", kAlice).state == ConsentState::granted);
  BOOST_TEST(!v->delivery.chained("NQ4", kAddr));
  for (const auto& it : v->outbox.list(false, 100)) BOOST_TEST(!names(it.json));
  BOOST_TEST(v->outbox.stats().queued_bytes == outbox_sum(db));
}

BOOST_AUTO_TEST_CASE(not_an_address) {
  TmpDir dir;
  Db db(opts(dir));
  EraseRequest req{"no address here", {"acme"}, false, "t", "cli"};
  BOOST_CHECK_THROW(db.write([&](Tables& t) { erase_address(t, req); }), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(compacted_file_holds_no_copy) {
  TmpDir dir;
  std::string copy = dir / "copy.mdb";
  {
    Db db(opts(dir));
    seed(db);
    erase(db, {}, true);
    lmdb::check(mdb_env_copy2(db.env().get(), copy.c_str(), MDB_CP_COMPACT), "mdb_env_copy2");
  }
  std::ifstream in(copy, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_REQUIRE(!bytes.empty());
  std::string low = bytes;
  for (char& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto at = low.find(kAddr);
  BOOST_TEST(at == std::string::npos,
             "found at " << at << ": " << (at == std::string::npos ? "" : bytes.substr(at > 80 ? at - 80 : 0, 200)));
  BOOST_TEST(bytes.find(kAlice) != std::string::npos);  // the search does find what stays
}

BOOST_AUTO_TEST_CASE(erase_subject_queues_for_orgs_concerned) {
  TmpDir dir;
  Db db(opts(dir));
  seed(db);
  EraseRequest req{kRaw, {"acme"}, false, "api", "api"};
  auto e = cllavio::core::erase_subject(db, req, kMax);
  BOOST_TEST(e.events_queued == 1u);
  auto count = [&](const std::string& org) {
    std::size_t n = 0;
    for (const auto& it : db.read()->outbox.list(false, 100))
      if (it.json.find("\"subject.erased\"") != std::string::npos) {
        BOOST_TEST(it.org == org);
        auto j = nlohmann::json::parse(it.json);
        BOOST_TEST(j["subject"]["address"] == kAddr);
        BOOST_TEST(j["subject"]["source"] == "api");
        ++n;
      }
    return n;
  };
  BOOST_TEST(count("acme") == 1u);
  // all orgs: beta and gamma held something; no-org records get no event
  req.all_orgs = true;
  auto all = cllavio::core::erase_subject(db, req, kMax);
  BOOST_TEST(all.events_queued == 3u);  // acme again: its first subject.erased event named the address
  auto ev = cllavio::core::subject_erased_event("acme", kAddr, 1, "cli", 42);
  BOOST_TEST(ev.id == cllavio::core::subject_erased_event("acme", kAddr, 2, "cli", 42).id);
  BOOST_TEST(ev.id != cllavio::core::subject_erased_event("beta", kAddr, 1, "cli", 42).id);
  BOOST_TEST(ev.type == "subject.erased");
}
