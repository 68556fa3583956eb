#define BOOST_TEST_MODULE session
#include <boost/test/unit_test.hpp>

#include "milter/runtime.hpp"
#include "milter/session.hpp"
#include "store/lmdb.hpp"

using namespace cllavio;
using milter::Connection;
using milter::Step;

namespace {

// Records what a session asks the MTA to change.
struct RecordingActions : milter::MilterActions {
  std::vector<std::string> calls;
  std::string body;
  bool fail = false;
  bool replace_body(std::string_view b) override {
    calls.push_back("replace_body");
    body = std::string(b);
    return !fail;
  }
  bool change_header(std::string_view n, int i, std::string_view v) override {
    calls.push_back("change " + std::string(n) + " " + std::to_string(i) + " " + std::string(v));
    return !fail;
  }
  bool remove_header(std::string_view n, int i) override {
    calls.push_back("remove " + std::string(n) + " " + std::to_string(i));
    return !fail;
  }
  bool add_header(std::string_view n, std::string_view v) override {
    if (throw_on_add) throw std::runtime_error("add_header exploded");
    calls.push_back("add " + std::string(n) + " " + std::string(v));
    return !fail;
  }
  bool throw_on_add = false;
  bool delete_recipient(std::string_view r) override {
    calls.push_back("delrcpt " + std::string(r));
    return !fail;
  }
};

// Services with an in-memory store and captured log lines.
struct Fixture {
  RecordingActions actions;
  std::vector<store::MessageRecord> stored;
  std::vector<std::string> lines;
  std::atomic<int> in_flight{0};
  milter::Logger log;
  int fail_with = 0;  // MDB_* code the fake store throws, 0 = succeed
  std::uint64_t next_id = 100;

  Fixture() {
    log.configure(conf::LogTarget::stderr_stream, conf::LogLevel::info);
    log.capture([this](conf::LogLevel, const std::string& line) { lines.push_back(line); });
  }

  std::shared_ptr<const conf::Config> config(policy::UnknownOrg unknown = policy::UnknownOrg::accept,
                                             conf::OnError on_error = conf::OnError::accept) {
    auto cfg = std::make_shared<conf::Config>();
    policy::Org acme;
    acme.id = "acme";
    acme.domains = {"acme.example"};
    acme.sasl_users = {"@acme.example"};
    acme.networks = {*policy::parse_network("192.0.2.0/24")};
    cfg->orgs = policy::OrgIndex({acme});
    cfg->orgs_settings.unknown = unknown;
    cfg->milter.on_error = on_error;
    return cfg;
  }

  std::atomic<bool> draining{false};
  int reject_budget = 1000;  // rejects the fake rate limit still lets through

