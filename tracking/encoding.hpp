// MIME transfer encodings: quoted-printable and base64 (RFC 2045 6.7, 6.8).
//
// Contract: pure functions over untrusted bytes, never throwing on malformed input.
// Decoders are lenient where mail in the wild needs it (QP: stray '=' kept, lower-
// case hex accepted) and strict where guessing would corrupt (base64: any byte that
// is neither alphabet nor whitespace fails). Encoders write lines of at most 76
// characters ended by the given line ending, so a re-encoded part keeps the
// message's CRLF or LF style. Appending to `out` lets callers avoid copies.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cllavio::tracking {

enum class Eol { crlf, lf };
inline std::string_view eol_str(Eol e) { return e == Eol::crlf ? "\r\n" : "\n"; }

// Decodes quoted-printable. Soft line breaks ("=" before CRLF or LF, optionally with
// trailing blanks) disappear; hard line breaks are kept as they are.
void qp_decode(std::string_view in, std::string& out);

// Encodes to quoted-printable with lines of at most 76 characters. Line breaks in
// `in` (CRLF or bare LF) become hard line breaks written as `eol`; a bare CR is =0D.
void qp_encode(std::string_view in, Eol eol, std::string& out);

// Decodes base64, ignoring whitespace and line breaks. Returns false (out unspecified)
// on a byte outside the alphabet, data after padding, or a truncated final group.
bool base64_decode(std::string_view in, std::string& out);

// Encodes to base64 in lines of 76 characters, each ended by `eol` (the last one too).
void base64_encode(std::string_view in, Eol eol, std::string& out);

}  // namespace cllavio::tracking
