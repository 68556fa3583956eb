// cllavioctl rewrite: a message file through the milter's own end-of-message plan.
//
// The file goes through the same steps as a message the milter sees: MAIL FROM (the
// org given with --org, the sender with --from), RCPT TO (recipient limit and
// suppression of unsubscribed recipients, with the store's consent), every header
// field and the body (core::MessageState), then core::plan_end_of_message (stream,
// late suppression, List-Unsubscribe, consent for tracking, tracking) and the plan
// applied to the file as Postfix applies it. Consent is read from the configured store
// (read-only); quotas are not charged. stdout gets exactly the bytes the milter would
// send (an mbox "From " line is carried through); --report writes what happened.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "core/plan.hpp"
#include "core/tracking_step.hpp"
#include "policy/address.hpp"
#include "store/db.hpp"
#include "store/existing.hpp"
#include "tracking/mime.hpp"

namespace cllavio::cli {

namespace {

using json = nlohmann::ordered_json;
constexpr auto kReplace = json::error_handler_t::replace;

struct RewriteArgs {
  std::string org, from, stream, report_path;
  std::vector<std::string> rcpts;
  std::optional<std::uint64_t> message_id;
};

int usage_rewrite() {
  std::fprintf(stderr,
               "usage: cllavioctl [-c FILE] rewrite --org ID [--from ADDR] [--rcpt ADDR]... [--stream NAME]\n"
               "                  [--message-id HEX] [--report FILE] < in.eml > out.eml\n");
  return kExitUsage;
}

std::optional<std::uint64_t> parse_hex_id(const std::string& s) {
  if (s.empty() || s.size() > 16 || s.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    return std::nullopt;
  return std::stoull(s, nullptr, 16);
}

std::optional<RewriteArgs> parse_args(const Args& args) {
  RewriteArgs a;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    if (i + 1 >= args.size()) return std::nullopt;
    const std::string& v = args[++i];
    if (k == "--org") a.org = v;
    else if (k == "--from") a.from = v;
    else if (k == "--rcpt") a.rcpts.push_back(v);
    else if (k == "--stream") a.stream = v;
    else if (k == "--report") a.report_path = v;
    else if (k == "--message-id" && (a.message_id = parse_hex_id(v))) continue;
    else return std::nullopt;
  }
  if (a.org.empty()) return std::nullopt;
  return a;
}

// An mbox "From " line is not part of the message: it is carried through as it is.
std::size_t from_line_length(std::string_view msg) {
  if (msg.substr(0, 5) != "From ") return 0;
  std::size_t nl = msg.find('\n');
  return nl == std::string_view::npos ? msg.size() : nl + 1;
}

// Where the header block ends as Postfix reads it: after the empty line, or at the first
// line that is neither a header field nor a continuation (Postfix then starts the body
// there, and writes an empty line before it: apply_to_message does the same).
std::size_t header_length(std::string_view msg) {
  std::size_t pos = 0;
  bool in_field = false;
  while (pos < msg.size()) {
    std::size_t nl = msg.find('\n', pos);
    std::size_t next = nl == std::string_view::npos ? msg.size() : nl + 1;
    std::string_view line = msg.substr(pos, (nl == std::string_view::npos ? msg.size() : nl) - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return next;  // the empty line ends the block and belongs to it
    if (line.front() == ' ' || line.front() == '\t') {
      if (!in_field) return pos;
    } else {
      std::size_t colon = line.find(':');
      std::string_view name = line.substr(0, colon == std::string_view::npos ? 0 : colon);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
      bool ok = !name.empty();
      for (char c : name) ok = ok && static_cast<unsigned char>(c) > 32 && static_cast<unsigned char>(c) < 127;
      if (!ok) return pos;
      in_field = true;
    }
    pos = next;
  }
  return msg.size();
}

// The store's consent, read-only; without a store (a preview on another machine) every
// recipient has none recorded, and the caller says so.
core::ConsentLookup consent_lookup(std::shared_ptr<store::Db> db) {
  if (!db) return {};
  return [db](const std::string& org, const std::string& address) { return db->read()->consent.get(org, address).state; };
}

std::shared_ptr<store::Db> open_consent_store(const conf::Config& cfg) {
  try {
    return std::make_shared<store::Db>(store::existing_store(cfg.store.path, cfg.store.map_size_mb));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cllavioctl rewrite: warning: %s; consent as if nothing were recorded\n", e.what());
    return nullptr;
  }
}

json report_json(const core::EomPlan& plan, const std::vector<std::string>& refused) {
  const store::MessageRecord& rec = plan.record;
  const tracking::RewriteResult empty;
  const tracking::RewriteResult& r = plan.rewrite ? *plan.rewrite : empty;
  json j;
  j["changed"] = plan.body.has_value();  // the body (header edits are listed below)
  j["skipped"] = r.skipped.empty() ? (rec.tracking.skipped.empty() ? json(nullptr) : json(rec.tracking.skipped))
                                   : json(r.skipped);
  j["parts_changed"] = r.parts_changed;
  j["links_rewritten"] = rec.tracking.links.size();
  json kept = json::array();
  for (const auto& k : r.kept) kept.push_back({{"url", k.url}, {"why", k.why}});
  j["links_kept"] = std::move(kept);
  j["pixels"] = r.pixels;
  j["pixel_skipped"] = r.pixel_skipped.empty() ? json(nullptr) : json(r.pixel_skipped);
  json links = json::array();
  for (const auto& l : rec.tracking.links) links.push_back({{"index", l.index}, {"url", l.url}});
  j["links"] = std::move(links);
  j["old_pixels_removed"] = r.old_pixels_removed;
  j["old_links_restored"] = r.old_links_restored;
  j["message"] = store::format_id(rec.id);
  j["stream"] = rec.stream.empty() ? json(nullptr) : json(rec.stream);
  j["tracking"] = rec.tracking.status.empty() ? json(nullptr) : json(rec.tracking.status);
  j["list_unsubscribe"] = rec.list_unsubscribe.empty() ? json(nullptr) : json(rec.list_unsubscribe);
  j["recipients"] = rec.recipients;
  j["refused_at_rcpt"] = refused;
  j["recipients_removed"] = plan.delete_recipients;
  json edits = json::array();
  for (const auto& e : plan.header_edits)
    edits.push_back({{"op", e.op == tracking::HeaderEdit::Op::add      ? "add"
                            : e.op == tracking::HeaderEdit::Op::remove ? "remove"
                                                                       : "change"},
                     {"name", e.name},
                     {"occurrence", e.occurrence},
                     {"value", e.value}});
  j["header_edits"] = std::move(edits);
  return j;
}

}  // namespace

int cmd_rewrite(const std::string& config_path, const Args& raw_args) {
  auto a = parse_args(raw_args);
  if (!a) return usage_rewrite();
  auto cfg = load(config_path);
  if (!cfg) return conf::kExitConfig;
  if (cfg->orgs.find(a->org) == nullptr) {
    std::fprintf(stderr, "cllavioctl rewrite: no organization '%s' in the configuration\n", a->org.c_str());
    return kExitUsage;
  }

  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::string_view msg(input);
  std::size_t from_len = from_line_length(msg);
  std::string_view message = msg.substr(from_len);
  std::size_t hlen = header_length(message);
  std::string_view header = message.substr(0, hlen), body = message.substr(hlen);
  std::vector<tracking::HeaderField> fields;
  std::size_t parsed = 0;
  tracking::parse_header_block(header, header.size() + 1, fields, parsed);  // header_length() kept only fields

  // MAIL FROM
  core::MessageState st;
  st.rec.org = a->org;
  st.rec.identified_by = "cli";
  st.rec.sender = policy::normalize_address(a->from);
  st.begin(*cfg);
  if (!a->stream.empty() && st.policy->streams.by_name(a->stream) == nullptr) {
    std::fprintf(stderr, "cllavioctl rewrite: organization '%s' has no stream '%s'\n", a->org.c_str(),
                 a->stream.c_str());
    return kExitUsage;
  }
  auto db = open_consent_store(*cfg);
  core::ConsentLookup consent = consent_lookup(db);
  // RCPT TO
  std::vector<std::string> refused;
  for (const auto& r : a->rcpts) {
    std::string addr = policy::normalize_address(r);
    if (auto no = core::recipient_refusal(st, addr, consent)) {
      std::fprintf(stderr, "cllavioctl rewrite: <%s> refused at RCPT TO: %s %s %s\n", store::printable(addr).c_str(),
                   no->verdict.reply.rcode.c_str(), no->verdict.reply.xcode.c_str(),
                   store::printable(no->verdict.reply.text).c_str());
      refused.push_back(addr);
      continue;
    }
    st.add_recipient(r, std::move(addr));
  }
  if (!a->rcpts.empty() && refused.size() == a->rcpts.size()) {
    std::fprintf(stderr, "cllavioctl rewrite: every recipient is refused: the milter would send nothing\n");
    return kExitNotFound;
  }
  // The header fields as the MTA hands them over (value with its leading space), then the body.
  for (const auto& f : fields) {
    std::string_view value = f.raw.substr(f.raw.find(':') + 1);
    st.header(*cfg, f.name, value);
  }
  if (!a->stream.empty()) st.stream_header = a->stream;  // as if X-Cllavio-Stream named it
  st.body(*cfg, body);

  std::uint64_t id = a->message_id.value_or(static_cast<std::uint64_t>(store::realtime_us()));
  core::EomLookups lookups{consent, nullptr, [id] { return id; }, store::realtime_us()};
  if (db) lookups.old_links = core::store_link_tables(*db);
  core::EomPlan plan = core::plan_end_of_message(*cfg, std::move(st), lookups);
  if (plan.record.id == 0) plan.record.id = id;
  if (!plan.error.empty()) std::fprintf(stderr, "cllavioctl rewrite: %s\n", store::printable(plan.error).c_str());
  if (plan.verdict.step != core::Step::cont) {
    std::fprintf(stderr, "cllavioctl rewrite: the milter would refuse this message: %s %s %s\n",
                 plan.verdict.reply.rcode.c_str(), plan.verdict.reply.xcode.c_str(),
                 store::printable(plan.verdict.reply.text).c_str());
    return kExitNotFound;
  }

  std::string out = core::apply_to_message(plan, header, body);
  std::fwrite(msg.data(), 1, from_len, stdout);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);

  if (!a->report_path.empty()) {
    std::ofstream f(a->report_path, std::ios::binary | std::ios::trunc);
    f << report_json(plan, refused).dump(-1, ' ', false, kReplace) << "\n";
    if (!f) {
      std::fprintf(stderr, "cllavioctl rewrite: cannot write %s\n", a->report_path.c_str());
      return kExitUnavailable;
    }
  }
  return kExitOk;
}

}  // namespace cllavio::cli
