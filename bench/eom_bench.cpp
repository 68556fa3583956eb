// Milter CPU per message outside Postfix: the per-message path the daemon runs from MAIL
// FROM to end of message (milter::Connection with the daemon's own Services: Runtime's
// recorder over a real store, the local quota ledger, consent read from the store), with a
// recording fake MilterActions in place of libmilter. Messages are bench/mailpath.py's
// (tracked_message(), message()), sent as Postfix sends them to a milter: its Received
// header, then each header field, then the body in 64 KiB chunks.
//
//   eom_bench [ROUNDS] [MESSAGES_PER_ROUND] [ONLY]   (default 15 rounds of 200 messages; ONLY: the
//                                                      configurations whose name contains it, for perf)
//   eom_bench --write DIR                      (the four messages, to compare with mailpath.py's)
//
// Configurations (each with [store] sync "none" and "meta", one store per sync mode):
//   plain-N      org without tracking, message(N)        (the base of policy-N)
//   policy-N     ORG_POLICY: campaign stream, quotas, suppression; message(N)
//   untracked-N  org without tracking, tracked_message(N) (the base of tracked-N)
//   tracked-N    org with opens and clicks, tracked_message(N)
//   compact-N    the same org with token_version = 2 (compact tokens), tracked_message(N)
// Prints the median over rounds of thread CPU microseconds per message, and the median of
// per-round ratios to the configuration's base (same round: drift of the shared machine
// cancels). Then a token-only line: MessageSigner::append_url per link (ns/link).
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "conf/loader.hpp"
#include "milter/runtime.hpp"
#include "milter/session.hpp"
#include "tracking/token.hpp"

using namespace cllavio;
namespace fs = std::filesystem;

