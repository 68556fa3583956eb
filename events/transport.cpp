#include "events/transport.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

namespace cllavio::events {

namespace {

class ObservedTransport : public Transport {
 public:
  ObservedTransport(std::unique_ptr<Transport> inner, std::function<void(const HttpResult&)> seen)
      : inner_(std::move(inner)), seen_(std::move(seen)) {}
  HttpResult post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                  const conf::ApiSettings& api) override {
    return shown(inner_->post(url, headers, body, api));
  }
  HttpResult get(const std::string& url, const std::vector<std::string>& headers,
                 const conf::ApiSettings& api) override {
    return shown(inner_->get(url, headers, api));
  }

 private:
  HttpResult shown(HttpResult r) {
    if (seen_) seen_(r);
    return r;
  }
  std::unique_ptr<Transport> inner_;
  std::function<void(const HttpResult&)> seen_;
};

}  // namespace

std::unique_ptr<Transport> observe_transport(std::unique_ptr<Transport> inner,
                                             std::function<void(const HttpResult&)> seen) {
  return std::make_unique<ObservedTransport>(std::move(inner), std::move(seen));
}

int parse_retry_after(std::string_view value, std::int64_t now_s) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r' || value.back() == '\n')) value.remove_suffix(1);
  if (value.empty()) return -1;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    if (value.size() > 6) return 86400;
    return std::min(86400, std::stoi(std::string(value)));
  }
  std::tm tm{};
  std::string v(value);
  const char* end = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);  // IMF-fixdate
  if (end == nullptr || *end != '\0') return -1;
  std::int64_t when = static_cast<std::int64_t>(timegm(&tm));
  return static_cast<int>(std::clamp<std::int64_t>(when - now_s, 0, 86400));
}

std::string describe(const HttpResult& r) {
  if (r.status == 0) return "no answer: " + r.error;
  std::string b = r.body.substr(0, 200);
  for (char& c : b)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return "HTTP " + std::to_string(r.status) + (b.empty() ? "" : ": " + b);
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

}  // namespace cllavio::events
