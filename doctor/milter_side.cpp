// cllavioctl doctor: the milter's own side. Its configuration (as -n loads it), its socket in
// Postfix's syntax and whether user postfix can connect to it, the delivery log's readability
// by the milter's user, the secrets file's mode and owner, the store (opened read-only), and
// whether the API answers over TLS that verifies.
#include <cerrno>
#include <cstring>

#include <curl/curl.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <toml++/toml.h>

#include "conf/loader.hpp"
#include "doctor/gather.hpp"
#include "doctor/process.hpp"
#include "quota/from_config.hpp"
#include "store/db.hpp"
#include "store/existing.hpp"
#include "store/maintenance.hpp"

namespace cllavio::doctor {

namespace {

std::string user_name(uid_t uid) {
  if (passwd* pw = ::getpwuid(uid)) return pw->pw_name;
  return std::to_string(uid);
}

// The user the milter runs as: [milter] user, else the packaged service user, else whoever runs doctor.
std::string milter_user(const conf::Config& cfg) {
  if (cfg.milter.user && !cfg.milter.user->empty()) return *cfg.milter.user;
  if (::getpwnam("cllavio")) return "cllavio";
  return user_name(::geteuid());
}

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    ::close(fd);
    return ENAMETOOLONG;
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  int e = rc == 0 ? 0 : errno;
  ::close(fd);
  return e;
}

ConnectProbe probe_connect(const std::string& path) {
  ConnectProbe p;
  p.tried = true;
  auto r = as_user("postfix", [&] { return connect_unix(path); });
  p.ok = r.error == 0;
  if (!p.ok) p.error = r.message;
  if (!r.switched && r.error != ENOENT)
    p.error = (p.ok ? std::string() : p.error + " ") + "(not root: connected as " + user_name(::geteuid()) + ", not as postfix)";
  if (!r.switched && p.ok) p.error.clear();
  return p;
}

std::optional<bool> log_readable(const std::string& path, const std::string& user) {
  auto open_it = [&] {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
  };
  if (::geteuid() == 0) {
    auto r = as_user(user, open_it);
    if (!r.switched) return std::nullopt;  // no such user: -n reports it
    return r.error == 0;
  }
  if (user != user_name(::geteuid())) return std::nullopt;  // cannot act as that user
  return open_it() == 0;
}

std::size_t discard(char*, std::size_t size, std::size_t n, void*) { return size * n; }

void probe_api(MilterSide& m, const conf::ApiSettings& api, int timeout_ms) {
  static const bool once = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)once;
  CURL* h = curl_easy_init();
  if (!h) {
    m.api_reachable = false;
    m.api_error = "curl_easy_init failed";
    return;
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::string url = api.url + "/";
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!api.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, api.ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "cllavioctl-doctor/" CLLAVIO_VERSION);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  // Any HTTP answer means the host is reachable and its certificate verified.
  m.api_reachable = rc == CURLE_OK && status > 0;
  if (!*m.api_reachable) {
    m.api_error = curl_easy_strerror(rc);
    if (errbuf[0]) m.api_error += std::string(": ") + errbuf;
  }
}

void read_store(MilterSide& m, const conf::Config& cfg) {
  try {
    store::Db db(store::existing_store(cfg.store.path, cfg.store.map_size_mb));
    m.store_map_used_ratio = store::map_use(db).ratio();
    auto s = db.read()->outbox.stats();
    m.outbox_events = s.queued;
    m.dead_letters = s.dead;
    m.outbox_oldest_age_s = s.oldest_at_us ? (store::realtime_us() - s.oldest_at_us) / 1000000 : 0;
  } catch (const std::exception& e) {
    m.store_error = e.what();
  }
}

// [secrets] file straight from the TOML when the configuration does not load (a secrets file
// that others can read is one reason): relative to the main file's folder, as the loader does.
std::string secrets_path_of(const std::string& config_path) {
  try {
    auto doc = toml::parse_file(config_path);
    auto file = doc["secrets"]["file"].value<std::string>();
    if (!file || file->empty()) return "";
    std::filesystem::path p(*file);
    if (p.is_relative()) p = std::filesystem::absolute(config_path).parent_path() / p;
    return p.lexically_normal().string();
  } catch (...) {
    return "";
  }
}

void stat_secrets(MilterSide& m) {
  struct stat st{};
  if (!m.secrets_file.empty() && ::stat(m.secrets_file.c_str(), &st) == 0) {
    m.secrets_mode = st.st_mode & 07777;
    m.secrets_owner = user_name(st.st_uid);
  }
}

// The shared quota ledger answers, and keeps its keys (maxmemory-policy noeviction).
void probe_redis(MilterSide& m, const conf::Config& cfg, int timeout_ms) {
  quota::RedisSettings rs = quota::redis_settings(cfg);
  rs.timeout_ms = std::max(rs.timeout_ms, timeout_ms);  // a doctor may wait longer than an RCPT
  rs.connect_timeout_ms = std::max(rs.connect_timeout_ms, timeout_ms);
  rs.pool_size = 1;
  try {
    quota::RedisLedger ledger(rs);
    ledger.ping();
    m.redis_reachable = true;
    try {
      m.redis_eviction = ledger.config_get("maxmemory-policy");
    } catch (const std::exception& e) {
      m.redis_eviction_error = e.what();
    }
  } catch (const std::exception& e) {
    m.redis_reachable = false;
    m.redis_error = e.what();
  }
}

}  // namespace

MilterSide read_milter_side(const std::string& config_path, bool offline, int api_timeout_ms) {
  MilterSide m;
  m.config_file = config_path;
  auto loaded = conf::load_config(config_path);
  m.config_ok = loaded.config != nullptr;
  for (const auto& d : loaded.errors) m.config_errors.push_back(d.str());
  // Problems in organization files only: the main file's settings still say where things are.
  auto cfg = loaded.config ? loaded.config : loaded.main_only;
  if (!cfg) {
    m.secrets_file = secrets_path_of(config_path);
    stat_secrets(m);
    return m;
  }
  m.socket = cfg->milter.socket.libmilter();
  m.socket_postfix = cfg->milter.socket.postfix();
  m.milter_user = milter_user(*cfg);
  m.delivery_enabled = cfg->delivery.enabled();
  m.delivery_log = cfg->delivery.log;
  if (m.delivery_enabled && m.delivery_log.rfind("journal", 0) != 0)
    m.delivery_log_readable = log_readable(m.delivery_log, m.milter_user);
  m.secrets_file = cfg->secrets.file;
  stat_secrets(m);
  read_store(m, *cfg);
  m.api_url = cfg->api.url;
  if (!m.api_url.empty() && !offline) probe_api(m, cfg->api, api_timeout_ms);
  if (cfg->milter.socket.kind == conf::SocketSpec::Kind::unix_path) m.connect = probe_connect(cfg->milter.socket.path);
  if (cfg->quota.backend == conf::QuotaBackendKind::redis) {
    m.redis_url = cfg->redis.url;
    if (!offline) probe_redis(m, *cfg, api_timeout_ms);
  }
  return m;
}

}  // namespace cllavio::doctor
