#include "tracking/patches.hpp"

#include <algorithm>
#include <iterator>

#include "tracking/html.hpp"

namespace cllavio::tracking {

namespace {

// The open pixel: a 1x1 image in a box that takes no room in the layout, so that the
// message looks the same with it wherever the content ends (docs/tracking.md, "The pixel").
constexpr std::string_view kPixelBoxOpen =
    "<div style=\"position:absolute;height:0;max-height:0;overflow:hidden;line-height:0;font-size:0\">";
constexpr std::string_view kPixelImg = "<img src=\"";
constexpr std::string_view kPixelImgRest =
    "\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" style=\"display:block;border:0;width:1px;height:1px\">";
constexpr std::string_view kPixelBoxClose = "</div>";

// Our own token in a URL seen again (a reply or forward quotes tracked mail).
std::optional<TokenData> our_token(std::string_view url, const TokenCodec& codec, TokenKind kind) {
  auto split = split_tracking_url(url);
  if (!split || split->first != kind) return std::nullopt;
  auto v = codec.verify(split->second);
  if (auto* t = std::get_if<TokenData>(&v)) return *t;
  return std::nullopt;
}

// The destination of an old version 2 click token: from the link table of its message,
// looked up once per (org, message), for at most kMaxOldTables messages and while the
// tables held stay under kMaxOldTableBytes per rewrite (a reply quotes one or a few; a
// table may hold 1,000 links of 4 KB); nullopt when that table is not at hand (no lookup,
// the store no longer has it, over a cap) or lacks the link.
constexpr std::size_t kMaxOldTables = 8;
constexpr std::size_t kMaxOldTableBytes = 4u << 20;

std::optional<std::string> old_destination(const TokenData& old, PartContext& ctx) {
  if (!ctx.in.old_links) return std::nullopt;
  auto it = std::find_if(ctx.old_tables.begin(), ctx.old_tables.end(), [&](const OldTable& t) {
    return t.message == old.message && t.org == old.org;
  });
  if (it == ctx.old_tables.end()) {
    if (ctx.old_tables.size() >= kMaxOldTables || ctx.old_table_bytes >= kMaxOldTableBytes) return std::nullopt;
    ctx.old_tables.push_back({old.org, old.message, ctx.in.old_links(old.org, old.message)});
    it = std::prev(ctx.old_tables.end());
    if (it->links)
      for (const TrackedLink& l : *it->links) ctx.old_table_bytes += l.url.size() + sizeof l;
  }
  if (!it->links) return std::nullopt;
  for (const TrackedLink& l : *it->links)
    if (l.index == old.link) return l.url;
  return std::nullopt;
}

// Decides one link: true when its bytes become `dest` (a tracked link, or one of our
// old click tokens restored to its destination), false to leave them as they are.
bool decide_link(std::string url, std::string_view opt_out, PartContext& ctx, std::string& dest) {
  bool restored = false;
  if (auto old = our_token(url, ctx.codec, TokenKind::click)) {
    std::optional<std::string> to = old->version == 1 ? std::optional<std::string>(std::move(old->url))
                                                      : old_destination(*old, ctx);
    if (!to) {  // a compact token whose destination is not known here: left as it is
      ctx.result.kept.push_back({std::move(url), "old_token_unresolved"});
      return false;
    }
    url = std::move(*to);
    restored = true;
    ++ctx.result.old_links_restored;
  }
  UrlContext urls = ctx.urls;
  if (restored) urls.charset = "utf-8";  // the destination comes from our token, not from this part's bytes
  std::string_view why;
  if (!opt_out.empty()) {
    why = "opt_out";
    ctx.opted_out.push_back(url);
  } else if (!ctx.policy.clicks) {
    why = "clicks_off";
  } else if (Skip s = classify_url(url, urls); s != Skip::none) {
    why = to_string(s);
  } else if (ctx.result.links.size() >= ctx.limits.max_links) {
    why = to_string(Skip::max_links);
  }
  if (!why.empty()) {
    if (restored) dest = url;  // an old tracked link always goes back to its destination
    ctx.result.kept.push_back({std::move(url), std::string(why)});
    return restored;
  }
  std::uint32_t link = ctx.next_link++;
  dest.clear();
  ctx.signer.append_url(ctx.policy.domain, TokenKind::click, link, url, dest);
  ctx.result.links.push_back({link, std::move(url)});
  return true;
}

// What a browser follows for an attribute's raw bytes: entities decoded (into the
// context's scratch buffer, only when there is a '&'), then spaces and breaks cleaned.
std::string link_url(std::string_view raw, PartContext& ctx) {
  if (raw.find('&') == std::string_view::npos) return clean_url(raw);
  ctx.url_scratch.clear();
  decode_entities(raw, ctx.url_scratch);
  return clean_url(ctx.url_scratch);
}

const std::string& open_url(PartContext& ctx) {
  if (ctx.open_url.empty()) ctx.signer.append_url(ctx.policy.domain, TokenKind::open, 0, {}, ctx.open_url);
  return ctx.open_url;
}

}  // namespace

void html_patches(std::string_view html, PartContext& ctx, Patches& patches) {
  patches.clear();
  HtmlScan scan = scan_html(html);

  for (const ImageSite& img : scan.images) {
    std::string src = link_url(html.substr(img.src.begin, img.src.end - img.src.begin), ctx);
    if (our_token(src, ctx.codec, TokenKind::open)) {
      // The box goes with it when it is exactly ours.
      bool boxed = img.tag_begin >= kPixelBoxOpen.size() &&
                   html.substr(img.tag_begin - kPixelBoxOpen.size(), kPixelBoxOpen.size()) == kPixelBoxOpen &&
                   html.substr(img.tag_end, kPixelBoxClose.size()) == kPixelBoxClose;
      if (boxed)
        patches.add(img.tag_begin - kPixelBoxOpen.size(), img.tag_end + kPixelBoxClose.size(), patches.text.size());
      else
        patches.add(img.tag_begin, img.tag_end, patches.text.size());
      ++ctx.result.old_pixels_removed;
    }
  }

  std::string dest;
  for (const LinkSite& link : scan.links) {
    std::string_view raw = html.substr(link.href.begin, link.href.end - link.href.begin);
    if (decide_link(link_url(raw, ctx), link.opt_out, ctx, dest)) {
      std::size_t from = patches.text.size();
      escape_attr(dest, link.href.quote, patches.text);
      patches.add(link.href.begin, link.href.end, from);
    }
  }

  if (ctx.policy.opens) {
    // Only where a browser reads text: in a part that ends inside an unterminated tag,
    // comment or raw-text element (truncated mail) a pixel at the end would become part of it.
    std::optional<std::size_t> at;
    if (ctx.policy.pixel == PixelPosition::top) {
      at = scan.body_open_end.value_or(0);
      if (scan.unclosed_at && *at > *scan.unclosed_at) at.reset();
    } else {
      at = body_end(html, scan);
    }
    if (at) {
      std::size_t from = patches.text.size();
      patches.text.append(kPixelBoxOpen).append(kPixelImg);
      escape_attr(open_url(ctx), '"', patches.text);
      patches.text.append(kPixelImgRest).append(kPixelBoxClose);
      patches.add(*at, *at, from);
      ++ctx.result.pixels;
    } else {
      ctx.result.pixel_skipped = "unclosed_markup";
    }
  }
}

void text_patches(std::string_view text, PartContext& ctx, Patches& patches) {
  patches.clear();
  std::string dest;
  for (auto [begin, end] : find_text_urls(text)) {
    std::string url(text.substr(begin, end - begin));
    bool opted_out = std::find(ctx.opted_out.begin(), ctx.opted_out.end(), url) != ctx.opted_out.end();
    if (decide_link(std::move(url), opted_out ? "html" : "", ctx, dest)) {
      std::size_t from = patches.text.size();
      patches.text.append(dest);
      patches.add(begin, end, from);
    }
  }
}

bool apply_patches(std::string_view src, Patches& patches, std::string& out) {
  std::vector<Patch>& list = patches.list;
  // Insertions sort before a replacement that starts at the same place.
  std::stable_sort(list.begin(), list.end(), [](const Patch& a, const Patch& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::size_t extra = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].end < list[i].begin || list[i].end > src.size()) return false;
    if (i > 0 && list[i].begin < list[i - 1].end) return false;  // overlap
    extra += list[i].text_size;
  }
  out.clear();  // keeps its capacity: callers reuse buffers
  out.reserve(src.size() + extra);
  std::size_t pos = 0;
  for (const Patch& p : list) {
    out.append(src.substr(pos, p.begin - pos));
    out.append(patches.text_of(p));
    pos = p.end;
  }
  out.append(src.substr(pos));
  return true;
}

}  // namespace cllavio::tracking
