// cllavioctl token verify: what a tracking token carries, checked with the configured keys.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.hpp"
#include "conf/loader.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

namespace {

constexpr auto kReplace = nlohmann::ordered_json::error_handler_t::replace;

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
  j["url"] = t.kind == tracking::TokenKind::click ? nlohmann::ordered_json(t.url) : nlohmann::ordered_json(nullptr);
  if (t.kind == tracking::TokenKind::unsubscribe) j["stream"] = t.url;
  j["key_id"] = t.key_id;
  std::printf("%s\n", j.dump(-1, ' ', false, kReplace).c_str());
  return kExitOk;
}

}  // namespace cllavio::cli