  milter::Services services() {
    return {[this](store::MessageRecord& r) -> std::uint64_t {
              if (fail_with != 0) throw store::lmdb::Error("mdb_put", fail_with);
              if (r.id == 0) r.id = next_id++;
              stored.push_back(r);
              return r.id;
            },
            &log,
            [] { return std::int64_t{1'700'000'000'000'000}; },
            &in_flight,
            &draining,
            [this](int) { return reject_budget-- > 0; },
            [this] { return next_id++; },
            [this](const std::string& org, const std::string& addr) {
              auto it = consents.find(org + " " + addr);
              return it == consents.end() ? policy::ConsentState::none : it->second;
            },
            &ledger,
            {}};
  }
  std::map<std::string, policy::ConsentState> consents;  // "org address" -> state
  policy::QuotaLedger ledger;

  std::string log_text() const {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
  bool logged(const std::string& needle) const { return log_text().find(needle) != std::string::npos; }
};

void send_body(Connection& c) {
  c.header("Message-ID", " <m1@acme.example>");
  c.header("Subject", " hello\n\tfolded");  // Postfix sends folds as bare LF
  c.header("message-id", " <second@acme.example>");
  c.body("Hello\r\n");
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(accepted_message_is_recorded_and_logged, Fixture) {
  Connection c(config(), services());
  c.connect("mail.acme.example", "192.0.2.5");
  auto v = c.mail("<alice@acme.example>", "alice@acme.example");
  BOOST_TEST((v.step == Step::cont));
  BOOST_TEST(in_flight == 1);
  c.rcpt("<Bob@X.Example>");
  c.rcpt("<carol@y.example>");
  send_body(c);
  v = c.end_of_message("4F3A1C2B", actions);
  BOOST_TEST((v.step == Step::cont));
  BOOST_TEST(in_flight == 0);
  BOOST_REQUIRE_EQUAL(stored.size(), 1u);
  const auto& r = stored[0];
  BOOST_TEST(r.queue_id == "4F3A1C2B");
  BOOST_TEST(r.org == "acme");
  BOOST_TEST(r.identified_by == "sasl");
  BOOST_TEST(r.sender == "alice@acme.example");
  BOOST_TEST(r.recipients == (std::vector<std::string>{"Bob@x.example", "carol@y.example"}));
  BOOST_TEST(r.message_id == "<m1@acme.example>");
  BOOST_TEST(r.client_addr == "192.0.2.5");
  BOOST_TEST(r.action == "accept");
  BOOST_TEST(r.received_at_us == 1'700'000'000'000'000);
  std::string msg =
      "Message-ID: <m1@acme.example>\r\nSubject: hello\r\n\tfolded\r\nmessage-id: <second@acme.example>\r\n\r\nHello\r\n";
  BOOST_TEST(r.size == msg.size());
  BOOST_TEST(logged("4F3A1C2B: org=acme by=sasl from=<alice@acme.example> nrcpt=2 client=mail.acme.example[192.0.2.5] "
                    "sasl=alice@acme.example size=" + std::to_string(msg.size()) +
                    " msgid=<m1@acme.example> action=accept id=0000000000000064"),
             log_text());
}

BOOST_FIXTURE_TEST_CASE(several_messages_per_connection_and_aborts, Fixture) {
  Connection c(config(), services());
  c.connect("h", "192.0.2.9");
  c.mail("<a@acme.example>", "");
  c.rcpt("<x@y.example>");
  c.abort();  // RSET
  BOOST_TEST(in_flight == 0);
  BOOST_TEST(!c.in_transaction());
  BOOST_TEST((c.end_of_message("LOST", actions).step == Step::cont));  // nothing in flight: nothing recorded
  BOOST_TEST(stored.empty());
  c.mail("<a@acme.example>", "");
  c.mail("<b@acme.example>", "");  // a new MAIL replaces an unfinished transaction
  BOOST_TEST(in_flight == 1);
  c.rcpt("<x@y.example>");
  c.end_of_message("Q2", actions);
  BOOST_REQUIRE_EQUAL(stored.size(), 1u);
  BOOST_TEST(stored[0].sender == "b@acme.example");
  BOOST_TEST(stored[0].identified_by == "network");
  BOOST_TEST(stored[0].size == 2u);  // empty message: just the header/body separator
}

BOOST_FIXTURE_TEST_CASE(connection_closed_mid_message_releases_it, Fixture) {
  {
    Connection c(config(), services());
    c.mail("<a@acme.example>", "");
    BOOST_TEST(in_flight == 1);
  }
  BOOST_TEST(in_flight == 0);
}

BOOST_FIXTURE_TEST_CASE(unknown_org_rejected_at_mail_from, Fixture) {
  Connection c(config(policy::UnknownOrg::reject), services());
  c.connect("stranger", "198.51.100.7");
  auto v = c.mail("<eve@elsewhere.example>", "");
  BOOST_TEST((v.step == Step::reject));
  BOOST_TEST(v.reply.rcode == "550");
  BOOST_TEST(v.reply.xcode == "5.7.1");
  BOOST_TEST(!c.in_transaction());
  BOOST_TEST(in_flight == 0);
  BOOST_REQUIRE_EQUAL(stored.size(), 1u);
  BOOST_TEST(stored[0].action == "reject");
  BOOST_TEST(stored[0].reason == "unknown_org");
  BOOST_TEST(stored[0].queue_id == "");
  BOOST_TEST(logged("NOQUEUE: org=unknown by=none from=<eve@elsewhere.example> nrcpt=0 client=stranger[198.51.100.7] "
                    "action=reject reason=unknown_org"),
             log_text());
}

BOOST_FIXTURE_TEST_CASE(unknown_org_accepted_untouched, Fixture) {
  Connection c(config(policy::UnknownOrg::accept), services());
  c.connect("stranger", "198.51.100.7");
  BOOST_TEST((c.mail("<eve@elsewhere.example>", "").step == Step::cont));
  c.rcpt("<x@y.example>");
  BOOST_TEST((c.end_of_message("Q9", actions).step == Step::cont));
  BOOST_REQUIRE_EQUAL(stored.size(), 1u);
  BOOST_TEST(stored[0].org == "");
  BOOST_TEST(logged("Q9: org=unknown by=none"));
}

BOOST_FIXTURE_TEST_CASE(store_full_passes_per_on_error_accept, Fixture) {
  Connection c(config(), services());
  c.mail("<a@acme.example>", "a@acme.example");
  fail_with = MDB_MAP_FULL;
  auto v = c.end_of_message("QFULL", actions);
  BOOST_TEST((v.step == Step::accept));
  BOOST_TEST(logged("QFULL: STORE FULL: message not recorded"), log_text());
  BOOST_TEST(logged("QFULL: org=acme by=sasl"), log_text());
  BOOST_TEST(logged("action=accept reason=store_error"), log_text());
  BOOST_TEST(in_flight == 0);
}

BOOST_FIXTURE_TEST_CASE(store_failure_tempfails_per_on_error_tempfail, Fixture) {
  Connection c(config(policy::UnknownOrg::accept, conf::OnError::tempfail), services());
  c.mail("<a@acme.example>", "");
  fail_with = EIO;
  auto v = c.end_of_message("QIO", actions);
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_TEST(v.reply.rcode == "451");
  BOOST_TEST(v.reply.xcode == "4.3.0");
  BOOST_TEST(logged("QIO: store write failed"), log_text());
}

BOOST_FIXTURE_TEST_CASE(reject_decision_stands_when_store_fails, Fixture) {
  Connection c(config(policy::UnknownOrg::reject), services());
  fail_with = MDB_MAP_FULL;
  BOOST_TEST((c.mail("<eve@elsewhere.example>", "").step == Step::reject));
  BOOST_TEST(logged("NOQUEUE: STORE FULL"));
}

BOOST_FIXTURE_TEST_CASE(error_in_a_no_reply_step_is_answered_at_end_of_message, Fixture) {
  Connection c(config(policy::UnknownOrg::accept, conf::OnError::tempfail), services());
  c.mail("<a@acme.example>", "");
  auto v = c.internal_error("header", "boom\r\ninjected", true);
  BOOST_TEST((v.step == Step::cont));  // no reply possible now
  BOOST_TEST(c.in_transaction());
  v = c.end_of_message("QERR", actions);
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_REQUIRE_EQUAL(stored.size(), 1u);
  BOOST_TEST(stored[0].action == "tempfail");
  BOOST_TEST(stored[0].reason == "internal_error");
  BOOST_TEST(logged("QERR: internal error earlier in this message (header: boom??injected); on_error=tempfail"),
             log_text());
}

BOOST_FIXTURE_TEST_CASE(error_in_a_reply_step_answers_now, Fixture) {
  Connection c(config(), services());
  c.mail("<a@acme.example>", "");
  auto v = c.internal_error("eom", "bad_alloc", false);
  BOOST_TEST((v.step == Step::accept));
  BOOST_TEST(!c.in_transaction());
  BOOST_TEST(in_flight == 0);
  BOOST_TEST(logged("internal error in eom: bad_alloc; on_error=accept"));
}

BOOST_FIXTURE_TEST_CASE(unverified_client_names_are_unknown_like_postfix_logs_them, Fixture) {
  Connection c(config(), services());
  c.connect("[192.0.2.9]", "192.0.2.9");
  c.mail("<a@acme.example>", "");
  c.end_of_message("Q", actions);
  BOOST_TEST(stored.at(0).client_name == "unknown");
  BOOST_TEST(logged("client=unknown[192.0.2.9]"), log_text());
}

BOOST_FIXTURE_TEST_CASE(message_id_is_bounded, Fixture) {
  Connection c(config(), services());
  c.mail("<a@acme.example>", "");
  c.header("Message-ID", " <" + std::string(5000, 'x') + ">");
  c.end_of_message("Q", actions);
  BOOST_TEST(stored.at(0).message_id.size() == 998u);
}

BOOST_FIXTURE_TEST_CASE(a_connection_keeps_its_configuration_across_a_reload, Fixture) {
  milter::Runtime rt;
  rt.set_config(config(policy::UnknownOrg::reject));
  Connection pinned(rt.config(), services());
  rt.set_config(config(policy::UnknownOrg::accept));  // SIGHUP
  Connection fresh(rt.config(), services());
  BOOST_TEST((pinned.mail("<eve@elsewhere.example>", "").step == Step::reject));
  BOOST_TEST((fresh.mail("<eve@elsewhere.example>", "").step == Step::cont));
}

BOOST_FIXTURE_TEST_CASE(while_draining_new_transactions_get_on_error, Fixture) {
  draining = true;
  Connection a(config(policy::UnknownOrg::accept, conf::OnError::accept), services());
  BOOST_TEST((a.mail("<a@acme.example>", "").step == Step::accept));
  Connection t(config(policy::UnknownOrg::accept, conf::OnError::tempfail), services());
  auto v = t.mail("<a@acme.example>", "");
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_TEST(v.reply.rcode == "451");
  BOOST_TEST(!a.in_transaction());
  BOOST_TEST(in_flight == 0);
  BOOST_TEST(stored.empty());
  BOOST_TEST(logged("shutting down: transaction from <a@acme.example> not processed"), log_text());
}

BOOST_FIXTURE_TEST_CASE(rejects_over_the_budget_are_logged_not_recorded, Fixture) {
  reject_budget = 1;
  Connection c(config(policy::UnknownOrg::reject), services());
  BOOST_TEST((c.mail("<eve@elsewhere.example>", "").step == Step::reject));
  BOOST_TEST((c.mail("<eve2@elsewhere.example>", "").step == Step::reject));
  BOOST_TEST(stored.size() == 1u);
  BOOST_TEST(logged("from=<eve2@elsewhere.example> nrcpt=0 client=[] action=reject reason=unknown_org recorded=no"),
             log_text());
}

BOOST_FIXTURE_TEST_CASE(recipients_are_capped_but_counted, Fixture) {
  Connection c(config(), services());
  c.mail("<a@acme.example>", "");
  for (int i = 0; i < 1005; ++i) c.rcpt("<r" + std::to_string(i) + "@x.example>");
  c.end_of_message("Q", actions);
  BOOST_TEST(stored.at(0).recipients.size() == store::MessageRecord::kMaxRecipients);
  BOOST_TEST(stored.at(0).recipient_count == 1005u);
  BOOST_TEST(logged("nrcpt=1005"), log_text());
}

BOOST_FIXTURE_TEST_CASE(crafted_values_cannot_fake_log_fields, Fixture) {
  Connection c(config(), services());
  c.connect("host", "192.0.2.5");
  c.mail("<\"x action=reject id=0\"@acme.example>", "");
  c.header("Message-ID", " <a> action=reject");
  c.end_of_message("Q", actions);
  BOOST_TEST(logged("from=<\"x?action=reject?id=0\"@acme.example>"), log_text());
  BOOST_TEST(logged("msgid=<a>?action=reject action=accept"), log_text());
}

namespace {

std::shared_ptr<const conf::Config> tracking_config(std::size_t max_bytes = 1 << 20) {
  auto cfg = std::make_shared<conf::Config>();
  policy::Org acme;
  acme.id = "acme";
  acme.sasl_users = {"@acme.example"};
  cfg->orgs = policy::OrgIndex({acme});
  tracking::TrackingPolicy t;
  t.opens = t.clicks = true;
  t.domain = "t.acme.example";
  cfg->tracking.emplace("acme", t);
  policy::OrgPolicy p;  // as the loader builds it: the default stream takes [tracking]'s switches
  p.streams.fallback.name = "default";
  p.streams.fallback.opens = p.streams.fallback.clicks = true;
  p.streams.fallback.consent = policy::ConsentMode::implied;
  cfg->policies.emplace("acme", p);
  cfg->tracking_limits.max_rewrite_bytes = max_bytes;
  cfg->tokens = std::make_shared<tracking::TokenCodec>(
      std::vector<tracking::TrackingKey>{{"k1", std::string(32, 'k')}});
  return cfg;
}

void send_html(Connection& c, std::string_view extra_header = {}) {
  c.mail("<news@acme.example>", "news@acme.example");
  c.rcpt("<bob@example.net>");
  c.header("Content-Type", " text/html;\n\tcharset=utf-8");  // folded as Postfix sends it
  if (!extra_header.empty()) c.header("X-Cllavio-Track", extra_header);
  c.body("<html><body><a href=\"https://example.com/a?x=1&amp;y=2\">A</a></body></html>\r\n");
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(tracked_message_is_rewritten_and_recorded, Fixture) {
  Connection c(tracking_config(), services());
  send_html(c);
  auto v = c.end_of_message("QT1", actions);
  BOOST_TEST((v.step == Step::cont));
  BOOST_TEST(actions.calls == std::vector<std::string>{"replace_body"});
  BOOST_TEST(actions.body.find("href=\"https://t.acme.example/c/") != std::string::npos);
  BOOST_TEST(actions.body.find("src=\"https://t.acme.example/o/") != std::string::npos);
  const auto& t = stored.at(0).tracking;
  BOOST_TEST(t.status == "tracked");
  BOOST_REQUIRE_EQUAL(t.links.size(), 1u);
  BOOST_TEST(t.links[0].url == "https://example.com/a?x=1&y=2");
  BOOST_TEST(t.pixels == 1u);
  BOOST_TEST(t.per_recipient);
  // The click token carries the id the record was stored under.
  std::size_t p = actions.body.find("https://t.acme.example/c/");
  auto tok = tracking_config()->tokens->verify_url_or_token(
      actions.body.substr(p, actions.body.find('"', p) - p));
  BOOST_REQUIRE(std::holds_alternative<tracking::TokenData>(tok));
  BOOST_TEST(std::get<tracking::TokenData>(tok).message == stored.at(0).id);
  BOOST_TEST(*std::get<tracking::TokenData>(tok).recipient == "bob@example.net");
  BOOST_TEST(logged("QT1: org=acme"), log_text());
  BOOST_TEST(logged("track=tracked links=1 pixels=1"), log_text());
}

BOOST_FIXTURE_TEST_CASE(control_header_off_removes_it_and_leaves_the_body, Fixture) {
  Connection c(tracking_config(), services());
  send_html(c, " off");
  c.end_of_message("QT2", actions);
  BOOST_TEST(actions.calls == std::vector<std::string>{"remove X-Cllavio-Track 1"});
  BOOST_TEST(stored.at(0).tracking.status == "skipped");
  BOOST_TEST(stored.at(0).tracking.skipped == "opted_out");
  BOOST_TEST(logged("track=skipped:opted_out"), log_text());
}

BOOST_FIXTURE_TEST_CASE(too_large_to_buffer_passes_unchanged, Fixture) {
  Connection c(tracking_config(16), services());
  send_html(c);
  c.end_of_message("QT3", actions);
  BOOST_TEST(actions.calls.empty());
  BOOST_TEST(stored.at(0).tracking.skipped == "too_large");
  BOOST_TEST(stored.at(0).size > 16u);  // still counted in full
}

BOOST_FIXTURE_TEST_CASE(a_refused_change_tempfails_the_message, Fixture) {
  Connection c(tracking_config(), services());
  send_html(c);
  actions.fail = true;
  auto v = c.end_of_message("QT4", actions);
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_TEST(stored.at(0).action == "tempfail");
  BOOST_TEST(stored.at(0).reason == "milter_action_failed");
}

BOOST_FIXTURE_TEST_CASE(orgs_without_tracking_are_not_buffered_or_changed, Fixture) {
  Connection c(config(), services());
  c.mail("<a@acme.example>", "a@acme.example");
  c.header("Content-Type", " text/html");
  c.body("<body><a href=\"https://example.com\">x</a></body>");
  c.end_of_message("QT5", actions);
  BOOST_TEST(actions.calls.empty());
  BOOST_TEST(stored.at(0).tracking.status == "");
}

// ---- policy: streams, suppression, consent, quotas ---------------------------------

namespace {

std::shared_ptr<const conf::Config> policy_config(policy::QuotaPolicy quota = {}) {
  auto cfg = std::const_pointer_cast<conf::Config>(tracking_config());
  policy::OrgPolicy p;
  p.streams.fallback.name = "default";
  p.streams.fallback.opens = p.streams.fallback.clicks = true;
  p.streams.fallback.consent = policy::ConsentMode::implied;
  policy::Stream campaigns;
  campaigns.name = "campaigns";
  campaigns.senders = {"news@acme.example"};
  campaigns.kind = policy::StreamKind::campaign;
  campaigns.opens = campaigns.clicks = true;
  campaigns.consent = policy::ConsentMode::required;
  campaigns.suppress_unsubscribed = true;
  campaigns.list_unsubscribe = true;
  p.streams.streams = {campaigns};
  p.quota = std::move(quota);
  cfg->policies["acme"] = p;
  cfg->any_rcpt_checks = cfg->any_modifications = true;
  return cfg;
}

std::string html_body() { return "<html><body><a href=\"https://example.com/a\">A</a></body></html>\r\n"; }

}  // namespace

BOOST_FIXTURE_TEST_CASE(campaign_refuses_unsubscribed_at_rcpt_personal_mail_does_not, Fixture) {
  consents["acme bob@example.net"] = policy::ConsentState::unsubscribed;
  Connection c(policy_config(), services());
  c.mail("<news@acme.example>", "news@acme.example");  // campaigns
  auto v = c.rcpt("<bob@example.net>");
  BOOST_TEST((v.step == Step::reject));
  BOOST_TEST(v.reply.text == "<bob@example.net> unsubscribed from acme mailings");
  BOOST_TEST((c.rcpt("<carol@example.net>").step == Step::cont));
  c.abort();
  c.mail("<alice@acme.example>", "alice@acme.example");  // the default (personal) stream
  BOOST_TEST((c.rcpt("<bob@example.net>").step == Step::cont));
}

BOOST_FIXTURE_TEST_CASE(header_chosen_campaign_removes_unsubscribed_and_the_header, Fixture) {
  consents["acme bob@example.net"] = policy::ConsentState::unsubscribed;
  consents["acme carol@example.net"] = policy::ConsentState::granted;
  Connection c(policy_config(), services());
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<bob@example.net>");
  c.rcpt("<carol@example.net>");
  c.header("X-Cllavio-Stream", " campaigns");
  c.header("Content-Type", " text/html");
  c.body(html_body());
  auto v = c.end_of_message("Q1", actions);
  BOOST_TEST((v.step == Step::cont));
  BOOST_REQUIRE(actions.calls.size() >= 4u);
  BOOST_TEST(actions.calls[0] == "delrcpt <bob@example.net>");
  BOOST_TEST(actions.calls[1] == "remove X-Cllavio-Stream 1");
  BOOST_TEST(actions.calls[2].rfind("add List-Unsubscribe <https://t.acme.example/u/", 0) == 0);
  BOOST_TEST(actions.calls[3] == "add List-Unsubscribe-Post List-Unsubscribe=One-Click");
  const auto& r = stored.at(0);
  BOOST_TEST(r.stream == "campaigns");
  BOOST_TEST(r.recipients == std::vector<std::string>{"carol@example.net"});
  BOOST_TEST(r.suppressed == std::vector<std::string>{"bob@example.net"});
  BOOST_TEST(r.tracking.status == "tracked");  // carol granted consent
  BOOST_TEST(r.list_unsubscribe == "added");
  BOOST_TEST(logged("stream=campaigns suppressed=<bob@example.net> list_unsubscribe=added"), log_text());
  // The List-Unsubscribe token names the org, the message, carol and the stream.
  std::string url = actions.calls[2].substr(std::string("add List-Unsubscribe <").size());
  url.pop_back();
  auto t = std::get<tracking::TokenData>(c.config().tokens->verify_url_or_token(url));
  BOOST_TEST((t.kind == tracking::TokenKind::unsubscribe));
  BOOST_TEST(*t.recipient == "carol@example.net");
  BOOST_TEST(t.url == "campaigns");
  BOOST_TEST(t.message == r.id);
}

BOOST_FIXTURE_TEST_CASE(header_chosen_campaign_with_only_unsubscribed_recipients_is_refused, Fixture) {
  consents["acme bob@example.net"] = policy::ConsentState::unsubscribed;
  Connection c(policy_config(), services());
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<bob@example.net>");
  c.header("X-Cllavio-Stream", " campaigns");
  auto v = c.end_of_message("Q2", actions);
  BOOST_TEST((v.step == Step::reject));
  BOOST_TEST(v.reply.xcode == "5.7.1");
  BOOST_TEST(actions.calls.empty());
  BOOST_TEST(stored.at(0).reason == "suppression");
  BOOST_TEST(stored.at(0).action == "reject");
}

BOOST_FIXTURE_TEST_CASE(tracking_needs_every_recipients_consent, Fixture) {
  consents["acme granted@example.net"] = policy::ConsentState::granted;
  Connection c(policy_config(), services());
  // Campaigns require consent: one recipient without it leaves the whole message untracked.
  c.mail("<news@acme.example>", "news@acme.example");
  c.rcpt("<granted@example.net>");
  c.rcpt("<nobody@example.net>");
  c.header("Content-Type", " text/html");
  c.body(html_body());
  c.end_of_message("Q3", actions);
  BOOST_TEST(stored.at(0).tracking.skipped == "no_consent");
  BOOST_TEST(std::count(actions.calls.begin(), actions.calls.end(), "replace_body") == 0);
  BOOST_TEST(stored.at(0).list_unsubscribe == "several_recipients");
  // The default stream implies consent unless revoked.
  consents["acme nobody@example.net"] = policy::ConsentState::revoked;
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<granted@example.net>");
  c.header("Content-Type", " text/html");
  c.body(html_body());
  c.end_of_message("Q4", actions);
  BOOST_TEST(stored.at(1).tracking.status == "tracked");
  BOOST_TEST(stored.at(1).stream == "default");
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<nobody@example.net>");
  c.header("Content-Type", " text/html");
  c.body(html_body());
  c.end_of_message("Q5", actions);
  BOOST_TEST(stored.at(2).tracking.skipped == "no_consent");
}

BOOST_FIXTURE_TEST_CASE(recipient_limit_and_quota_replies, Fixture) {
  policy::QuotaPolicy q;
  q.max_recipients_per_message = 2;
  q.recipients = {{3600, 3}};
  q.messages = {{60, 1}};
  Connection c(policy_config(q), services());
  c.mail("<alice@acme.example>", "alice@acme.example");
  BOOST_TEST((c.rcpt("<a@x.example>").step == Step::cont));
  BOOST_TEST((c.rcpt("<b@x.example>").step == Step::cont));
  auto v = c.rcpt("<c@x.example>");
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_TEST(v.reply.rcode == "452");
  BOOST_TEST(v.reply.xcode == "4.5.3");
  BOOST_TEST(ledger.reserved("acme") == 2u);
  c.abort();  // an aborted transaction gives its reservations back
  BOOST_TEST(ledger.reserved("acme") == 0u);
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<a@x.example>");
  c.rcpt("<b@x.example>");
  BOOST_TEST((c.end_of_message("Q6", actions).step == Step::cont));
  BOOST_TEST(stored.back().quota_charged_at_us != 0);
  BOOST_TEST(ledger.reserved("acme") == 0u);
  c.mail("<alice@acme.example>", "alice@acme.example");
  BOOST_TEST((c.rcpt("<c@x.example>").step == Step::cont));  // 3 of 3 recipients per hour
  v = c.rcpt("<d@x.example>");
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_TEST(v.reply.text.rfind("Sending quota of acme exceeded (3 recipients per hour); retry after ", 0) == 0,
             v.reply.text);
  v = c.end_of_message("Q7", actions);  // 1 message per minute: the second is deferred
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_TEST(v.reply.text.rfind("Sending quota of acme exceeded (1 message per minute)", 0) == 0, v.reply.text);
  BOOST_TEST(stored.back().reason == "quota");
  BOOST_TEST(stored.back().quota_charged_at_us == 0);
  BOOST_TEST(ledger.reserved("acme") == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_message_that_fails_after_its_charge_is_not_counted, Fixture) {
  policy::QuotaPolicy q;
  q.messages = {{60, 1}};
  Connection c(policy_config(q), services());
  actions.fail = true;  // Postfix refuses the header edit
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<a@x.example>");
  c.header("X-Cllavio-Stream", " default");
  BOOST_TEST((c.end_of_message("Q8", actions).step == Step::tempfail));
  actions.fail = false;
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<a@x.example>");
  BOOST_TEST((c.end_of_message("Q9", actions).step == Step::cont));  // the failed one gave its charge back
}

BOOST_FIXTURE_TEST_CASE(org_without_streams_leaves_the_stream_header_alone, Fixture) {
  // No streams anywhere: header edits are not even negotiated, so none may be attempted.
  Connection c(config(), services());
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<a@x.example>");
  c.header("X-Cllavio-Stream", " campaigns");
  actions.fail = true;
  BOOST_TEST((c.end_of_message("Q10", actions).step == Step::cont));
  BOOST_TEST(actions.calls.empty());
}

BOOST_FIXTURE_TEST_CASE(an_exception_after_the_charge_gives_it_back, Fixture) {
  policy::QuotaPolicy q;
  q.messages = {{60, 1}};
  Connection c(policy_config(q), services());
  actions.throw_on_add = true;  // List-Unsubscribe, after the charge
  c.mail("<news@acme.example>", "news@acme.example");
  c.rcpt("<a@x.example>");
  BOOST_CHECK_THROW(c.end_of_message("Q11", actions), std::runtime_error);  // the shell turns it into on_error
  actions.throw_on_add = false;
  c.mail("<news@acme.example>", "news@acme.example");
  c.rcpt("<a@x.example>");
  BOOST_TEST((c.end_of_message("Q12", actions).step == Step::cont));  // the quota of 1 was not used up
}
