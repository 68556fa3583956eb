#include "events/signing.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

namespace cllavio::events {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(d[p[i] >> 4]);
    out.push_back(d[p[i] & 15]);
  }
  return out;
}

}  // namespace

std::string signature(const std::string& secret, std::int64_t t, const std::string& body) {
  std::string msg = std::to_string(t) + "." + body;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  return "t=" + std::to_string(t) + ",v1=" + hex(md, len);
}

std::string idempotency_key(const std::vector<store::OutboxItem>& items) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& it : items) {
    auto j = nlohmann::json::parse(it.json, nullptr, false);
    std::string id = j.is_object() ? j.value("id", std::to_string(it.seq)) : std::to_string(it.seq);
    EVP_DigestUpdate(ctx, id.data(), id.size());
    EVP_DigestUpdate(ctx, "\n", 1);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return hex(md, 16);
}

std::string batch_body(const std::vector<store::OutboxItem>& items) {
  std::string body = "{\"events\":[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) body.push_back(',');
    body += items[i].json;
  }
  return body + "]}";
}

}  // namespace cllavio::events
