// MIME transfer encodings: quoted-printable and base64 (RFC 2045 6.7, 6.8).
//
// Contract: pure functions over untrusted bytes, never throwing on malformed input.
// Decoders are lenient where mail in the wild needs it (QP: stray '=' kept, lower-
// case hex accepted) and strict where guessing would corrupt (base64: only the shape
// encoders write, so text after the data is found, never dropped). Encoders write
// lines of at most 76 characters ended by the given line ending, so a re-encoded part
// keeps the message's CRLF or LF style. Appending to `out` lets callers avoid copies.
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

// Decodes base64 strictly, so that text appended after the data (a mailing list's
// footer) is found instead of being decoded into garbage or dropped. The content is
// lines of alphabet characters; a line may end with blanks and CR before its LF, and
// blank lines may come before the data. Returns false (out unspecified) on any other
// byte (a blank inside or before the data of a line too), on '=' other than one or two
// at the end of the last data line, on a data line after a blank line that followed
// data, when a data line but the last differs in length from the first or the last is
// longer, or when the characters do not make whole 4-character groups. On failure,
// `*data_end` (when given) is where the text after whole base64 data begins (the start
// of the line that broke a rule), or npos when what came before was not whole data.
// Alphabet-only text of the right length right after unpadded data cannot be told
// from data.
bool base64_decode(std::string_view in, std::string& out, std::size_t* data_end = nullptr);

// Encodes to base64 in lines of 76 characters, each ended by `eol` (the last one too).
void base64_encode(std::string_view in, Eol eol, std::string& out);

}  // namespace cllavio::tracking
