#define BOOST_TEST_MODULE plan
#include <boost/test/unit_test.hpp>

#include <map>

#include "config_fixture.hpp"
#include "core/plan.hpp"
#include "core/tracking_step.hpp"
#include "policy/address.hpp"
#include "store/db.hpp"
#include "tmpdir.hpp"

// The end-of-message planner (core/plan.cpp): pure, fed through core::MessageState as the
// session and cllavioctl feed it, with lookups in place of the store and the clock.

using namespace session_test;
using core::Step;
using tracking::HeaderEdit;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000'000;

struct Planner {
  explicit Planner(std::shared_ptr<const conf::Config> c) : cfg(std::move(c)) {}
  std::shared_ptr<const conf::Config> cfg;
  std::map<std::string, policy::ConsentState> consents;  // address -> state (org acme)
  int ids_asked = 0;

  core::MessageState message(const std::string& sender, const std::vector<std::string>& rcpts,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const std::string& body) {
    core::MessageState m;
    m.rec.org = "acme";
    m.rec.sender = sender;
    m.begin(*cfg);
    for (const auto& r : rcpts) m.add_recipient("<" + r + ">", policy::normalize_address(r));
    for (const auto& [n, v] : headers) m.header(*cfg, n, v);
    m.body(*cfg, body);
    return m;
  }
  core::EomLookups lookups(core::QuotaHold* quota = nullptr) {
    return {[this](const std::string&, const std::string& a) {
              auto it = consents.find(a);
              return it == consents.end() ? policy::ConsentState::none : it->second;
            },
            quota,
            [this] {
              ++ids_asked;
              return std::uint64_t{0x66160000000001};
            },
            kNow};
  }
};

const std::vector<std::pair<std::string, std::string>> kHtml = {{"Content-Type", " text/html"}};

}  // namespace

BOOST_AUTO_TEST_CASE(personal_mail_is_tracked_and_nothing_else_changes) {
  Planner p(tracking_config());
  auto plan = core::plan_end_of_message(*p.cfg, p.message("alice@acme.example", {"bob@x.example"}, kHtml, html_body()),
                                        p.lookups());
  BOOST_TEST((plan.verdict.step == Step::cont));
  BOOST_REQUIRE(plan.body.has_value());
  BOOST_TEST(plan.body->find("https://t.acme.example/c/") != std::string::npos);
  BOOST_TEST(plan.delete_recipients.empty());
  BOOST_TEST(plan.header_edits.empty());
  BOOST_TEST(!plan.charge.active());
  BOOST_TEST(plan.record.tracking.status == "tracked");
  BOOST_TEST(plan.record.tracking.per_recipient);
  BOOST_TEST(plan.record.id == 0x66160000000001u);  // the tokens carry the id the record gets
  BOOST_TEST(plan.record.tracking.links.size() == 1u);  // moved from the rewrite result
  BOOST_TEST(plan.rewrite->links.empty());
  BOOST_TEST(plan.rewrite->body.empty());  // moved to plan.body
}

BOOST_AUTO_TEST_CASE(campaign_gets_list_unsubscribe_after_the_stream_header_goes) {
  Planner p(policy_config());
  p.consents["bob@x.example"] = policy::ConsentState::granted;
  auto headers = kHtml;
  headers.push_back({"X-Cllavio-Stream", " campaigns"});
  headers.push_back({"X-Cllavio-Stream", " other"});
  auto plan = core::plan_end_of_message(
      *p.cfg, p.message("alice@acme.example", {"bob@x.example"}, headers, html_body()), p.lookups());
  BOOST_TEST(plan.record.stream == "campaigns");
  BOOST_REQUIRE(plan.header_edits.size() == 4u);
  BOOST_TEST((plan.header_edits[0].op == HeaderEdit::Op::remove && plan.header_edits[0].occurrence == 2));
  BOOST_TEST((plan.header_edits[1].op == HeaderEdit::Op::remove && plan.header_edits[1].occurrence == 1));
  BOOST_TEST(plan.header_edits[2].name == "List-Unsubscribe");
  BOOST_TEST(plan.header_edits[3].value == "List-Unsubscribe=One-Click");
  std::string url = plan.header_edits[2].value.substr(1, plan.header_edits[2].value.size() - 2);
  auto t = std::get<tracking::TokenData>(p.cfg->tokens->verify_url_or_token(url));
  BOOST_TEST((t.kind == tracking::TokenKind::unsubscribe));
  BOOST_TEST(t.url == "campaigns");
  BOOST_TEST(t.message == plan.record.id);
  BOOST_TEST(plan.record.list_unsubscribe == "added");
  BOOST_TEST(plan.record.tracking.status == "tracked");  // bob granted consent
}

