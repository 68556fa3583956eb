#include "tracking/token.hpp"

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 but kept: a SHA256_CTX is a plain
// struct, so HMAC's keyed inner and outer states are precomputed once per key and copied
// by value per token (EVP_MAC re-initializes a provider context per MAC, and an
// EVP_MD_CTX copy allocates): about half the cost per token (bench/eom_bench).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>
#include <stdexcept>

#include "tracking/base64_simd.hpp"

namespace cllavio::tracking {

namespace {

constexpr unsigned char kVersion = 1, kCompactVersion = 2;
constexpr std::size_t kMacBytes = 16;
constexpr std::size_t kMaxField = 8192;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(std::string_view in, std::size_t& pos, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) return false;
    auto b = static_cast<unsigned char>(in[pos++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

bool get_bytes(std::string_view in, std::size_t& pos, std::size_t len, std::string& out) {
  if (len > in.size() - pos) return false;
  out.assign(in.substr(pos, len));
  pos += len;
  return true;
}

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Writes base64url without padding (RFC 4648 section 5) of in[0..n) at o. With `blocks`
// (in[-4..0) and in[n..n+4) readable) whole 24-byte blocks go through the AVX2 kernel of
// the MIME encoder, whose standard alphabet differs in two characters: '+' and '/' become
// '-' and '_' afterwards.
void encode_base64url(const unsigned char* in, std::size_t n, char* o, bool blocks) {
  std::size_t i = 0;
  if (blocks && n >= 24 && simd::base64_avx2()) {
    const std::size_t b = n / 24;
    simd::encode_blocks_avx2(in, b, o);
    for (std::size_t k = 0; k < b * 32; ++k)  // no early exit: vectorized
      o[k] = o[k] == '+' ? '-' : o[k] == '/' ? '_' : o[k];
    i = b * 24;
    o += b * 32;
  }
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    *o++ = kBase64Url[v >> 18];
    *o++ = kBase64Url[(v >> 12) & 63];
    *o++ = kBase64Url[(v >> 6) & 63];
    *o++ = kBase64Url[v & 63];
  }
  if (n - i == 1) {
    *o++ = kBase64Url[in[i] >> 2];
    *o++ = kBase64Url[(in[i] & 3) << 4];
  } else if (n - i == 2) {
    const std::uint32_t v = (std::uint32_t{in[i]} << 8) | in[i + 1];
    *o++ = kBase64Url[v >> 10];
    *o++ = kBase64Url[(v >> 4) & 63];
    *o++ = kBase64Url[(v << 2) & 63];
  }
}

std::size_t base64url_size(std::size_t n) { return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1); }

// Appends base64url without padding of `bytes`.
void append_base64url(std::string_view bytes, std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + base64url_size(bytes.size()));
  encode_base64url(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out.data() + start, false);
}

std::string base64url(std::string_view bytes) {
  std::string out;
  append_base64url(bytes, out);
  return out;
}

bool unbase64url(std::string_view text, std::string& out) {
  if (text.size() > 16384) return false;
  std::string s(text);
  for (char& c : s) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  if (s.size() % 4 == 1) return false;
  std::size_t pad = (4 - s.size() % 4) % 4;
  s.append(pad, '=');
  out.assign(s.size() / 4 * 3, '\0');
  int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(s.data()),
                            static_cast<int>(s.size()));
  if (len < 0) return false;
  out.resize(static_cast<std::size_t>(len) - pad);
  return true;
}

}  // namespace

// HMAC (RFC 2104) with SHA-256's block of 64 bytes: a longer key is hashed first.
struct TokenCodec::KeyState {
  SHA256_CTX inner, outer;  // after the ipad / opad block
};

TokenCodec::TokenCodec(std::vector<TrackingKey> keys) : keys_(std::move(keys)) {
  states_.reserve(keys_.size());
  for (const auto& k : keys_) {
    unsigned char block[SHA256_CBLOCK] = {};
    if (k.secret.size() > SHA256_CBLOCK)
      SHA256(reinterpret_cast<const unsigned char*>(k.secret.data()), k.secret.size(), block);
    else
      std::memcpy(block, k.secret.data(), k.secret.size());
    unsigned char ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
    for (std::size_t i = 0; i < SHA256_CBLOCK; ++i) {
      ipad[i] = static_cast<unsigned char>(block[i] ^ 0x36);
      opad[i] = static_cast<unsigned char>(block[i] ^ 0x5c);
    }
    KeyState st;
    if (SHA256_Init(&st.inner) != 1 || SHA256_Update(&st.inner, ipad, sizeof ipad) != 1 ||
        SHA256_Init(&st.outer) != 1 || SHA256_Update(&st.outer, opad, sizeof opad) != 1)
      throw std::runtime_error("cannot key HMAC-SHA256");
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    states_.push_back(st);
  }
}

