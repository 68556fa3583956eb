// cllavioctl rewrite / token verify: the milter's tracking step on a file, and tokens read back.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "milter/tracking_step.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

namespace {

constexpr auto kReplace = nlohmann::ordered_json::error_handler_t::replace;

std::shared_ptr<const conf::Config> load(const std::string& path) {
  auto r = conf::load_config(path);
  for (const auto& d : r.errors) std::fprintf(stderr, "%s\n", d.str().c_str());
  return r.config;
}

// An mbox "From " line is not part of the message: it is carried through as it is.
std::size_t from_line_length(std::string_view msg) {
  if (msg.substr(0, 5) != "From ") return 0;
  std::size_t nl = msg.find('\n');
  return nl == std::string_view::npos ? msg.size() : nl + 1;
}

// Where the header block ends (after its empty line), or the end of the message.
std::size_t header_length(std::string_view msg) {
  for (std::size_t pos = 0; pos < msg.size();) {
    std::size_t nl = msg.find('\n', pos);
    if (nl == std::string_view::npos) return msg.size();
    std::size_t len = nl - pos - (nl > pos && msg[nl - 1] == '\r' ? 1 : 0);
    if (len == 0) return nl + 1;
    pos = nl + 1;
  }
  return msg.size();
}

std::optional<std::uint64_t> parse_hex_id(const std::string& s) {
  if (s.empty() || s.size() > 16 || s.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    return std::nullopt;
  return std::stoull(s, nullptr, 16);
}

int usage_rewrite() {
  std::fprintf(stderr,
               "usage: cllavioctl [-c FILE] rewrite --org ID [--from ADDR] [--rcpt ADDR]... [--report FILE]\n"
               "                  [--message-id HEX] < in.eml > out.eml\n");
  return kExitUsage;
}

}  // namespace

int cmd_rewrite(const std::string& config_path, const Args& args) {
  std::string org, report_path, from;
  std::vector<std::string> rcpts;
  std::optional<std::uint64_t> message_id;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    const std::string& a = args[i];
    const std::string* v = nullptr;
    if (a == "--org" && (v = value())) org = *v;
    else if (a == "--from" && (v = value())) from = *v;  // for stream rules; tracking does not need it
    else if (a == "--rcpt" && (v = value())) rcpts.push_back(*v);
    else if (a == "--report" && (v = value())) report_path = *v;
    else if (a == "--message-id" && (v = value()) && (message_id = parse_hex_id(*v))) continue;
    else return usage_rewrite();
  }
  if (org.empty()) return usage_rewrite();
  auto cfg = load(config_path);
  if (!cfg) return conf::kExitConfig;
  if (cfg->orgs.find(org) == nullptr) {
    std::fprintf(stderr, "cllavioctl rewrite: no organization '%s' in the configuration\n", org.c_str());
    return kExitUsage;
  }

  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::string_view msg(input);
  std::size_t from_len = from_line_length(msg);
  std::string_view message = msg.substr(from_len);
  std::size_t hlen = header_length(message);
  std::string_view header = message.substr(0, hlen), body = message.substr(hlen);

  if (!message_id)
    message_id = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  std::vector<std::string> normalized;
  for (const auto& r : rcpts) normalized.push_back(r);
  milter::TrackRequest req{header, body, false, org, *message_id, &normalized};
  tracking::RewriteResult r = milter::track_message(*cfg, req);

  std::string out_header = tracking::apply_header_edits(header, r.header_edits);
  std::fwrite(msg.data(), 1, from_len, stdout);
  std::fwrite(out_header.data(), 1, out_header.size(), stdout);
  std::string_view out_body = r.changed ? std::string_view(r.body) : body;
  std::fwrite(out_body.data(), 1, out_body.size(), stdout);
  std::fflush(stdout);

  if (!report_path.empty()) {
    nlohmann::ordered_json j;
    j["changed"] = r.changed;
    j["skipped"] = r.skipped.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.skipped);
    j["parts_changed"] = r.parts_changed;
    j["links_rewritten"] = r.links.size();
    nlohmann::ordered_json kept = nlohmann::ordered_json::array();
    for (const auto& k : r.kept) kept.push_back({{"url", k.url}, {"why", k.why}});
    j["links_kept"] = std::move(kept);
    j["pixels"] = r.pixels;
    nlohmann::ordered_json links = nlohmann::ordered_json::array();
    for (const auto& l : r.links) links.push_back({{"index", l.index}, {"url", l.url}});
    j["links"] = std::move(links);
    j["old_pixels_removed"] = r.old_pixels_removed;
    j["old_links_restored"] = r.old_links_restored;
    j["message"] = store::format_id(*message_id);
    std::ofstream f(report_path, std::ios::binary | std::ios::trunc);
    f << j.dump(-1, ' ', false, kReplace) << "\n";
    if (!f) {
      std::fprintf(stderr, "cllavioctl rewrite: cannot write %s\n", report_path.c_str());
      return kExitUnavailable;
    }
  }
  return kExitOk;
}

int cmd_token(const std::string& config_path, const Args& args) {
  if (args.size() != 2 || args[0] != "verify") {
    std::fprintf(stderr, "usage: cllavioctl [-c FILE] token verify URL_OR_TOKEN\n");
    return kExitUsage;
  }
  auto cfg = load(config_path);
  if (!cfg) return conf::kExitConfig;
  auto r = cfg->tokens->verify_url_or_token(args[1]);
  if (auto* err = std::get_if<std::string>(&r)) {
    std::fprintf(stderr, "cllavioctl: token refused: %s\n", err->c_str());
    return kExitNotFound;
  }
  const auto& t = std::get<tracking::TokenData>(r);
  nlohmann::ordered_json j;
  j["kind"] = t.kind == tracking::TokenKind::open ? "open" : t.kind == tracking::TokenKind::click ? "click" : "unsubscribe";
  j["org"] = t.org;
  j["message"] = store::format_id(t.message);
  j["recipient"] = t.recipient ? nlohmann::ordered_json(*t.recipient) : nlohmann::ordered_json(nullptr);
  j["link"] = t.link;
  j["url"] = t.kind == tracking::TokenKind::click ? nlohmann::ordered_json(t.url) : nlohmann::ordered_json(nullptr);
  if (t.kind == tracking::TokenKind::unsubscribe) j["stream"] = t.url;
  j["key_id"] = t.key_id;
  std::printf("%s\n", j.dump(-1, ' ', false, kReplace).c_str());
  return kExitOk;
}

}  // namespace cllavio::cli
