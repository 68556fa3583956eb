// A configuration problem located in a file: printed as "file:line: message".
#pragma once

#include <string>
#include <vector>

namespace cllavio::conf {

struct Diagnostic {
  std::string file;
  unsigned line = 0;  // 0: the problem concerns the file as a whole
  std::string message;

  std::string str() const {
    return line == 0 ? file + ": " + message : file + ":" + std::to_string(line) + ": " + message;
  }
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace cllavio::conf
