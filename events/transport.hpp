// HTTP to the Cllavio API, as an interface so that the forwarder and the consent sync
// are unit-tested without a network; make_curl_transport() is the real one (libcurl).
//
// Contract: post()/get() never throw for network or HTTP failures; they come back as
// an HttpResult (status 0: no HTTP answer). One Transport is used by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"

namespace cllavio::events {

struct HttpResult {
  long status = 0;          // 0: no HTTP answer (connect, TLS, timeout)
  std::string body;
  std::string error;        // transport error text when status is 0
  int retry_after_s = -1;   // from Retry-After, when given
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual HttpResult post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                          const conf::ApiSettings& api) = 0;
  virtual HttpResult get(const std::string& url, const std::vector<std::string>& headers,
                         const conf::ApiSettings& api) = 0;
};

// libcurl: one handle kept for keep-alive; TLS peer and host verification always on.
std::unique_ptr<Transport> make_curl_transport();

// `inner`, with every answer (or failure) also shown to `seen` after the request, on
// the calling thread (the daemon counts cllavio_api_requests_total with it).
std::unique_ptr<Transport> observe_transport(std::unique_ptr<Transport> inner,
                                             std::function<void(const HttpResult&)> seen);

// Retry-After: seconds, or an HTTP date (seconds from now_s); -1 when unreadable.
int parse_retry_after(std::string_view value, std::int64_t now_s);

// "HTTP 503: text..." or "no answer: ..." for logs and the outbox's last error.
std::string describe(const HttpResult& r);

std::string url_escape(const std::string& s);  // RFC 3986 unreserved bytes kept, the rest %XX

}  // namespace cllavio::events