BOOST_AUTO_TEST_CASE(without_consent_the_campaign_is_not_tracked_but_still_gets_list_unsubscribe) {
  Planner p(policy_config());
  auto plan = core::plan_end_of_message(*p.cfg, p.message("news@acme.example", {"bob@x.example"}, kHtml, html_body()),
                                        p.lookups());
  BOOST_TEST(!plan.body.has_value());
  BOOST_TEST(plan.record.tracking.skipped == "no_consent");
  BOOST_TEST(!plan.rewrite.has_value());
  BOOST_TEST(plan.header_edits.size() == 2u);  // List-Unsubscribe and -Post
}

BOOST_AUTO_TEST_CASE(a_header_chosen_campaign_deletes_unsubscribed_recipients_as_the_mta_gave_them) {
  Planner p(policy_config());
  p.consents["bob@x.example"] = policy::ConsentState::unsubscribed;
  p.consents["dave@x.example"] = policy::ConsentState::unsubscribed;
  auto headers = kHtml;
  headers.push_back({"X-Cllavio-Stream", " campaigns"});
  auto plan = core::plan_end_of_message(
      *p.cfg, p.message("alice@acme.example", {"bob@x.example", "carol@x.example", "dave@x.example"}, headers,
                        html_body()),
      p.lookups());
  BOOST_TEST((plan.verdict.step == Step::cont));
  BOOST_TEST(plan.delete_recipients == (std::vector<std::string>{"<dave@x.example>", "<bob@x.example>"}),
             boost::test_tools::per_element());
  BOOST_TEST(plan.record.recipients == std::vector<std::string>{"carol@x.example"});
  BOOST_TEST(plan.record.recipient_count == 1u);
  BOOST_TEST(plan.record.suppressed.size() == 2u);
  // Every recipient unsubscribed: refused, nothing changes.
  auto all = core::plan_end_of_message(
      *p.cfg, p.message("alice@acme.example", {"bob@x.example"}, headers, html_body()), p.lookups());
  BOOST_TEST((all.verdict.step == Step::reject));
  BOOST_TEST(all.verdict.reply.rcode == "550");
  BOOST_TEST(!all.changes_message());
  BOOST_TEST(all.record.reason == "suppression");
}

BOOST_AUTO_TEST_CASE(no_message_id_is_taken_when_no_token_needs_one) {
  Planner p(tracking_config());
  auto cfg = std::const_pointer_cast<conf::Config>(tracking_config());
  cfg->tracking.clear();
  cfg->policies.clear();
  p.cfg = cfg;
  auto plan = core::plan_end_of_message(*p.cfg, p.message("alice@acme.example", {"bob@x.example"}, kHtml, html_body()),
                                        p.lookups());
  BOOST_TEST(!plan.changes_message());
  BOOST_TEST(p.ids_asked == 0);
  BOOST_TEST(plan.record.id == 0u);  // the store assigns it
}

