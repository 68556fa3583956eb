#include "tracking/rewrite.hpp"
#include "tracking/ascii.hpp"
#include "tracking/bytes.hpp"

#include <algorithm>

#include "tracking/encoding.hpp"
#include "tracking/patches.hpp"

namespace cllavio::tracking {

namespace {

constexpr std::size_t kMaxLine = 998;


// Inline PGP in a text part ("-----BEGIN PGP MESSAGE-----", "... SIGNED MESSAGE-----").
// find_bytes, not string_view::find: that one stops at every '-', and CSS is full of them.
bool has_inline_pgp(std::string_view raw) {
  return find_bytes(raw, "-----BEGIN PGP ") != std::string_view::npos;
}

bool encoding_known(const std::string& e) {
  return e == "7bit" || e == "8bit" || e == "binary" || e == "quoted-printable" || e == "base64";
}

// Why a part makes the whole message untouchable, or "".
std::string untouchable(const Part& p) {
  const std::string& t = p.type.type;
  const std::string& s = p.type.subtype;
  if (t == "multipart" && s == "signed") return "signed";
  if (t == "multipart" && s == "encrypted") return "encrypted";
  if (t == "application" && (s == "pkcs7-mime" || s == "x-pkcs7-mime")) return "smime";
  return {};
}

bool rewritable_text(const Part& p, const TrackingPolicy& policy) {
  if (!p.children.empty() || p.type.multipart() || p.attachment || p.type.type != "text") return false;
  if (p.type.subtype == "html") return true;
  return p.type.subtype == "plain" && policy.text_links && policy.clicks;
}

// A part of a multipart whose header block ends without an empty line (or that is empty) has no
// body: anything inserted "in" it would join its last header line.
bool has_body(std::string_view body, const Part& p) {
  if (p.parent < 0) return true;  // the message itself: its header is apart
  std::string_view head = body.substr(p.header_begin, p.body_begin - p.header_begin);
  return head == "\n" || head == "\r\n" || head.ends_with("\n\n") || head.ends_with("\n\r\n");
}

enum class Output { as_is, qp, base64 };  // how a changed part's patched content is written

struct ChangedPart {
  int index;
  std::string_view patched;  // the new decoded content (in a Scratch buffer)
  Output output = Output::as_is;
  Eol eol = Eol::crlf;       // the part's own line ending, for the encoders
  bool now_qp = false;       // Content-Transfer-Encoding became quoted-printable
};

// Per-thread buffers reused from message to message: fresh large allocations cost
// page faults on every message. Oversized ones are released after use.
struct Scratch {
  std::string decoded;
  std::vector<std::string> patched;  // one per changed part
  Patches patches;                   // one part's at a time
  void trim() {
    constexpr std::size_t kKeep = 1 << 20;
    auto shrink = [](std::string& s) {
      if (s.capacity() > kKeep) std::string().swap(s);
    };
    shrink(decoded);
    for (auto& s : patched) shrink(s);
    shrink(patches.text);
    if (patches.list.capacity() > kKeep / sizeof(Patch)) std::vector<Patch>().swap(patches.list);
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// How the patched content goes out in the part's transfer encoding (the encoding itself
// is written straight into the output by assemble); switches 7bit/8bit to QP when a line
// would exceed 998 octets (or 7bit would carry 8-bit bytes).
ChangedPart plan_part(int index, const Part& p, std::string_view patched, Eol eol) {
  ChangedPart c{index, patched, Output::as_is, eol, false};
  if (p.encoding == "base64") {
    c.output = Output::base64;
  } else if (p.encoding == "quoted-printable") {
    c.output = Output::qp;
  } else if (has_line_over(patched, kMaxLine) || (p.encoding == "7bit" && has_8bit_or_nul(patched))) {
    c.output = Output::qp;
    c.now_qp = true;
  }
  return c;
}

RewriteResult skip(RewriteResult r, std::string why) {
  r.changed = false;
  r.body.clear();
  r.skipped = std::move(why);
  r.links.clear();
  r.kept.clear();
  r.parts_changed = r.pixels = r.old_pixels_removed = r.old_links_restored = 0;
  r.pixel_skipped.clear();
  // Only the removal of X-Cllavio-Track survives a skip.
  std::erase_if(r.header_edits, [](const HeaderEdit& e) { return !iequals(e.name, "x-cllavio-track"); });
  return r;
}

// Splices the changed parts, encoded for their transfer encoding as they are written (and
// their new Content-Transfer-Encoding lines) into the body, writing the output once.
std::string assemble(std::string_view body, const MimeTree& tree, const std::vector<ChangedPart>& changed, Eol eol) {
  struct Piece {
    std::size_t begin, end;
    std::string_view text;
    const ChangedPart* part;  // its encoded content, or `text` when null
  };
  const std::string cte = "Content-Transfer-Encoding: quoted-printable" + std::string(eol_str(eol));
  std::vector<Piece> pieces;
  std::size_t size = body.size();
  for (const ChangedPart& c : changed) {
    const Part& p = tree.parts[c.index];
    pieces.push_back({p.body_begin, p.body_end, {}, &c});
    const std::size_t n = c.patched.size(), nl = eol_str(c.eol).size();
    switch (c.output) {  // room for the encoded content (the QP figure is what qp_encode reserves)
      case Output::as_is: size += n; break;
      case Output::qp: size += n + n / 8 + 64; break;
      case Output::base64: size += (n + 2) / 3 * 4 + (n + 56) / 57 * nl; break;
    }
    size += cte.size();
    if (!c.now_qp || c.index == 0) continue;  // part 0's header is the message header
    if (const HeaderField* f = find_field(p.headers, "Content-Transfer-Encoding"))
      pieces.push_back({f->begin, f->end, cte, nullptr});
    else if (!p.headers.empty())
      pieces.push_back({p.headers.back().end, p.headers.back().end, cte, nullptr});
    else
      pieces.push_back({p.header_begin, p.header_begin, cte, nullptr});
  }
  std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::string out;
  out.reserve(size);
  std::size_t pos = 0;
  for (const Piece& piece : pieces) {  // ranges of distinct leaf parts never overlap
    out.append(body.substr(pos, piece.begin - pos));
    if (piece.part == nullptr) out.append(piece.text);
    else if (piece.part->output == Output::base64) base64_encode(piece.part->patched, piece.part->eol, out);
    else if (piece.part->output == Output::qp) qp_encode(piece.part->patched, piece.part->eol, out);
    else out.append(piece.part->patched);
    pos = piece.end;
  }
  out.append(body.substr(pos));
  return out;
}

// The output must walk to the same tree, keep every other part byte-identical and every part's
// header as it was (but the new transfer encoding), and have no changed line over 998 octets.
std::string self_check(const RewriteInput& in, const std::vector<HeaderField>& headers, const MimeTree& before,
                       const std::string& body, const std::vector<ChangedPart>& changed, const RewriteLimits& limits) {
  MimeTree after = walk(headers, body, limits.mime);
  if (after.malformed || after.over_limit) return "output does not parse: " + after.problem;
  if (after.parts.size() != before.parts.size()) return "output has a different number of parts";
  for (std::size_t i = 0; i < after.parts.size(); ++i) {
    const Part& a = after.parts[i];
    const Part& b = before.parts[i];
    if (a.type.type != b.type.type || a.type.subtype != b.type.subtype || a.children != b.children)
      return "output structure differs at part " + std::to_string(i);
    auto c = std::find_if(changed.begin(), changed.end(),
                          [&](const ChangedPart& x) { return x.index == static_cast<int>(i); });
    const bool was_changed = c != changed.end();
    if (i > 0 && !same_part_header(in.body, b, body, a, was_changed && c->now_qp))
      return "the header of part " + std::to_string(i) + " changed";
    std::string_view new_content = std::string_view(body).substr(a.body_begin, a.body_end - a.body_begin);
    if (was_changed) {
      if (has_line_over(new_content, kMaxLine)) return "a changed line is over 998 octets";
    } else if (a.children.empty() &&
               new_content != in.body.substr(b.body_begin, b.body_end - b.body_begin)) {
      return "untouched part " + std::to_string(i) + " changed";
    }
  }
  return {};
}

}  // namespace

RewriteResult rewrite(const RewriteInput& in, const TrackingPolicy& policy, const RewriteLimits& limits,
                      const TokenCodec& codec) {
  RewriteResult r;
  std::vector<HeaderField> headers;
  std::size_t header_end = 0;
  if (!parse_header_block(in.header, limits.mime.max_header_bytes, headers, header_end))
    return skip(std::move(r), "malformed: message header");

  // Our control header never leaves the server; "off" also leaves the message alone.
  bool opted_out = false;
  int occurrences = 0;
  for (const auto& f : headers)
    if (iequals(f.name, "x-cllavio-track")) {
      ++occurrences;
      if (iequals(f.value(), "off")) opted_out = true;
    }
  for (int i = occurrences; i >= 1; --i) r.header_edits.push_back({HeaderEdit::Op::remove, "X-Cllavio-Track", i, {}});
  if (opted_out) return skip(std::move(r), "opted_out");
  if (!policy.enabled()) return skip(std::move(r), "tracking_off");
  if (policy.skip_signed && (find_field(headers, "DKIM-Signature") || find_field(headers, "ARC-Seal")))
    return skip(std::move(r), "dkim_signed");
  if (in.body_truncated || in.body.size() > limits.max_rewrite_bytes) return skip(std::move(r), "too_large");
  if (!codec.can_sign()) return skip(std::move(r), "no_key");

  MimeTree tree = walk(headers, in.body, limits.mime);
  if (tree.malformed) return skip(std::move(r), "malformed: " + tree.problem);
  if (tree.over_limit) return skip(std::move(r), "mime_limits: " + tree.problem);

  std::vector<int> targets;
  for (std::size_t i = 0; i < tree.parts.size(); ++i) {
    const Part& p = tree.parts[i];
    if (std::string why = untouchable(p); !why.empty()) return skip(std::move(r), why);
    if (!rewritable_text(p, policy) || !encoding_known(p.encoding) || !has_body(in.body, p)) continue;
    if (istarts_with(p.type.charset, "utf-16") || istarts_with(p.type.charset, "utf-32") ||
        istarts_with(p.type.charset, "ucs-") || istarts_with(p.type.charset, "unicode"))
      return skip(std::move(r), "charset: " + p.type.charset);
    std::string_view raw = in.body.substr(p.body_begin, p.body_end - p.body_begin);
    if (has_inline_pgp(raw)) return skip(std::move(r), "pgp");
    targets.push_back(static_cast<int>(i));
  }
  // HTML first: links opted out there stay untracked in the text alternative too.
  std::stable_partition(targets.begin(), targets.end(), [&](int i) { return tree.parts[i].type.subtype == "html"; });

  const Eol message_eol = detect_eol(in.body, detect_eol(in.header, Eol::crlf));
  std::vector<std::string> unsubscribe;
  if (const HeaderField* f = find_field(headers, "List-Unsubscribe")) unsubscribe = list_unsubscribe_urls(f->value());
  const MessageSigner signer(codec, in.org, in.message_id, in.recipient, policy.token_version);
  PartContext ctx{in, policy, limits, codec, signer, UrlContext{policy.domain, &unsubscribe, {}}, r, {}, 1, {}, {}, {}, 0};

  std::vector<ChangedPart> changed;
  Scratch& buf = scratch();
  // Sized before the loop: changed parts keep views into these strings, which must not
  // move (a short one lives inside the string object).
  if (buf.patched.size() < targets.size()) buf.patched.resize(targets.size());
  struct Trim {
    Scratch& s;
    ~Trim() { s.trim(); }
  } trim_after{buf};
  for (int i : targets) {
    const Part& p = tree.parts[i];
    std::string_view raw = in.body.substr(p.body_begin, p.body_end - p.body_begin);
    std::string_view decoded = raw;  // 7bit/8bit/binary: the bytes themselves
    if (p.encoding == "quoted-printable") {
      buf.decoded.clear();
      qp_decode(raw, buf.decoded);
      decoded = buf.decoded;
    } else if (p.encoding == "base64") {
      buf.decoded.clear();
      std::size_t data_end;
      if (!base64_decode(raw, buf.decoded, &data_end)) {  // text after the data would be lost: leave it all
        const char* what = data_end == std::string_view::npos ? "bad base64" : "text after the base64 data";
        return skip(std::move(r), std::string("malformed: ") + what + " in part " + std::to_string(i));
      }
      decoded = buf.decoded;
    }
    ctx.urls.charset = p.type.charset;  // 8-bit destinations are tracked only in UTF-8 parts
    if (p.type.subtype == "html")
      html_patches(decoded, ctx, buf.patches);
    else
      text_patches(decoded, ctx, buf.patches);
    if (buf.patches.list.empty()) continue;
    std::size_t k = changed.size();
    if (!apply_patches(decoded, buf.patches, buf.patched[k])) return skip(std::move(r), "self_check: overlapping patches");
    changed.push_back(plan_part(i, p, buf.patched[k], detect_eol(raw, message_eol)));
  }
  if (changed.empty()) {
    r.skipped = "";
    return r;  // nothing to track in this message: unchanged, not an error
  }

  r.body = assemble(in.body, tree, changed, message_eol);
  std::vector<HeaderField> out_headers = headers;
  if (changed.front().index == 0 && changed.front().now_qp) {  // single-part message: its header changes
    if (find_field(headers, "Content-Transfer-Encoding"))
      r.header_edits.push_back({HeaderEdit::Op::change, "Content-Transfer-Encoding", 1, "quoted-printable"});
    else
      r.header_edits.push_back({HeaderEdit::Op::add, "Content-Transfer-Encoding", 0, "quoted-printable"});
  }
  if (std::string why = self_check(in, out_headers, tree, r.body, changed, limits); !why.empty())
    return skip(std::move(r), "self_check: " + why);
  r.changed = true;
  r.parts_changed = static_cast<int>(changed.size());
  return r;
}

// Part 0's header is the message header, changed by header edits: the self-check asks this only for
// the other parts.
bool same_part_header(std::string_view before_body, const Part& b, std::string_view after_body, const Part& a,
                      bool now_qp) {
  if (!now_qp)
    return before_body.substr(b.header_begin, b.header_end - b.header_begin) ==
           after_body.substr(a.header_begin, a.header_end - a.header_begin);
  auto fields = [](std::string_view text, const Part& p) {
    std::vector<std::string_view> out;
    for (const HeaderField& f : p.headers)
      if (!iequals(f.name, "Content-Transfer-Encoding")) out.push_back(text.substr(f.begin, f.end - f.begin));
    return out;
  };
  return a.encoding == "quoted-printable" && fields(before_body, b) == fields(after_body, a);
}

std::string apply_header_edits(std::string_view header, const std::vector<HeaderEdit>& edits) {
  std::string out(header);
  const std::string nl(eol_str(detect_eol(header, Eol::crlf)));
  for (const HeaderEdit& e : edits) {
    std::vector<HeaderField> fields;
    std::size_t end = 0;
    if (!parse_header_block(out, out.size() + 1, fields, end)) break;
    if (e.op == HeaderEdit::Op::add) {
      std::size_t at = fields.empty() ? 0 : fields.back().end;
      out.insert(at, e.name + ": " + e.value + nl);
      continue;
    }
    int seen = 0;
    for (const HeaderField& f : fields) {
      if (!iequals(f.name, e.name) || ++seen != e.occurrence) continue;
      if (e.op == HeaderEdit::Op::remove)
        out.erase(f.begin, f.end - f.begin);
      else
        out.replace(f.begin, f.end - f.begin, e.name + ": " + e.value + nl);
      break;
    }
  }
  return out;
}

}  // namespace cllavio::tracking
