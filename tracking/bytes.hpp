// Fast byte searches for the rewrite engine's hot loops (internal to tracking/).
//
// find_bytes() finds a substring with an SSE2 filter (first, middle and last byte of the
// needle compared 16 positions at a time, candidates confirmed with memcmp): glibc's
// memmem and a first-byte memchr both crawl through CSS, which is full of '-'.
// has_line_over() answers "is any line longer than max octets" with one memrchr per
// max+2 bytes instead of one memchr per line. Both take untrusted input and never read
// outside the given range. SSE2 is part of x86-64; other targets get plain loops.
#pragma once

#include <cstddef>
#include <string_view>

namespace cllavio::tracking {

// The offset of the first occurrence of `needle` in `hay` at or after `from`, or npos.
// An empty needle matches at `from` (when from <= hay.size()).
std::size_t find_bytes(std::string_view hay, std::string_view needle, std::size_t from = 0);

// True when a line of `s` (split at LF; a CR right before the LF or at the very end
// does not count) has more than `max` octets. The same as "longest line > max".
bool has_line_over(std::string_view s, std::size_t max);

}  // namespace cllavio::tracking
