// cllavio.toml(5): the configuration reference as a man(7) page, rendered from the same
// Key data as render_reference() (conf/schemas.hpp), so the page cannot drift from the
// parser. `cllavioctl config-reference --man` prints it; man/CMakeLists.txt writes it to
// the build tree at build time and installs it.
//
// Contract: the output is groff -man source that `man --warnings -l` renders without
// warnings: every text is escaped with man_text() (backslash -> \e, '-' -> \-, a line
// starting with '.' or '\'' is protected with \&, non-ASCII as \[uXXXX]), `code` spans of
// the docs become bold, and every key of the three schemas (and the element keys of their
// arrays of tables) is one .TP entry with its type, default, allowed values and doc.
#pragma once

#include <string>
#include <string_view>

namespace cllavio::conf {

// Text for a man page text line: escaped as above; `code` spans (paired backticks) in bold.
std::string man_text(std::string_view text);

// The whole page (groff -man source).
std::string render_reference_man();

}  // namespace cllavio::conf
