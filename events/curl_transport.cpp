// Transport over libcurl: one easy handle reused (HTTP keep-alive across batches), TLS
// peer and host verification always on, connect and total timeouts, Retry-After read.
#include <curl/curl.h>

#include <cstdlib>
#include <ctime>

#include "events/transport.hpp"

namespace cllavio::events {

namespace {

std::size_t on_body(char* p, std::size_t size, std::size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() < 64 * 1024) s->append(p, size * n);  // enough for an error text
  return size * n;
}

std::size_t on_header(char* p, std::size_t size, std::size_t n, void* out) {
  std::string line(p, size * n);
  auto* r = static_cast<HttpResult*>(out);
  static const std::string name = "retry-after:";
  if (line.size() > name.size()) {
    std::string head = line.substr(0, name.size());
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (head == name) {
      r->retry_after_s = parse_retry_after(line.substr(name.size()), static_cast<std::int64_t>(std::time(nullptr)));
    }
  }
  return size * n;
}

class CurlTransport : public Transport {
 public:
  CurlTransport() : h_(curl_easy_init()) {}
  ~CurlTransport() override {
    if (h_) curl_easy_cleanup(h_);
  }

  HttpResult post(const std::string& url, const std::vector<std::string>& headers, const std::string& body,
                  const conf::ApiSettings& api) override {
    return perform(url, headers, &body, api);
  }
  HttpResult get(const std::string& url, const std::vector<std::string>& headers,
                 const conf::ApiSettings& api) override {
    return perform(url, headers, nullptr, api);
  }

 private:
  HttpResult perform(const std::string& url, const std::vector<std::string>& headers, const std::string* body,
                     const conf::ApiSettings& api) {
    HttpResult r;
    // A connection verified against another CA (or made for another URL) is not reused
    // after a reload changed them: a new handle starts with an empty connection cache.
    std::string identity = api.url + '\n' + api.ca_file;
    if (identity != identity_) {
      if (h_) curl_easy_cleanup(h_);
      h_ = curl_easy_init();
      identity_ = identity;
    }
    if (h_ == nullptr) {
      r.error = "curl_easy_init failed";
      return r;
    }
    curl_easy_reset(h_);  // options go, the connection cache stays
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(h_, CURLOPT_URL, url.c_str());
    if (body != nullptr) {
      curl_easy_setopt(h_, CURLOPT_POST, 1L);
      curl_easy_setopt(h_, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(h_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    } else {
      curl_easy_setopt(h_, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h_, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h_, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!api.ca_file.empty()) curl_easy_setopt(h_, CURLOPT_CAINFO, api.ca_file.c_str());
    curl_easy_setopt(h_, CURLOPT_TIMEOUT_MS, static_cast<long>(api.timeout_ms));
    curl_easy_setopt(h_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(api.timeout_ms, 5000)));
    curl_easy_setopt(h_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h_, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h_, CURLOPT_USERAGENT, "cllavio-milter/" CLLAVIO_VERSION);
    curl_easy_setopt(h_, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h_, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(h_, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h_, CURLOPT_HEADERDATA, &r);
    CURLcode rc = curl_easy_perform(h_);
    if (rc == CURLE_OK) {
      curl_easy_getinfo(h_, CURLINFO_RESPONSE_CODE, &r.status);
    } else {
      r.error = curl_easy_strerror(rc);  // never the request: it carries the key
    }
    curl_slist_free_all(list);
    return r;
  }

  CURL* h_;
  std::string identity_;  // url and CA file the connection cache belongs to
};

}  // namespace

std::unique_ptr<Transport> make_curl_transport() { return std::make_unique<CurlTransport>(); }

}  // namespace cllavio::events