TokenCodec::~TokenCodec() {
  if (!states_.empty()) OPENSSL_cleanse(states_.data(), states_.size() * sizeof(KeyState));
}

void TokenCodec::mac(std::size_t key, std::string_view data, unsigned char out[kMacBytes]) const {
  // Copies of the keyed states: the originals are never written (thread-safe).
  const KeyState& k = states_.at(key);
  SHA256_CTX ctx = k.inner;
  unsigned char md[SHA256_DIGEST_LENGTH];
  bool ok = SHA256_Update(&ctx, data.data(), data.size()) == 1 && SHA256_Final(md, &ctx) == 1;
  ctx = k.outer;
  ok = ok && SHA256_Update(&ctx, md, sizeof md) == 1 && SHA256_Final(md, &ctx) == 1;
  OPENSSL_cleanse(&ctx, sizeof ctx);
  if (!ok) throw std::runtime_error("HMAC-SHA256 failed");
  std::memcpy(out, md, kMacBytes);
}

MessageSigner::MessageSigner(const TokenCodec& codec, std::string_view org, std::uint64_t message,
                             const std::optional<std::string>& recipient, std::uint8_t version)
    : codec_(codec), version_(version) {
  if (codec.keys_.empty()) throw std::logic_error("no tracking key to sign with");
  if (version != kVersion && version != kCompactVersion) throw std::invalid_argument("unknown token version");
  const TrackingKey& k = codec.keys_.front();
  if (k.id.size() > 255 || org.size() > 255) throw std::invalid_argument("key id or org too long for a token");
  shared_.reserve(16 + k.id.size() + org.size() + (recipient ? recipient->size() : 0));
  shared_.push_back(static_cast<char>(k.id.size()));
  shared_ += k.id;
  shared_.push_back(static_cast<char>(org.size()));
  shared_ += org;
  for (int i = 7; i >= 0; --i) shared_.push_back(static_cast<char>((message >> (8 * i)) & 0xff));
  compact_len_ = shared_.size();
  put_varint(shared_, recipient ? recipient->size() : 0);
  if (recipient) shared_ += *recipient;
}

void MessageSigner::append_token(TokenKind kind, std::uint32_t link, std::string_view url, std::string& out) const {
  // Reused: no allocation per token once warm. The token's bytes sit between kPad bytes
  // on either side, which the block encoder may read.
  constexpr std::size_t kPad = 4;
  thread_local std::string b;
  b.assign(kPad, '\0');
  const bool compact = version_ == kCompactVersion && kind != TokenKind::unsubscribe;
  b.push_back(static_cast<char>(compact ? kCompactVersion : kVersion));
  b.push_back(static_cast<char>(kind));
  b.append(shared_, 0, compact ? compact_len_ : shared_.size());
  put_varint(b, link);
  if (!compact && kind != TokenKind::open) {  // clicks: the destination; unsubscribes: the stream
    put_varint(b, url.size());
    b += url;
  }
  unsigned char tag[kMacBytes];
  codec_.mac(0, std::string_view(b).substr(kPad), tag);
  b.append(reinterpret_cast<const char*>(tag), kMacBytes);
  const std::size_t n = b.size() - kPad, start = out.size();
  b.append(kPad, '\0');
  out.resize(start + base64url_size(n));
  encode_base64url(reinterpret_cast<const unsigned char*>(b.data()) + kPad, n, out.data() + start, true);
}

void MessageSigner::append_url(std::string_view domain, TokenKind kind, std::uint32_t link, std::string_view url,
                               std::string& out) const {
  out += "https://";
  out += domain;
  out += kind == TokenKind::open ? "/o/" : kind == TokenKind::click ? "/c/" : "/u/";
  append_token(kind, link, url, out);
}

