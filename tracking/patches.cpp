#include "tracking/patches.hpp"

#include <algorithm>

#include "tracking/html.hpp"

namespace cllavio::tracking {

namespace {

// Our own token in a URL seen again (a reply or forward quotes tracked mail).
std::optional<TokenData> our_token(std::string_view url, const TokenCodec& codec, TokenKind kind) {
  auto split = split_tracking_url(url);
  if (!split || split->first != kind) return std::nullopt;
  auto v = codec.verify(split->second);
  if (auto* t = std::get_if<TokenData>(&v)) return *t;
  return std::nullopt;
}

// Decides one link. Returns the new destination text to write, or nullopt to leave the
// bytes as they are. `restored` is set when the link was one of our old click tokens.
std::optional<std::string> decide_link(std::string url, std::string_view opt_out, PartContext& ctx) {
  bool restored = false;
  if (auto old = our_token(url, ctx.codec, TokenKind::click)) {
    url = old->url;
    restored = true;
    ++ctx.result.old_links_restored;
  }
  std::string why;
  if (!opt_out.empty()) {
    why = "opt_out";
    ctx.opted_out.push_back(url);
  } else if (!ctx.policy.clicks) {
    why = "clicks_off";
  } else if (Skip s = classify_url(url, ctx.urls); s != Skip::none) {
    why = std::string(to_string(s));
  } else if (ctx.result.links.size() >= ctx.limits.max_links) {
    why = std::string(to_string(Skip::max_links));
  }
  if (!why.empty()) {
    ctx.result.kept.push_back({url, why});
    if (restored) return url;  // an old tracked link always goes back to its destination
    return std::nullopt;
  }
  TokenData t;
  t.kind = TokenKind::click;
  t.org = ctx.in.org;
  t.message = ctx.in.message_id;
  t.recipient = ctx.in.recipient;
  t.link = ctx.next_link++;
  t.url = url;
  ctx.result.links.push_back({t.link, url});
  return ctx.codec.url(t, ctx.policy.domain);
}

const std::string& open_url(PartContext& ctx) {
  if (ctx.open_url.empty()) {
    TokenData t;
    t.kind = TokenKind::open;
    t.org = ctx.in.org;
    t.message = ctx.in.message_id;
    t.recipient = ctx.in.recipient;
    ctx.open_url = ctx.codec.url(t, ctx.policy.domain);
  }
  return ctx.open_url;
}

}  // namespace

std::vector<Patch> html_patches(std::string_view html, PartContext& ctx) {
  std::vector<Patch> patches;
  HtmlScan scan = scan_html(html);

  for (const ImageSite& img : scan.images) {
    std::string src = clean_url(decode_entities(html.substr(img.src.begin, img.src.end - img.src.begin)));
    if (our_token(src, ctx.codec, TokenKind::open)) {
      patches.push_back({img.tag_begin, img.tag_end, {}});
      ++ctx.result.old_pixels_removed;
    }
  }

  for (const LinkSite& link : scan.links) {
    std::string_view raw = html.substr(link.href.begin, link.href.end - link.href.begin);
    std::string url = clean_url(decode_entities(raw));
    if (auto dest = decide_link(std::move(url), link.opt_out, ctx)) {
      Patch p{link.href.begin, link.href.end, {}};
      escape_attr(*dest, link.href.quote, p.text);
      patches.push_back(std::move(p));
    }
  }

  if (ctx.policy.opens) {
    std::size_t at;
    if (ctx.policy.pixel == PixelPosition::top)
      at = scan.body_open_end.value_or(0);
    else
      at = scan.body_close_begin.value_or(html.size());
    Patch p{at, at, "<img src=\""};
    escape_attr(open_url(ctx), '"', p.text);
    p.text += "\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" style=\"border:0;width:1px;height:1px\">";
    patches.push_back(std::move(p));
    ++ctx.result.pixels;
  }
  return patches;
}

std::vector<Patch> text_patches(std::string_view text, PartContext& ctx) {
  std::vector<Patch> patches;
  for (auto [begin, end] : find_text_urls(text)) {
    std::string url(text.substr(begin, end - begin));
    bool opted_out = std::find(ctx.opted_out.begin(), ctx.opted_out.end(), url) != ctx.opted_out.end();
    if (auto dest = decide_link(url, opted_out ? "html" : "", ctx)) patches.push_back({begin, end, std::move(*dest)});
  }
  return patches;
}

bool apply_patches(std::string_view src, std::vector<Patch>& patches, std::string& out) {
  // Insertions sort before a replacement that starts at the same place.
  std::stable_sort(patches.begin(), patches.end(), [](const Patch& a, const Patch& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::size_t extra = 0;
  for (std::size_t i = 0; i < patches.size(); ++i) {
    if (patches[i].end < patches[i].begin || patches[i].end > src.size()) return false;
    if (i > 0 && patches[i].begin < patches[i - 1].end) return false;  // overlap
    extra += patches[i].text.size();
  }
  out.clear();  // keeps its capacity: callers reuse buffers
  out.reserve(src.size() + extra);
  std::size_t pos = 0;
  for (const Patch& p : patches) {
    out.append(src.substr(pos, p.begin - pos));
    out.append(p.text);
    pos = p.end;
  }
  out.append(src.substr(pos));
  return true;
}

}  // namespace cllavio::tracking
