// Streams: how an organization's mail is classified (campaigns, person-to-person),
// and what each stream allows: tracking, consent model, suppression of unsubscribed
// recipients, List-Unsubscribe headers.
//
// Contract: pure. A message belongs to the stream named by its X-Cllavio-Stream
// header when that names a declared stream, else to the first stream whose sender
// patterns match the envelope sender, else to the org's default stream. Patterns:
//   "news@acme.example"        exact address (domain case-insensitive)
//   "@acme.example"            every sender of that domain
//   "news*@acme.example"       '*' and '?' glob over the local part, exact domain
//   "news*@"                   glob over the local part, any domain
// Suppression applies only to campaign streams: person-to-person mail is never
// blocked by a newsletter unsubscribe (the config loader refuses anything else).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cllavio::policy {

enum class StreamKind { personal, campaign };
enum class ConsentMode { required, implied };
std::string_view to_string(StreamKind);
std::string_view to_string(ConsentMode);

struct Stream {
  std::string name;                    // "default" for the org's default stream
  std::vector<std::string> senders;    // patterns (above); normalized, domain lowercase
  StreamKind kind = StreamKind::personal;
  bool opens = false;                  // tracking switches for this stream's mail
  bool clicks = false;
  ConsentMode consent = ConsentMode::required;
  bool suppress_unsubscribed = false;  // campaign only
  bool list_unsubscribe = false;       // campaign only

  bool suppresses() const { return kind == StreamKind::campaign && suppress_unsubscribed; }
  bool tracks() const { return opens || clicks; }
};

// "" when the pattern is well-formed, else what is wrong with it.
std::string check_sender_pattern(std::string& pattern);  // normalizes in place
bool sender_matches(std::string_view pattern, std::string_view sender);

// The org's streams in declaration order, plus its default stream.
struct StreamSet {
  std::vector<Stream> streams;
  Stream fallback;  // name "default"

  const Stream& by_sender(std::string_view sender) const;
  const Stream* by_name(std::string_view name) const;  // includes "default"
  // The stream of a message: the header's when it names one, else by sender.
  const Stream& classify(std::string_view sender, std::optional<std::string_view> header) const;
};

}  // namespace cllavio::policy
