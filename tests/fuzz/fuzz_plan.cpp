// Fuzzes the end of message as the milter plans it (core/plan.cpp): the input's first
// byte picks the sender (campaign or personal), each recipient's consent and whether
// the org has streams; the rest is a message whose header fields are fed to
// core::MessageState one by one and whose body arrives in chunks, as from libmilter.
// Invariants: a refused message changes nothing; edits only touch the fields the
// milter owns (X-Cllavio-Stream, X-Cllavio-Track, List-Unsubscribe[-Post],
// Content-Transfer-Encoding); without a new body the body stays as it was; recipients
// deleted were recipients; the plan applied to the file keeps the header block parseable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/plan.hpp"
#include "policy/address.hpp"
#include "tracking/ascii.hpp"
#include "tracking/mime.hpp"

namespace {

using namespace cllavio;

std::shared_ptr<const conf::Config> config(bool streams) {
  auto cfg = std::make_shared<conf::Config>();
  policy::Org acme;
  acme.id = "acme";
  cfg->orgs = policy::OrgIndex({acme});
  tracking::TrackingPolicy t;
  t.opens = t.clicks = true;
  t.domain = "t.acme.example";
  cfg->tracking.emplace("acme", t);
  policy::OrgPolicy p;
  p.streams.fallback.name = "default";
  p.streams.fallback.opens = p.streams.fallback.clicks = true;
  p.streams.fallback.consent = policy::ConsentMode::implied;
  if (streams) {
    policy::Stream c;
    c.name = "campaigns";
    c.senders = {"news@acme.example"};
    c.kind = policy::StreamKind::campaign;
    c.opens = c.clicks = true;
    c.suppress_unsubscribed = c.list_unsubscribe = true;
    p.streams.streams = {c};
  }
  cfg->policies.emplace("acme", p);
  cfg->tracking_limits.max_links = 50;
  cfg->tracking_limits.mime.max_parts = 64;
  cfg->tokens = std::make_shared<tracking::TokenCodec>(std::vector<tracking::TrackingKey>{{"k", std::string(32, 'f')}});
  return cfg;
}

bool ours(std::string_view name) {
  using tracking::iequals;
  return iequals(name, "X-Cllavio-Stream") || iequals(name, "X-Cllavio-Track") || iequals(name, "List-Unsubscribe") ||
         iequals(name, "List-Unsubscribe-Post") || iequals(name, "Content-Transfer-Encoding");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  static const auto with_streams = config(true), without = config(false);
  const conf::Config& cfg = (flags & 1) ? *with_streams : *without;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<tracking::HeaderField> fields;
  std::size_t hlen = 0;
  if (!tracking::parse_header_block(in, in.size() + 1, fields, hlen)) return 0;
  std::string_view header = in.substr(0, hlen), body = in.substr(hlen);

  core::MessageState m;
  m.rec.org = "acme";
  m.rec.sender = (flags & 2) ? "news@acme.example" : "alice@acme.example";
  m.begin(cfg);
  const std::vector<std::string> rcpts = {"a@x.example", "b@x.example", "c@x.example"};
  for (std::size_t i = 0; i < 1 + (flags >> 6); ++i) m.add_recipient("<" + rcpts[i % 3] + ">", rcpts[i % 3]);
  for (const auto& f : fields) m.header(cfg, f.name, f.raw.substr(f.raw.find(':') + 1));
  std::size_t chunk = 1 + (flags >> 2);
  for (std::size_t off = 0; off < body.size(); off += chunk) m.body(cfg, body.substr(off, chunk));

  core::EomLookups l{[flags](const std::string&, const std::string& a) {
                       int bit = 2 + (a[0] - 'a');  // bits 2..4: unsubscribed, else granted
                       return (flags >> bit) & 1 ? policy::ConsentState::unsubscribed : policy::ConsentState::granted;
                     },
                     nullptr, [] { return std::uint64_t{42}; }, 1'700'000'000'000'000};
  core::EomPlan plan = core::plan_end_of_message(cfg, std::move(m), l);
  if (plan.verdict.step != core::Step::cont) {
    if (plan.changes_message()) std::abort();
    return 0;
  }
  for (const auto& e : plan.header_edits)
    if (!ours(e.name)) std::abort();
  for (const auto& d : plan.delete_recipients)
    if (d != "<a@x.example>" && d != "<b@x.example>" && d != "<c@x.example>") std::abort();
  std::string out = core::apply_to_message(plan, header, body);
  if (!plan.body && out.substr(out.size() - body.size()) != body) std::abort();
  std::vector<tracking::HeaderField> after;
  std::size_t end = 0;
  if (!tracking::parse_header_block(out, out.size() + 1, after, end)) std::abort();
  return 0;
}