BOOST_AUTO_TEST_CASE(the_quota_charge_is_a_handle_that_rolls_back_unless_committed) {
  policy::QuotaPolicy q;
  q.messages = {{60, 1}};
  Planner p(policy_config(q));
  core::LocalQuota ledger;
  auto usage = [&] { return ledger.ledger().usage("acme", q, kNow).at(0).used; };
  {
    core::QuotaHold hold(&ledger, "acme");
    auto plan = core::plan_end_of_message(
        *p.cfg, p.message("alice@acme.example", {"bob@x.example"}, kHtml, html_body()), p.lookups(&hold));
    BOOST_TEST(plan.charge.active());
    BOOST_TEST(plan.record.quota_charged_at_us == plan.charge.at_us());
    BOOST_TEST(usage() == 1u);
  }  // the plan was never committed (an edit failed, the store failed): given back
  BOOST_TEST(usage() == 0u);
  core::QuotaHold hold(&ledger, "acme");
  auto plan = core::plan_end_of_message(
      *p.cfg, p.message("alice@acme.example", {"bob@x.example"}, kHtml, html_body()), p.lookups(&hold));
  plan.charge.commit();
  BOOST_TEST(usage() == 1u);
  // The next one does not fit: refused before anything is edited.
  core::QuotaHold next(&ledger, "acme");
  auto refused = core::plan_end_of_message(
      *p.cfg, p.message("news@acme.example", {"bob@x.example"}, kHtml, html_body()), p.lookups(&next));
  BOOST_TEST((refused.verdict.step == Step::tempfail));
  BOOST_TEST(refused.verdict.reply.text.rfind("Sending quota of acme exceeded (1 message per minute)", 0) == 0);
  BOOST_TEST(refused.record.reason == "quota");
  BOOST_TEST(!refused.changes_message());
  BOOST_TEST(!refused.charge.active());
  BOOST_TEST(usage() == 1u);
}

BOOST_AUTO_TEST_CASE(apply_hands_every_effect_over_in_order_and_stops_at_a_refusal) {
  struct Calls : core::MilterActions {
    std::vector<std::string> seen;
    std::size_t refuse_at = 99;
    bool note(std::string s) {
      seen.push_back(std::move(s));
      return seen.size() != refuse_at;
    }
    bool replace_body(std::string_view) override { return note("body"); }
    bool change_header(std::string_view n, int, std::string_view) override { return note("change " + std::string(n)); }
    bool remove_header(std::string_view n, int i) override {
      return note("remove " + std::string(n) + " " + std::to_string(i));
    }
    bool add_header(std::string_view n, std::string_view) override { return note("add " + std::string(n)); }
    bool delete_recipient(std::string_view r) override { return note("delrcpt " + std::string(r)); }
  };
  core::EomPlan plan;
  plan.delete_recipients = {"<b@x>"};
  plan.header_edits = {{HeaderEdit::Op::remove, "X-Cllavio-Stream", 1, {}}, {HeaderEdit::Op::add, "List-Unsubscribe", 0, "<u>"}};
  plan.body = "new";
  Calls all;
  BOOST_TEST(core::apply(plan, all));
  BOOST_TEST(all.seen == (std::vector<std::string>{"delrcpt <b@x>", "remove X-Cllavio-Stream 1", "add List-Unsubscribe",
                                                    "body"}),
             boost::test_tools::per_element());
  Calls refusing;
  refusing.refuse_at = 2;
  BOOST_TEST(!core::apply(plan, refusing));
  BOOST_TEST(refusing.seen.size() == 2u);
  // The same plan on a message file, as Postfix writes it.
  std::string msg = core::apply_to_message(plan, "Subject: s\r\nX-Cllavio-Stream: c\r\n\r\n", "old");
  BOOST_TEST(msg == "Subject: s\r\nList-Unsubscribe: <u>\r\n\r\nnew");
  // A file that ends inside its header block: lines end and an empty line comes before a body.
  BOOST_TEST(core::apply_to_message(plan, "Subject: s\nX-Cllavio-Stream: c", "") == "Subject: s\nList-Unsubscribe: <u>\n\nnew");
  core::EomPlan nothing;
  BOOST_TEST(core::apply_to_message(nothing, "Subject: s", "") == "Subject: s\r\n");
}

