#include "milter/shell.hpp"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>

#include <chrono>
#include <cstring>
#include <exception>

namespace cllavio::milter {

namespace {

Runtime* g_runtime = nullptr;
std::string g_conn;  // libmilter keeps the pointer given to smfi_setconn

// What libmilter keeps per connection (smfi_setpriv).
struct Context {
  Connection conn;
  unsigned long pflags = 0;    // protocol flags the MTA granted
  bool client_from_macros = false;  // no CONNECT step: the client comes with MAIL's macros
  bool reply_pending = false;  // end of message answered; libmilter writes the reply after we return
  Context(std::shared_ptr<const conf::Config> cfg) : conn(std::move(cfg), g_runtime->services()) {}
  ~Context() { reply_sent(); }

  // The MTA only sends the next command once it has read our reply.
  void reply_sent() {
    if (reply_pending) g_runtime->replies_pending.fetch_sub(1);
    reply_pending = false;
  }
  void reply_will_be_sent() {
    if (!reply_pending) g_runtime->replies_pending.fetch_add(1);
    reply_pending = true;
  }
};

// Times one milter step for cllavio_milter_step_duration_seconds (nothing without metrics).
class StepTimer {
 public:
  explicit StepTimer(const char* step) : step_(step), start_(std::chrono::steady_clock::now()) {}
  ~StepTimer() {
    if (metrics::Metrics* m = g_runtime->metrics.get())
      m->step(step_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  const char* step_;
  std::chrono::steady_clock::time_point start_;
};

Context* context(SMFICTX* ctx) {
  auto* c = static_cast<Context*>(smfi_getpriv(ctx));
  if (c == nullptr) {
    c = new Context(g_runtime->config());
    smfi_setpriv(ctx, c);
  }
  return c;
}

// MilterActions over libmilter (valid only in the end-of-message callback).
class SmfiActions : public MilterActions {
 public:
  SmfiActions(SMFICTX* ctx, bool leading_space) : ctx_(ctx), lead_(leading_space) {}
  bool replace_body(std::string_view body) override {
    // libmilter splits it into protocol-sized chunks itself.
    return smfi_replacebody(ctx_, reinterpret_cast<unsigned char*>(const_cast<char*>(body.data())),
                            static_cast<int>(body.size())) == MI_SUCCESS;
  }
  bool change_header(std::string_view name, int occurrence, std::string_view value) override {
    std::string n(name), v = header_value(value);
    return smfi_chgheader(ctx_, n.data(), occurrence, v.data()) == MI_SUCCESS;
  }
  bool remove_header(std::string_view name, int occurrence) override {
    std::string n(name);
    return smfi_chgheader(ctx_, n.data(), occurrence, nullptr) == MI_SUCCESS;
  }
  bool add_header(std::string_view name, std::string_view value) override {
    std::string n(name), v = header_value(value);
    return smfi_addheader(ctx_, n.data(), v.data()) == MI_SUCCESS;
  }
  bool delete_recipient(std::string_view rcpt) override {
    std::string r(rcpt);
    return smfi_delrcpt(ctx_, r.data()) == MI_SUCCESS;
  }

 private:
  // With SMFIP_HDR_LEADSPC the MTA takes values as given, so the space after ':' is ours to send.
  std::string header_value(std::string_view value) const { return (lead_ ? " " : "") + std::string(value); }
  SMFICTX* ctx_;
  bool lead_;
};

sfsistat to_smfis(SMFICTX* ctx, const Verdict& v, bool no_reply) {
  if (no_reply) return SMFIS_NOREPLY;
  switch (v.step) {
    case Step::cont: return SMFIS_CONTINUE;
    case Step::accept: return SMFIS_ACCEPT;
    case Step::reject:
    case Step::tempfail:
      if (!v.reply.rcode.empty() &&
          // Reply texts are single-line, printable and '%'-free (policy/decision.cpp).
          smfi_setreply(ctx, const_cast<char*>(v.reply.rcode.c_str()), const_cast<char*>(v.reply.xcode.c_str()),
                        const_cast<char*>(v.reply.text.c_str())) != MI_SUCCESS)
        g_runtime->log.warning("libmilter refused the reply text; Postfix sends its own " + v.reply.rcode + " text");
      return v.step == Step::reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
  }
  return SMFIS_CONTINUE;
}

// No session to ask (it could not even be allocated): [milter] on_error, from the current config.
sfsistat without_session() noexcept {
  try {
    return g_runtime->config()->milter.on_error == conf::OnError::accept ? SMFIS_ACCEPT : SMFIS_TEMPFAIL;
  } catch (...) {
    return SMFIS_TEMPFAIL;
  }
}

// Runs one session step; turns any exception into the on_error verdict.
template <class Fn>
sfsistat guarded(SMFICTX* ctx, const char* where, unsigned long nr_flag, Fn&& fn) {
  Context* c = nullptr;
  bool no_reply = false;
  try {
    c = context(ctx);
    no_reply = nr_flag != 0 && (c->pflags & nr_flag) != 0;
    Verdict v = fn(c->conn);
    // Released only now: a MAIL FROM after an end of message counts itself in flight
    // first, so the shutdown drain never sees neither.
    c->reply_sent();
    return to_smfis(ctx, v, no_reply);
  } catch (const std::exception& e) {
    if (c == nullptr) return without_session();
    return to_smfis(ctx, c->conn.internal_error(where, e.what(), no_reply), no_reply);
  } catch (...) {
    if (c == nullptr) return without_session();
    return to_smfis(ctx, c->conn.internal_error(where, "unknown exception", no_reply), no_reply);
  }
}

std::string address_text(const _SOCK_ADDR* sa) {
  if (sa == nullptr) return {};
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

sfsistat cb_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  try {
    if (g_runtime->stopping.load()) return SMFIS_REJECT;  // libmilter closes: the MTA's default action
    Context* c = context(ctx);
    // Steps we never use are skipped; steps whose reply we never change need no
    // round trip: Postfix sends them without waiting, so with a pipelining client
    // MAIL and RCPT reach us in one read instead of one wake-up of libmilter's worker
    // pool each. MAIL gets a reply only when some org refuses senders there
    // ([orgs] unknown = "reject"/"tempfail"); otherwise a refusal decided at MAIL
    // (shutting down, an internal error) is answered at the next step with a reply
    // (Connection::set_mail_no_reply). RCPT is answered only when some organization
    // has a quota, a recipient limit or suppression of unsubscribed recipients.
    const conf::Config& cfg = c->conn.config();
    unsigned long want = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOEOH | SMFIP_NR_CONN |
                         (cfg.orgs_settings.unknown == policy::UnknownOrg::accept ? SMFIP_NR_MAIL : 0) |
                         (cfg.any_rcpt_checks ? 0 : SMFIP_NR_RCPT) | SMFIP_NR_HDR | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC;
    // No CONNECT step either when the MTA sends the client's name and address with MAIL
    // (smfi_setsymlist: the macros we ask for, whatever milter_mail_macros says): one
    // wake-up of the worker pool less per connection.
    unsigned long actions = 0;
    if ((f0 & SMFIF_SETSYMLIST) != 0 && (f1 & SMFIP_NOCONNECT) != 0 &&
        smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("{auth_authen} {client_addr} {client_name}")) ==
            MI_SUCCESS) {
      want = (want & ~SMFIP_NR_CONN) | SMFIP_NOCONNECT;
      actions |= SMFIF_SETSYMLIST;
      c->client_from_macros = true;
    }
    c->pflags = want & f1;
    c->conn.set_mail_no_reply((c->pflags & SMFIP_NR_MAIL) != 0);
    // Message changes are requested only when some organization tracks or has streams.
    if (!cfg.tracking.empty() || cfg.any_modifications)
      actions |= SMFIF_CHGBODY | SMFIF_CHGHDRS | SMFIF_ADDHDRS | SMFIF_DELRCPT;
    *pf0 = f0 & actions;
    *pf1 = c->pflags;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
  } catch (...) {
    return SMFIS_ALL_OPTS;
  }
}

sfsistat cb_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  StepTimer timer("connect");
  return guarded(ctx, "connect", SMFIP_NR_CONN, [&](Connection& conn) {
    conn.connect(hostname ? hostname : "", address_text(addr));
    return Verdict{};
  });
}

sfsistat cb_envfrom(SMFICTX* ctx, char** argv) {
  StepTimer timer("mail");
  return guarded(ctx, "envfrom", SMFIP_NR_MAIL, [&](Connection& conn) {
    if (context(ctx)->client_from_macros) {
      const char* name = smfi_getsymval(ctx, const_cast<char*>("{client_name}"));
      const char* addr = smfi_getsymval(ctx, const_cast<char*>("{client_addr}"));
      conn.connect(name ? name : "", addr ? addr : "");
    }
    const char* login = smfi_getsymval(ctx, const_cast<char*>("{auth_authen}"));
    return conn.mail(argv && argv[0] ? argv[0] : "", login ? login : "");
  });
}

sfsistat cb_envrcpt(SMFICTX* ctx, char** argv) {
  StepTimer timer("rcpt");
  return guarded(ctx, "envrcpt", SMFIP_NR_RCPT, [&](Connection& conn) {
    return conn.rcpt(argv && argv[0] ? argv[0] : "");
  });
}

sfsistat cb_header(SMFICTX* ctx, char* name, char* value) {
  return guarded(ctx, "header", SMFIP_NR_HDR, [&](Connection& conn) {
    Context* c = context(ctx);
    std::string_view v = value ? value : "";
    if ((c->pflags & SMFIP_HDR_LEADSPC) == 0) {
      conn.header(name ? name : "", " " + std::string(v));  // the MTA dropped the space after ':'
    } else {
      conn.header(name ? name : "", v);
    }
    return Verdict{};
  });
}

sfsistat cb_body(SMFICTX* ctx, unsigned char* data, size_t len) {
  return guarded(ctx, "body", SMFIP_NR_BODY, [&](Connection& conn) {
    conn.body(std::string_view(reinterpret_cast<const char*>(data), len));
    return Verdict{};
  });
}

sfsistat cb_eom(SMFICTX* ctx) {
  StepTimer timer("eom");
  return guarded(ctx, "eom", 0, [&](Connection& conn) {
    // Counted before the message stops counting as in flight, so a drain never
    // sees neither while our reply is still unwritten.
    context(ctx)->reply_will_be_sent();
    const char* qid = smfi_getsymval(ctx, const_cast<char*>("i"));
    SmfiActions actions(ctx, (context(ctx)->pflags & SMFIP_HDR_LEADSPC) != 0);
    return conn.end_of_message(qid ? qid : "", actions);
  });
}

sfsistat cb_abort(SMFICTX* ctx) {
  guarded(ctx, "abort", 0, [&](Connection& conn) {
    conn.abort();
    return Verdict{};
  });
  return SMFIS_CONTINUE;
}

sfsistat cb_close(SMFICTX* ctx) {
  delete static_cast<Context*>(smfi_getpriv(ctx));
  smfi_setpriv(ctx, nullptr);
  return SMFIS_CONTINUE;
}

}  // namespace

std::string open_milter(Runtime& runtime) {
  g_runtime = &runtime;
  auto cfg = runtime.config();
  struct smfiDesc desc {};
  desc.xxfi_name = const_cast<char*>("cllavio-milter");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = SMFIF_CHGBODY | SMFIF_CHGHDRS | SMFIF_ADDHDRS | SMFIF_DELRCPT |
                    SMFIF_SETSYMLIST;  // narrowed per connection
  desc.xxfi_connect = cb_connect;
  desc.xxfi_envfrom = cb_envfrom;
  desc.xxfi_envrcpt = cb_envrcpt;
  desc.xxfi_header = cb_header;
  desc.xxfi_body = cb_body;
  desc.xxfi_eom = cb_eom;
  desc.xxfi_abort = cb_abort;
  desc.xxfi_close = cb_close;
  desc.xxfi_negotiate = cb_negotiate;

  g_conn = cfg->milter.socket.libmilter();
  if (smfi_setconn(g_conn.data()) != MI_SUCCESS) return "smfi_setconn(" + g_conn + ") failed";
  if (smfi_settimeout(cfg->milter.timeout_s) != MI_SUCCESS) return "smfi_settimeout failed";
  if (smfi_setbacklog(cfg->milter.backlog) != MI_SUCCESS) return "smfi_setbacklog failed";
  if (smfi_register(desc) != MI_SUCCESS) return "smfi_register failed";
  if (smfi_opensocket(true) != MI_SUCCESS)
    return "cannot listen on " + g_conn + " (address in use, or no permission?)";
  return {};
}

int run_milter() { return smfi_main() == MI_SUCCESS ? 0 : 1; }

}  // namespace cllavio::milter
