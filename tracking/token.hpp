// Signed tracking tokens: https://DOMAIN/o/TOKEN (open) and https://DOMAIN/c/TOKEN (click).
//
// TOKEN is base64url (no padding) of, in version 1 (stateless: the destination is inside):
//   version(1)=1 | kind(1) 'o'|'c'|'u' | len(1) key id | len(1) org | message id (8, big-endian)
//   | varint len + recipient (0: none) | varint link index
//   | [click: varint len + URL; unsubscribe ('u'): varint len + stream name]
//   | first 16 bytes of HMAC-SHA256(key, everything before)
// and in version 2 (compact, opens and clicks only: the endpoint resolves the destination
// and the recipient from the message.accepted event's link table and recipients):
//   version(1)=2 | kind(1) 'o'|'c' | len(1) key id | len(1) org | message id (8) | varint link
//   | first 16 bytes of HMAC-SHA256(key, everything before)
// Unsubscribe tokens are always version 1 (one-click unsubscribe works without state).
// The first configured key signs; every configured key verifies (rotation). A token
// is accepted only if its key id is known and its MAC matches (constant-time), so a
// click endpoint that redirects to the URL inside can never be used as an open
// redirect. docs/tokens.md is the contract for the Cllavio side.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cllavio::tracking {

struct TrackingKey {
  std::string id;      // 1..32 bytes, [A-Za-z0-9._-]
  std::string secret;  // raw bytes, at least 32
};

// Unsubscribe tokens (List-Unsubscribe: https://DOMAIN/u/TOKEN) carry the stream name
// where clicks carry the destination.
enum class TokenKind : char { open = 'o', click = 'c', unsubscribe = 'u' };

struct TokenData {
  TokenKind kind = TokenKind::open;
  std::string org;
  std::uint64_t message = 0;
  std::optional<std::string> recipient;  // only when the message has exactly one
  std::uint32_t link = 0;                // link index (clicks); 0 for opens
  std::string url;                       // destination (clicks); stream name (unsubscribes)
  std::string key_id;                    // filled by verify()
  std::uint8_t version = 1;              // 2: compact (opens and clicks; no recipient, no url)
  friend bool operator==(const TokenData&, const TokenData&) = default;
};

class TokenCodec {
 public:
  explicit TokenCodec(std::vector<TrackingKey> keys);  // keys[0] signs; may be empty (then sign() throws)
  ~TokenCodec();
  TokenCodec(const TokenCodec&) = delete;
  TokenCodec& operator=(const TokenCodec&) = delete;

  // t.version 2 signs opens and clicks compactly; an unsubscribe is always version 1.
  std::string sign(const TokenData& t) const;
  // "https://DOMAIN/o/TOKEN" or ".../c/TOKEN"
  std::string url(const TokenData& t, std::string_view domain) const;
  // The token's data, or why it is refused.
  std::variant<TokenData, std::string> verify(std::string_view token) const;
  // Accepts a whole tracking URL (any host, path /o/ or /c/) or a bare token.
  std::variant<TokenData, std::string> verify_url_or_token(std::string_view text) const;

  bool can_sign() const { return !keys_.empty(); }

 private:
  friend class MessageSigner;
  // The first 16 bytes of HMAC-SHA256 with key number `key` over `data`.
  void mac(std::size_t key, std::string_view data, unsigned char out[16]) const;

  std::vector<TrackingKey> keys_;
  // Per key, HMAC-SHA256's inner and outer hash states after the padded key block,
  // computed once; each MAC works on copies (plain structs: no allocation, thread-safe).
  struct KeyState;
  std::vector<KeyState> states_;
};

// Signs the tokens of one message: what they share (key id, org, message id,
// recipient) is serialized once, and each token or URL is appended to the caller's
// string, so a newsletter with hundreds of links costs no allocation per link here.
// The bytes are exactly those of TokenCodec::sign/url for the same data. With version
// 2, opens and clicks are compact (no recipient, no url: `url` is not read) and
// unsubscribes stay version 1.
class MessageSigner {
 public:
  // Throws like sign(): no key, or a key id or org over 255 bytes, or a version not 1 or 2.
  MessageSigner(const TokenCodec& codec, std::string_view org, std::uint64_t message,
                const std::optional<std::string>& recipient, std::uint8_t version = 1);
  // Appends TOKEN.
  void append_token(TokenKind kind, std::uint32_t link, std::string_view url, std::string& out) const;
  // Appends "https://DOMAIN/o/TOKEN" or ".../c/TOKEN".
  void append_url(std::string_view domain, TokenKind kind, std::uint32_t link, std::string_view url,
                  std::string& out) const;

 private:
  const TokenCodec& codec_;
  std::string shared_;          // from the key id's length through the recipient
  std::size_t compact_len_ = 0; // shared_'s bytes a version 2 token has (through the message id)
  std::uint8_t version_ = 1;
};

// "https://host/o/TOKEN" -> {'o', TOKEN}; nullopt for anything else.
std::optional<std::pair<TokenKind, std::string_view>> split_tracking_url(std::string_view url);

}  // namespace cllavio::tracking
