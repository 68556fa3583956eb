// cllavioctl token verify: what a tracking token carries, checked with the configured keys.
// A compact (version 2) click carries no destination: it is looked up in the store's link
// table of the token's message (null when the store no longer has it).
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "core/tracking_step.hpp"
#include "store/existing.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

namespace {

constexpr auto kReplace = nlohmann::ordered_json::error_handler_t::replace;

// A compact click's destination from the store; nullopt when there is none to read.
std::optional<std::string> stored_destination(const conf::Config& cfg, const tracking::TokenData& t) {
  try {
    store::Db db(store::existing_store(cfg.store.path, cfg.store.map_size_mb));
    if (auto links = core::store_link_tables(db)(t.org, t.message))
      for (const auto& l : *links)
        if (l.index == t.link) return l.url;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cllavioctl: warning: %s; the destination is not known here\n",
                 store::printable(e.what()).c_str());
  }
  return std::nullopt;
}

}  // namespace

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
  std::optional<std::string> url;
  if (t.kind == tracking::TokenKind::click) url = t.version == 1 ? std::optional<std::string>(t.url) : stored_destination(*cfg, t);
  j["url"] = url ? nlohmann::ordered_json(*url) : nlohmann::ordered_json(nullptr);
  if (t.kind == tracking::TokenKind::unsubscribe) j["stream"] = t.url;
  j["key_id"] = t.key_id;
  j["version"] = t.version;
  std::printf("%s\n", j.dump(-1, ' ', false, kReplace).c_str());
  return kExitOk;
}

}  // namespace cllavio::cli
