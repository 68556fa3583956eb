#define BOOST_TEST_MODULE session_policy
#include <boost/test/unit_test.hpp>

#include "session_fixture.hpp"

using namespace session_test;

// Streams, suppression, consent and quotas in the session (core/plan.cpp through milter/session.cpp).

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

BOOST_FIXTURE_TEST_CASE(a_bounced_address_is_refused_by_campaigns_only, Fixture) {
  consents["acme gone@example.net"] = policy::ConsentState::bounced;
  Connection c(policy_config(), services());
  c.mail("<news@acme.example>", "news@acme.example");  // campaigns
  auto v = c.rcpt("<gone@example.net>");
  BOOST_TEST((v.step == Step::reject));
  BOOST_TEST(v.reply.rcode == "550");
  BOOST_TEST(v.reply.xcode == "5.1.1");
  BOOST_TEST(v.reply.text == "<gone@example.net> bounced permanently; not sent to again by acme");
  c.abort();
  c.mail("<alice@acme.example>", "alice@acme.example");  // person-to-person
  BOOST_TEST((c.rcpt("<gone@example.net>").step == Step::cont));
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

// A shared ledger that cannot be asked (on_backend_error = "tempfail"): 451 4.3.0 at RCPT
// and at end of message, even for an org whose quota action is reject; the record keeps
// the charge's transaction id when one is made.
namespace {
struct UnavailableBackend : core::LocalQuota {
  bool down = true;
  std::optional<policy::QuotaRefusal> reserve(const core::TxnId& t, const std::string& org, const policy::QuotaPolicy& p,
                                              std::int64_t now) override {
    if (down) return policy::QuotaRefusal{true, p.recipients.at(0), std::nullopt, true};
    return LocalQuota::reserve(t, org, p, now);
  }
  std::optional<policy::QuotaRefusal> charge(const core::TxnId& t, const std::string& org, const policy::QuotaPolicy& p,
                                             std::uint64_t rcpts, std::uint64_t reserved, std::int64_t now,
                                             std::int64_t& at) override {
    if (down) return policy::QuotaRefusal{false, p.messages.at(0), std::nullopt, true};
    return LocalQuota::charge(t, org, p, rcpts, reserved, now, at);
  }
};
}  // namespace

BOOST_FIXTURE_TEST_CASE(an_unavailable_shared_ledger_defers_even_when_the_action_is_reject, Fixture) {
  policy::QuotaPolicy q;
  q.recipients = {{3600, 100}};
  q.messages = {{3600, 100}};
  q.action = policy::QuotaAction::reject;
  UnavailableBackend backend;
  cllavio::milter::Services svc = services();
  svc.quota = &backend;
  Connection c(policy_config(q), svc);
  c.mail("<alice@acme.example>", "alice@acme.example");
  auto v = c.rcpt("<a@x.example>");
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_TEST(v.reply.rcode == "451");
  BOOST_TEST(v.reply.xcode == "4.3.0");
  backend.down = false;
  BOOST_TEST((c.rcpt("<b@x.example>").step == Step::cont));
  backend.down = true;
  v = c.end_of_message("Q20", actions);
  BOOST_TEST((v.step == Step::tempfail));
  BOOST_TEST(v.reply.xcode == "4.3.0");
  BOOST_TEST(v.reply.text == "Sending quota of acme cannot be checked now; try again later");
  backend.down = false;
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<b@x.example>");
  BOOST_TEST((c.end_of_message("Q21", actions).step == Step::cont));
  BOOST_TEST(stored.back().quota_txn.size() == 32u);
  BOOST_TEST(core::TxnId::parse(stored.back().quota_txn).has_value());
}

// What the session counts for /metrics: answers, refusals by reason, quota use.
BOOST_FIXTURE_TEST_CASE(metrics_count_answers_refusals_and_quota_use, Fixture) {
  metrics::Metrics m;
  m.refresh_labels({"acme"}, {"messages:1m", "recipients:1h"});
  milter::Services svc = services();
  svc.metrics = &m;
  svc.quota_usage = [this](const std::string& org, const policy::QuotaPolicy& p, std::int64_t now) {
    return ledger.usage(org, p, now);
  };
  policy::QuotaPolicy q;
  q.max_recipients_per_message = 2;
  q.recipients = {{3600, 3}};
  q.messages = {{60, 1}};
  Connection c(policy_config(q), svc);
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<a@x.example>");
  c.rcpt("<b@x.example>");
  c.rcpt("<c@x.example>");  // over the recipient limit
  BOOST_TEST((c.end_of_message("Q6", actions).step == Step::cont));
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<c@x.example>");
  c.rcpt("<d@x.example>");                                              // over 3 recipients per hour
  BOOST_TEST((c.end_of_message("Q7", actions).step == Step::tempfail));  // over 1 message per minute

  Connection u(config(policy::UnknownOrg::reject), svc);
  BOOST_TEST((u.mail("<x@stranger.example>", "").step == Step::reject));

  std::string t = m.render();
  auto has = [&](const std::string& line) {
    BOOST_TEST(t.find(line + "\n") != std::string::npos, line);
  };
  has("cllavio_messages_total{org=\"acme\",action=\"accept\"} 1");
  has("cllavio_messages_total{org=\"acme\",action=\"tempfail\"} 1");
  has("cllavio_messages_total{org=\"unknown\",action=\"reject\"} 1");
  has("cllavio_policy_refusals_total{org=\"acme\",reason=\"recipient_limit\"} 1");
  has("cllavio_policy_refusals_total{org=\"acme\",reason=\"quota\"} 2");
  has("cllavio_policy_refusals_total{org=\"unknown\",reason=\"unknown_org\"} 1");
  has("cllavio_quota_used{org=\"acme\",window=\"messages:1m\"} 1");
  has("cllavio_quota_used{org=\"acme\",window=\"recipients:1h\"} 2");  // charged only: reservations in flight are not use
}

// When the record cannot be written, on_error decides only for mail that would have
// passed: a message refused by policy stays refused (before, on_error = accept let an
// over-quota message through), with its reason, and charges nothing.
BOOST_FIXTURE_TEST_CASE(a_refusal_stays_a_refusal_when_the_store_fails, Fixture) {
  policy::QuotaPolicy q;
  q.messages = {{60, 1}};
  auto cfg = std::const_pointer_cast<conf::Config>(policy_config(q));
  cfg->milter.on_error = conf::OnError::accept;
  Connection c(cfg, services());
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<a@x.example>");
  BOOST_TEST((c.end_of_message("Q1", actions).step == Step::cont));
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<b@x.example>");
  fail_with = EIO;
  BOOST_TEST((c.end_of_message("Q2", actions).step == Step::tempfail));  // over 1 message per minute
  BOOST_TEST(logged("Q2: org=acme"), log_text());
  BOOST_TEST(logged("action=tempfail reason=quota"), log_text());
  // Store back: the quota still counts one message (the refused one was not charged).
  fail_with = 0;
  c.mail("<alice@acme.example>", "alice@acme.example");
  c.rcpt("<c@x.example>");
  BOOST_TEST((c.end_of_message("Q3", actions).step == Step::tempfail));
}
