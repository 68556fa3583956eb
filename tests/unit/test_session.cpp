#define BOOST_TEST_MODULE session
#include <boost/test/unit_test.hpp>

#include "session_fixture.hpp"

using namespace session_test;

namespace {

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
  std::shared_ptr<const conf::Config> current = config(policy::UnknownOrg::reject);
  Connection pinned(current, services());
  current = config(policy::UnknownOrg::accept);  // SIGHUP: the daemon swaps its snapshot
  Connection fresh(current, services());
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

// SMFIP_NR_MAIL: Postfix does not wait for MAIL's answer, so a refusal decided there is
// answered at the next step that gets a reply (RCPT when answered, else end of message).
BOOST_FIXTURE_TEST_CASE(a_refusal_at_an_unanswered_mail_is_answered_at_the_next_reply, Fixture) {
  draining = true;
  Connection c(config(policy::UnknownOrg::accept, conf::OnError::tempfail), services());
  c.set_mail_no_reply(true);
  BOOST_TEST((c.mail("<a@acme.example>", "").step == Step::tempfail));
  auto r = c.rcpt("<b@example.net>");
  BOOST_TEST((r.step == Step::tempfail));
  BOOST_TEST(r.reply.rcode == "451");
  auto e = c.end_of_message("Q1", actions);
  BOOST_TEST((e.step == Step::tempfail));
  BOOST_TEST(e.reply.rcode == "451");
  BOOST_TEST(stored.empty());
  // Answered once: the connection's next transaction starts clean.
  draining = false;
  BOOST_TEST((c.mail("<a@acme.example>", "").step == Step::cont));
  BOOST_TEST((c.rcpt("<b@example.net>").step == Step::cont));
  BOOST_TEST((c.end_of_message("Q2", actions).step != Step::tempfail));
  BOOST_TEST(stored.size() == 1u);
  // An aborted transaction forgets it too.
  draining = true;
  c.mail("<a@acme.example>", "");
  c.abort();
  draining = false;
  c.mail("<a@acme.example>", "");
  BOOST_TEST((c.end_of_message("Q3", actions).step != Step::tempfail));
  // An internal error at an unanswered MAIL is answered the same way.
  Connection d(config(policy::UnknownOrg::accept, conf::OnError::tempfail), services());
  d.set_mail_no_reply(true);
  d.internal_error("envfrom", "boom", true);
  BOOST_TEST((d.end_of_message("Q4", actions).step == Step::tempfail));
}

// Answered MAIL (the default): the refusal is MAIL's own answer and nothing is carried over.
BOOST_FIXTURE_TEST_CASE(an_answered_mail_carries_no_refusal_over, Fixture) {
  draining = true;
  Connection c(config(policy::UnknownOrg::accept, conf::OnError::tempfail), services());
  BOOST_TEST((c.mail("<a@acme.example>", "").step == Step::tempfail));
  BOOST_TEST((c.rcpt("<b@example.net>").step == Step::cont));
  BOOST_TEST((c.end_of_message("Q1", actions).step == Step::cont));
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

namespace {
std::shared_ptr<const conf::Config> compact_config() {
  auto cfg = std::const_pointer_cast<conf::Config>(tracking_config());
  cfg->tracking["acme"].token_version = 2;
  cfg->milter.on_error = conf::OnError::accept;
  return cfg;
}
}  // namespace

// A message carrying compact tokens must not leave without its record (and so its event):
// its links would resolve nowhere. on_error = accept still lets version 1 mail through.
BOOST_FIXTURE_TEST_CASE(compact_tokens_without_a_record_tempfail, Fixture) {
  {
    auto v1 = std::const_pointer_cast<conf::Config>(tracking_config());
    v1->milter.on_error = conf::OnError::accept;
    Connection c(v1, services());
    send_html(c);
    fail_with = EIO;
    BOOST_TEST((c.end_of_message("QV1", actions).step == Step::accept));
  }
  Connection c(compact_config(), services());
  send_html(c);
  fail_with = EIO;
  BOOST_TEST((c.end_of_message("QV2", actions).step == Step::tempfail));
  BOOST_TEST(logged("QV2: a message with compact tokens could not be recorded; tempfailing it"),
             log_text());
  BOOST_TEST(logged("action=tempfail reason=store_error"), log_text());
}

// The daemon's link tables reach the rewrite: a quoted compact click is put back and
// tracked for the new message.
BOOST_FIXTURE_TEST_CASE(quoted_compact_clicks_resolve_through_the_services, Fixture) {
  auto cfg = compact_config();
  std::string first_body;
  std::uint64_t first_id = 0;
  {
    Connection c(cfg, services());
    send_html(c);
    BOOST_REQUIRE((c.end_of_message("QA", actions).step == Step::cont));
    first_body = actions.body;
    first_id = stored.at(0).id;
  }
  BOOST_TEST(first_body.find("example.com/a") == std::string::npos);
  milter::Services svc = services();
  int lookups = 0;
  svc.old_links = [&](const std::string& org, std::uint64_t message) -> std::optional<std::vector<tracking::TrackedLink>> {
    ++lookups;
    if (org != "acme" || message != first_id) return std::nullopt;
    std::vector<tracking::TrackedLink> out;
    for (const auto& l : stored.at(0).tracking.links) out.push_back({l.index, l.url});
    return out;
  };
  Connection c(cfg, svc);
  c.mail("<support@acme.example>", "support@acme.example");
  c.rcpt("<carol@example.org>");
  c.header("Content-Type", " text/html; charset=utf-8");
  c.body("<html><body><blockquote>" + first_body + "</blockquote></body></html>\r\n");
  BOOST_REQUIRE((c.end_of_message("QB", actions).step == Step::cont));
  BOOST_TEST(lookups == 1);
  BOOST_REQUIRE_EQUAL(stored.size(), 2u);
  BOOST_REQUIRE_EQUAL(stored[1].tracking.links.size(), 1u);
  BOOST_TEST(stored[1].tracking.links[0].url == "https://example.com/a?x=1&y=2");
  std::size_t p = actions.body.find("https://t.acme.example/c/");
  auto tok = cfg->tokens->verify_url_or_token(actions.body.substr(p, actions.body.find('"', p) - p));
  BOOST_REQUIRE(std::holds_alternative<tracking::TokenData>(tok));
  BOOST_TEST(std::get<tracking::TokenData>(tok).message == stored[1].id);
  BOOST_TEST(std::get<tracking::TokenData>(tok).version == 2);
}

// A full outbox drops a version 1 message's event (counted, logged) but fails the write
// of a message with compact tokens, which then waits in Postfix's queue.
BOOST_FIXTURE_TEST_CASE(compact_tokens_need_their_event_queued, Fixture) {
  outbox_full = true;
  {
    auto v1 = std::const_pointer_cast<conf::Config>(tracking_config());
    v1->milter.on_error = conf::OnError::accept;
    Connection c(v1, services());
    send_html(c);
    BOOST_TEST((c.end_of_message("QO1", actions).step == Step::cont));
    BOOST_TEST(stored.size() == 1u);
  }
  Connection c(compact_config(), services());
  send_html(c);
  BOOST_TEST((c.end_of_message("QO2", actions).step == Step::tempfail));
  BOOST_TEST(stored.size() == 1u);  // nothing written for it
  BOOST_TEST(logged("QO2: message not recorded: OUTBOX FULL"), log_text());
  // An org with compact tokens whose message got none (tracking skipped): not required.
  send_html(c, "off");
  BOOST_TEST((c.end_of_message("QO3", actions).step == Step::cont));
  BOOST_TEST(stored.size() == 2u);
}
