// Every effect the milter has on a message goes through this interface.
//
// The libmilter shell implements it with smfi_replacebody / smfi_chgheader /
// smfi_addheader (valid only at end of message); unit tests use a recording fake,
// so what a session does to a message is checked without Postfix. Each call
// returns false when the MTA could not be told.
#pragma once

#include <string_view>

namespace cllavio::core {

class MilterActions {
 public:
  virtual ~MilterActions() = default;
  virtual bool replace_body(std::string_view body) = 0;
  // occurrence: 1-based among the header fields with that name
  virtual bool change_header(std::string_view name, int occurrence, std::string_view value) = 0;
  virtual bool remove_header(std::string_view name, int occurrence) = 0;
  virtual bool add_header(std::string_view name, std::string_view value) = 0;
  // The recipient exactly as the MTA gave it at RCPT TO.
  virtual bool delete_recipient(std::string_view rcpt) = 0;
};

}  // namespace cllavio::core
