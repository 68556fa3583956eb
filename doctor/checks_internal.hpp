// Shared by the checks_*.cpp files: an instance's parameters (expanded, with Postfix's
// defaults), fix-line builders (postconf -c DIR -e / -X / -P / -PX) and the Finding maker.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "doctor/facts.hpp"
#include "doctor/finding.hpp"

namespace cllavio::doctor::detail {

inline constexpr std::string_view kDefaultConfigDir = "/etc/postfix";

struct Instance {
  const PostfixInstance& pf;
  const Facts& facts;

  // The expanded value of a main.cf parameter (postconf -x), Postfix's default when unknown.
  std::string param(const std::string& name, std::string_view fallback = "") const;
  // A master.cf override of a service, $-expanded with main.cf's parameters; nullopt when none.
  std::optional<std::string> override_of(const Service& svc, const std::string& name) const;
  std::string queue_directory() const { return param("queue_directory", "/var/spool/postfix"); }

  // "postconf" or "postconf -c DIR".
  std::string postconf() const;
  std::string set_main(std::string_view name, std::string_view value) const;  // -e 'name = value'
  std::string unset_main(std::string_view name) const;                        // -X name
  std::string set_service(const Service& svc, std::string_view name, std::string_view value) const;  // -P
  std::string unset_service(const Service& svc, std::string_view name) const;                        // -PX
};

Finding make(std::string id, Severity sev, std::string instance, std::string title, std::string why = "",
             std::string fix = "");

bool is_smtpd(const Service& svc);
bool is_cleanup(const Service& svc);
bool chrooted(const Service& svc);  // master.cf chroot column "y" ("-" is n since Postfix 3.0)
// An inet service bound to a loopback address (127.0.0.1:10025, [::1]:10025, localhost:10025).
bool loopback_service(const Service& svc);
std::string service_label(const Service& svc);  // "submission/inet"

// Per area; each appends to out.
void check_milter_lists(const Instance& in, std::vector<Finding>& out);   // checks_milter.cpp
void check_services(const Instance& in, std::vector<Finding>& out);       // checks_milter.cpp
void check_chroot(const Instance& in, std::vector<Finding>& out);         // checks_milter.cpp
void check_parameters(const Instance& in, std::vector<Finding>& out);     // checks_params.cpp

}  // namespace cllavio::doctor::detail