// Compact tokens (token_version = 2): clicks and the pixel are version 2, the
// List-Unsubscribe URL stays version 1 (it works from the token alone).
BOOST_AUTO_TEST_CASE(compact_org_keeps_list_unsubscribe_at_version_1) {
  auto cfg = std::const_pointer_cast<conf::Config>(policy_config());
  cfg->tracking["acme"].token_version = 2;
  Planner p(cfg);
  p.consents["bob@x.example"] = policy::ConsentState::granted;
  auto headers = kHtml;
  headers.push_back({"X-Cllavio-Stream", " campaigns"});
  auto plan = core::plan_end_of_message(
      *p.cfg, p.message("alice@acme.example", {"bob@x.example"}, headers, html_body()), p.lookups());
  BOOST_REQUIRE(plan.body.has_value());
  const tracking::HeaderEdit* lu = nullptr;
  for (const auto& e : plan.header_edits)
    if (e.name == "List-Unsubscribe") lu = &e;
  BOOST_REQUIRE(lu != nullptr);
  auto u = std::get<tracking::TokenData>(p.cfg->tokens->verify_url_or_token(lu->value.substr(1, lu->value.size() - 2)));
  BOOST_TEST(u.version == 1);
  BOOST_TEST(*u.recipient == "bob@x.example");
  for (std::string kind : {"/c/", "/o/"}) {
    std::size_t at = plan.body->find("https://t.acme.example" + kind);
    BOOST_REQUIRE(at != std::string::npos);
    auto t = std::get<tracking::TokenData>(
        p.cfg->tokens->verify_url_or_token(plan.body->substr(at, plan.body->find('"', at) - at)));
    BOOST_TEST(t.version == 2, kind);
    BOOST_TEST(!t.recipient.has_value());
  }
}

// store_link_tables reads a record's link table: only for the token's org, and never throws (a
// record the store cannot decode answers "not found": the quoted link stays as it is,
// old_token_unresolved, and the message goes on instead of an exception ending the rewrite).
BOOST_AUTO_TEST_CASE(store_link_tables_read_the_records_link_table) {
  cllavio::test::TmpDir dir;
  store::StoreOptions o;
  o.dir = dir / "store";
  o.map_size_mb = 4;
  auto db = std::make_unique<store::Db>(o);
  store::MessageRecord tracked, plain, broken;
  tracked.org = plain.org = broken.org = "acme";
  tracked.action = plain.action = broken.action = "accept";
  tracked.tracking.status = "tracked";
  tracked.tracking.links = {{1, "https://example.com/a"}, {2, "https://example.com/b"}};
  tracked.id = db->allocate_id();
  plain.id = db->allocate_id();
  broken.id = db->allocate_id();
  db->write([&](store::Tables& t) {
    t.records.append(tracked);
    t.records.append(plain);
    t.records.append(broken, std::string("\xff\x01not cbor"));
  });
  auto lookup = core::store_link_tables(*db);
  auto links = lookup("acme", tracked.id);
  BOOST_REQUIRE(links.has_value());
  BOOST_REQUIRE(links->size() == 2u);
  BOOST_TEST((*links)[1].index == 2u);
  BOOST_TEST((*links)[1].url == "https://example.com/b");
  BOOST_TEST(!lookup("other", tracked.id).has_value());  // another org's token never reads acme's table
  BOOST_TEST(!lookup("acme", plain.id).has_value());     // no links
  BOOST_TEST(!lookup("acme", tracked.id + 1000).has_value());  // no such record
  BOOST_CHECK_THROW(db->read()->records.get(broken.id), std::exception);  // the store itself throws
  std::optional<std::vector<tracking::TrackedLink>> none;
  BOOST_CHECK_NO_THROW(none = lookup("acme", broken.id));
  BOOST_TEST(!none.has_value());
}