namespace {

// ---- bench/mailpath.py, ported exactly -------------------------------------------------
const std::string kOrg = "id = \"bench\"\ndomains = [\"bench.example\"]\nnetworks = [\"127.0.0.0/8\"]\n";
const std::string kOrgTracked =
    "id = \"track\"\ndomains = [\"track.example\"]\nnetworks = [\"127.0.0.0/8\"]\n"
    "[tracking]\nopens = true\nclicks = true\ndomain = \"t.track.example\"\nconsent = \"implied\"\n";
const std::string kOrgPolicy =
    kOrg +
    "[[stream]]\nname = \"campaigns\"\nsenders = [\"news@bench.example\"]\nkind = \"campaign\"\n"
    "[quota]\nmessages = [{ per = \"1m\", max = 1000000 }, { per = \"1d\", max = 100000000 }]\n"
    "recipients = [{ per = \"1h\", max = 100000000 }]\nmax_recipients_per_message = 1000\n";
const std::string kSecrets =
    "[[tracking_key]]\nid = \"bench\"\nsecret = \"YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktYmVuY2gta2V5\"\n"
    "[api]\nsigning_secret = \"bench-signing-secret-0123\"\n[api.org_keys]\ntrack = \"bench-track-key\"\n";

std::string tracked_message(int size_kb) {
  std::string head =
      "From: News <news@track.example>\r\nTo: <rcpt@example.net>\r\nSubject: benchmark\r\n"
      "Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <bench@track.example>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n";
  std::string lines;
  for (int n = 0; head.size() + lines.size() < static_cast<std::size_t>(size_kb) * 1024 - 40; ++n) {
    std::string s = std::to_string(n);
    lines += "<a href=\"https://shop.example.com/p/" + s + "?utm_source=nl&amp;id=" + s + "\">Item " + s +
             "</a> new today<br>\r\n";
  }
  return head + lines + "</body></html>\r\n";
}

std::string message(int size_kb) {
  std::string head =
      "From: Bench <news@bench.example>\r\nTo: <rcpt@example.net>\r\nSubject: benchmark\r\n"
      "Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <bench@bench.example>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n";
  const std::string para =
      "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
      "labore et dolore magna aliqua.";
  const std::size_t target = static_cast<std::size_t>(size_kb) * 1024;
  std::string text, html;
  for (int n = 0; head.size() + text.size() + html.size() < target - 400; ++n) {
    std::string s = std::to_string(n);
    text += para + "\r\n";
    html += "<p>" + para + " <a href=\"https://www.example.com/p/" + s + "?utm_source=x&amp;id=" + s +
            "\">more</a></p>\r\n";
  }
  return head + "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
         "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n" + html +
         "</body></html>\r\n--b--\r\n";
}

// ---- a message as the MTA hands it to a milter ------------------------------------------
struct Wire {
  std::vector<std::pair<std::string, std::string>> headers;  // value with its leading space
  std::vector<std::string> chunks;                           // body, 64 KiB at most each
};

Wire split(const std::string& msg) {
  Wire w;
  // Postfix's own Received header comes first (folds as bare LF, as the MTA sends them).
  w.headers.emplace_back("Received",
                         " from localhost (localhost [127.0.0.1])\n\tby bench.example (Postfix) with ESMTP id "
                         "4F3A1C2B9D\n\tfor <rcpt@example.net>; Mon,  2 Jan 2023 10:00:00 +0000 (UTC)");
  std::size_t end = msg.find("\r\n\r\n");
  if (end == std::string::npos) throw std::runtime_error("message without a header block");
  for (std::size_t pos = 0; pos < end;) {
    std::size_t eol = msg.find("\r\n", pos);
    std::string line = msg.substr(pos, eol - pos);
    std::size_t colon = line.find(':');
    w.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    pos = eol + 2;
  }
  const std::string body = msg.substr(end + 4);
  for (std::size_t pos = 0; pos < body.size(); pos += 65535) w.chunks.push_back(body.substr(pos, 65535));
  return w;
}

struct NullActions : core::MilterActions {
  std::size_t calls = 0;
  bool replace_body(std::string_view) override { return ++calls, true; }
  bool change_header(std::string_view, int, std::string_view) override { return ++calls, true; }
  bool remove_header(std::string_view, int) override { return ++calls, true; }
  bool add_header(std::string_view, std::string_view) override { return ++calls, true; }
  bool delete_recipient(std::string_view) override { return ++calls, true; }
};

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void write_file(const fs::path& p, const std::string& text, mode_t mode = 0644) {
  std::ofstream(p) << text;
  ::chmod(p.c_str(), mode);
}

// A config directory as the harness writes it; loaded by the daemon's loader.
std::shared_ptr<const conf::Config> load(const fs::path& dir, const std::map<std::string, std::string>& orgs,
                                         const std::string& main_extra = "") {
  fs::create_directories(dir / "orgs.d");
  write_file(dir / "secrets.toml", kSecrets, 0600);
  write_file(dir / "cllavio.toml", "[store]\npath = \"" + (dir / "store").string() +
                                       "\"\n[orgs]\ndir = \"orgs.d\"\n[secrets]\nfile = \"secrets.toml\"\n" +
                                       main_extra);
  for (const auto& [name, text] : orgs) write_file(dir / "orgs.d" / (name + ".toml"), text);
  conf::LoadResult r = conf::load_config((dir / "cllavio.toml").string());
  if (!r.config) {
    for (const auto& d : r.errors) std::fprintf(stderr, "%s:%u: %s\n", d.file.c_str(), d.line, d.message.c_str());
    throw std::runtime_error("configuration refused");
  }
  return r.config;
}

// One daemon's worth of state: the runtime over its own store.
struct Daemon {
  milter::Runtime rt;
  Daemon(const fs::path& store_dir, store::Sync sync, std::shared_ptr<const conf::Config> cfg) {
    rt.set_config(std::move(cfg));  // what the recorder reads ([api] max_outbox_mb)
    rt.log.configure(conf::LogTarget::stderr_stream, conf::LogLevel::info);
    rt.log.capture([](conf::LogLevel, const std::string&) {});  // lines are built, not written
    store::StoreOptions so;
    so.dir = store_dir.string();
    so.sync = sync;
    so.map_size_mb = 4096;
    so.exclusive = true;
    rt.open(std::make_unique<store::Db>(so));
  }
};

struct Config {
  std::string name, base;  // base: the configuration its ratio is taken against
  std::shared_ptr<const conf::Config> cfg;
  Daemon* daemon;
  std::string sender;
  Wire wire;
};

// `count` transactions on one connection; thread CPU microseconds per message.
double run(const Config& c, int count) {
  milter::Connection conn(c.cfg, c.daemon->rt.services());
  conn.connect("localhost", "127.0.0.1");
  NullActions actions;
  double t0 = thread_cpu_us();
  for (int i = 0; i < count; ++i) {
    if (conn.mail("<" + c.sender + ">", "").step != core::Step::cont) throw std::runtime_error("MAIL refused");
    if (conn.rcpt("<rcpt@example.net>").step != core::Step::cont) throw std::runtime_error("RCPT refused");
    for (const auto& [n, v] : c.wire.headers) conn.header(n, v);
    for (const auto& ch : c.wire.chunks) conn.body(ch);
    if (conn.end_of_message("4F3A1C2B9D", actions).step != core::Step::cont)
      throw std::runtime_error(c.name + ": end of message not accepted");
  }
  return (thread_cpu_us() - t0) / count;
}

void token_line(const conf::Config& cfg, const std::string& tracked50) {
  // The 50 KiB newsletter's destinations, entity-decoded as the engine signs them.
  std::vector<std::string> urls;
  for (std::size_t p = 0; (p = tracked50.find("href=\"", p)) != std::string::npos;) {
    p += 6;
    std::string u = tracked50.substr(p, tracked50.find('"', p) - p);
    if (auto a = u.find("&amp;"); a != std::string::npos) u.replace(a, 5, "&");
    urls.push_back(u);
  }
  tracking::MessageSigner signer(*cfg.tokens, "track", 0x0123456789abcdefULL, std::string("rcpt@example.net"));
  std::string out;
  out.reserve(256);
  std::vector<double> ns;
  for (int round = 0; round < 15; ++round) {
    double t0 = thread_cpu_us();
    int n = 0;
    for (int rep = 0; rep < 20; ++rep)
      for (std::size_t i = 0; i < urls.size(); ++i, ++n) {
        out.clear();
        signer.append_url("t.track.example", tracking::TokenKind::click, static_cast<std::uint32_t>(i + 1), urls[i], out);
      }
    ns.push_back((thread_cpu_us() - t0) * 1e3 / n);
  }
  std::printf("\ntoken: MessageSigner::append_url, %zu links of the 50 KB newsletter: %.0f ns/link (median of 15)\n",
              urls.size(), median(ns));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write") {
    for (int kb : {5, 50}) {
      write_file(fs::path(argv[2]) / ("html-" + std::to_string(kb) + "k.eml"), tracked_message(kb));
      write_file(fs::path(argv[2]) / ("bench-" + std::to_string(kb) + "k.eml"), message(kb));
    }
    return 0;
  }
  milter::tune_allocator();  // as the daemon does first
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
  const int per_round = argc > 2 ? std::atoi(argv[2]) : 200;
  const std::string only = argc > 3 ? argv[3] : "";
  fs::path tmp = fs::temp_directory_path() / ("eom_bench." + std::to_string(::getpid()));
  fs::create_directories(tmp);
  int rc = 0;
  try {
    auto cfg_tracking = load(tmp / "conf-tracking", {{"bench", kOrg}, {"track", kOrgTracked}});
    auto cfg_policy = load(tmp / "conf-policy", {{"bench", kOrgPolicy}});
    // Compact tokens need api.url (nothing is sent here: no forwarder runs).
    auto cfg_compact = load(tmp / "conf-compact", {{"bench", kOrg}, {"track", kOrgTracked + "token_version = 2\n"}},
                            "[api]\nurl = \"https://api.bench.invalid\"\n");
    const std::string html5 = tracked_message(5), html50 = tracked_message(50);
    const std::string mail5 = message(5), mail50 = message(50);

    std::vector<std::unique_ptr<Daemon>> daemons;
    std::vector<Config> configs;
    for (auto [sync, sync_name] : {std::pair{store::Sync::none, "none"}, std::pair{store::Sync::meta, "meta"}}) {
      daemons.push_back(std::make_unique<Daemon>(tmp / (std::string("store-") + sync_name), sync, cfg_tracking));
      Daemon* d = daemons.back().get();
      std::string s = std::string("/") + sync_name;
      for (auto [kb, mail, html] : {std::tuple{5, &mail5, &html5}, std::tuple{50, &mail50, &html50}}) {
        std::string k = std::to_string(kb);
        configs.push_back({"plain-" + k + s, "", cfg_tracking, d, "news@bench.example", split(*mail)});
        configs.push_back({"policy-" + k + s, "plain-" + k + s, cfg_policy, d, "news@bench.example", split(*mail)});
        configs.push_back({"untracked-" + k + s, "", cfg_tracking, d, "news@bench.example", split(*html)});
        configs.push_back({"tracked-" + k + s, "untracked-" + k + s, cfg_tracking, d, "news@track.example", split(*html)});
        configs.push_back({"compact-" + k + s, "untracked-" + k + s, cfg_compact, d, "news@track.example", split(*html)});
      }
    }
    if (!only.empty()) {  // the configurations named so, and their bases
      std::set<std::string> keep;
      for (const auto& c : configs)
        if (c.name.find(only) != std::string::npos) keep.insert({c.name, c.base});
      std::erase_if(configs, [&](const Config& c) { return keep.count(c.name) == 0; });
    }
    for (const auto& c : configs) run(c, 20);  // warm-up, not measured
    std::map<std::string, std::vector<double>> us;
    for (int r = 0; r < rounds; ++r)
      for (const auto& c : configs) us[c.name].push_back(run(c, per_round));

    std::printf("eom_bench: %d rounds x %d messages per configuration (interleaved); thread CPU, medians\n", rounds,
                per_round);
    std::printf("%-20s %12s %10s %12s\n", "configuration", "us/msg", "x base", "+us vs base");
    for (const auto& c : configs) {
      const auto& v = us[c.name];
      if (c.base.empty()) {
        std::printf("%-20s %12.1f %10s %12s\n", c.name.c_str(), median(v), "-", "-");
        continue;
      }
      const auto& b = us[c.base];
      std::vector<double> ratio, diff;
      for (std::size_t i = 0; i < v.size(); ++i) {
        ratio.push_back(v[i] / b[i]);
        diff.push_back(v[i] - b[i]);
      }
      std::printf("%-20s %12.1f %10.2f %12.1f\n", c.name.c_str(), median(v), median(ratio), median(diff));
    }
    token_line(*cfg_tracking, html50);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eom_bench: %s\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return rc;
}
