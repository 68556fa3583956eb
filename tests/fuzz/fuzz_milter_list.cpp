// Fuzzes Postfix milter-list parsing and $-expansion (doctor/milter_list.hpp). The input is
// a list; its first line, when it has several, is read as `name=value` parameters. A list
// written back by join_milter_list parses to the same endpoints and settings, and every
// endpoint helper accepts whatever the parser produced.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "doctor/milter_list.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cllavio::doctor;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Params params;
  if (auto nl = in.find('\n'); nl != std::string_view::npos) {
    for (const auto& item : split_list(in.substr(0, nl)))
      if (auto eq = item.find('='); eq != std::string::npos) params[item.substr(0, eq)] = item.substr(eq + 1);
    in = in.substr(nl + 1);
  }
  const std::string value = expand(in, params);
  const auto entries = parse_milter_list(value);
  const auto again = parse_milter_list(join_milter_list(entries));
  if (again.size() != entries.size()) std::abort();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (again[i].endpoint != entries[i].endpoint || again[i].settings != entries[i].settings) std::abort();
    (void)parse_endpoint(entries[i].endpoint);
    if (auto pf = libmilter_to_postfix(entries[i].endpoint)) (void)parse_endpoint(*pf);
    (void)same_endpoint(entries[i].endpoint, "unix:/var/spool/postfix/cllavio/milter.sock", "/var/spool/postfix");
    (void)same_endpoint(entries[i].endpoint, "inet:localhost:8891", "/var/spool/postfix", true);
  }
  return 0;
}