std::string TokenCodec::sign(const TokenData& t) const {
  std::string out;
  MessageSigner(*this, t.org, t.message, t.recipient, t.version).append_token(t.kind, t.link, t.url, out);
  return out;
}

std::string TokenCodec::url(const TokenData& t, std::string_view domain) const {
  std::string out;
  MessageSigner(*this, t.org, t.message, t.recipient, t.version).append_url(domain, t.kind, t.link, t.url, out);
  return out;
}

std::variant<TokenData, std::string> TokenCodec::verify(std::string_view token) const {
  std::string b;
  // Only the canonical encoding: no second spelling of the same token.
  if (!unbase64url(token, b) || base64url(b) != token) return std::string("not a token (bad encoding)");
  if (b.size() < 2 + 1 + 1 + 8 + 1 + kMacBytes) return std::string("not a token (too short)");
  TokenData t;
  t.version = static_cast<unsigned char>(b[0]);
  if (t.version != kVersion && t.version != kCompactVersion) return std::string("unsupported token version");
  const bool compact = t.version == kCompactVersion;
  char kind = b[1];
  if (kind != 'o' && kind != 'c' && (kind != 'u' || compact)) return std::string("not a token (bad kind)");
  t.kind = static_cast<TokenKind>(kind);
  std::size_t pos = 2;
  std::size_t kid_len = static_cast<unsigned char>(b[pos++]);
  if (!get_bytes(b, pos, kid_len, t.key_id)) return std::string("not a token (truncated)");
  std::size_t key = keys_.size();
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i].id == t.key_id) key = i;
  if (key == keys_.size()) return std::string("unknown key id");
  std::string_view signed_part(b.data(), b.size() - kMacBytes);
  unsigned char expected[kMacBytes];
  mac(key, signed_part, expected);
  if (CRYPTO_memcmp(expected, b.data() + signed_part.size(), kMacBytes) != 0)
    return std::string("bad signature");
  // Authentic from here on; still parse defensively.
  std::string_view body = signed_part;
  if (pos >= body.size()) return std::string("not a token (truncated)");
  std::size_t org_len = static_cast<unsigned char>(body[pos++]);
  if (!get_bytes(body, pos, org_len, t.org) || body.size() - pos < 8) return std::string("not a token (truncated)");
  for (int i = 0; i < 8; ++i) t.message = (t.message << 8) | static_cast<unsigned char>(body[pos++]);
  std::uint64_t len = 0, link = 0;
  if (!compact) {  // version 1: the recipient (none for several)
    if (!get_varint(body, pos, len) || len > kMaxField) return std::string("not a token (bad recipient)");
    if (len > 0) {
      std::string r;
      if (!get_bytes(body, pos, len, r)) return std::string("not a token (truncated)");
      t.recipient = std::move(r);
    }
  }
  if (!get_varint(body, pos, link) || link > 0xffffffffu) return std::string("not a token (bad link)");
  t.link = static_cast<std::uint32_t>(link);
  if (!compact && t.kind != TokenKind::open) {
    if (!get_varint(body, pos, len) || len > kMaxField || !get_bytes(body, pos, len, t.url))
      return std::string("not a token (bad url)");
  }
  if (pos != body.size()) return std::string("not a token (trailing data)");
  return t;
}

std::optional<std::pair<TokenKind, std::string_view>> split_tracking_url(std::string_view url) {
  if (url.substr(0, 8) != "https://" && url.substr(0, 8) != "HTTPS://") return std::nullopt;
  std::string_view rest = url.substr(8);
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  std::string_view path = rest.substr(slash);
  if (path.size() < 4 || path[0] != '/' || path[2] != '/' || (path[1] != 'o' && path[1] != 'c' && path[1] != 'u'))
    return std::nullopt;
  std::string_view token = path.substr(3);
  if (token.empty() || token.find_first_of("/?#") != std::string_view::npos) return std::nullopt;
  return std::make_pair(static_cast<TokenKind>(path[1]), token);
}

std::variant<TokenData, std::string> TokenCodec::verify_url_or_token(std::string_view text) const {
  if (auto split = split_tracking_url(text)) {
    auto r = verify(split->second);
    if (auto* t = std::get_if<TokenData>(&r); t && t->kind != split->first)
      return std::string("token kind does not match the URL path");
    return r;
  }
  return verify(text);
}

}  // namespace cllavio::tracking
