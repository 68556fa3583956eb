// cllavioctl erase: a data subject's erasure (store/erase.hpp, core/erasure.hpp). The
// store's erase and the subject.erased events commit together; syslog gets the hash and
// the counts, never the address.
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "core/erasure.hpp"
#include "policy/consent.hpp"
#include "store/message_record.hpp"

namespace cllavio::cli {

namespace {

int usage_erase() {
  std::fprintf(stderr,
               "usage: cllavioctl [-c FILE] erase ORG ADDRESS [--json]\n"
               "       cllavioctl [-c FILE] erase --all-orgs ADDRESS [--json]\n");
  return kExitUsage;
}

std::string org_name(const std::string& org) { return org.empty() ? "(no org)" : store::printable(org); }

}  // namespace

int cmd_erase(const std::string& config_path, const Args& args) {
  bool json = false, all_orgs = false;
  std::vector<std::string> positional;
  for (const auto& a : args) {
    if (a == "--json") json = true;
    else if (a == "--all-orgs") all_orgs = true;
    else if (a.size() > 1 && a[0] == '-') return usage_erase();
    else positional.push_back(a);
  }
  if (positional.size() != (all_orgs ? 1u : 2u)) return usage_erase();
  const std::string& raw = positional.back();
  std::string address = policy::consent_address(raw);
  if (address.empty()) {
    std::fprintf(stderr, "cllavioctl: not an address: %s\n", store::printable(raw).c_str());
    return kExitUsage;
  }
  auto cfg = load(config_path, true);
  if (!cfg) return kExitUnavailable;
  store::EraseRequest req;
  req.address = address;
  req.all_orgs = all_orgs;
  req.actor = "cllavioctl (uid " + std::to_string(::getuid()) + ")";
  req.source = "cli";
  if (!all_orgs) {
    const std::string& org = positional[0];
    if (!cfg->policies.count(org)) {
      if (cfg->policies.empty())
        std::fprintf(stderr,
                     "cllavioctl: the organization files could not be read (cllavioctl check); "
                     "erase --all-orgs ADDRESS works without them\n");
      else
        std::fprintf(stderr, "cllavioctl: no organization '%s' in the configuration\n", store::printable(org).c_str());
      return kExitUsage;
    }
    req.orgs = {org};
  }
  auto st = open_store(config_path, true);
  if (!st) return kExitUnavailable;
  core::Erasure e = core::erase_subject(*st, req, cfg->api.max_outbox_mb << 20);
  const store::EraseReport& r = e.report;

  std::string orgs;
  for (const auto& o : r.orgs) orgs += (orgs.empty() ? "" : ",") + org_name(o);
  ::openlog("cllavioctl", LOG_PID, LOG_MAIL);
  ::syslog(LOG_NOTICE, "erase orgs=%s hash=%s removed=%llu events_queued=%zu by %s", orgs.c_str(), r.hash_hex.c_str(),
           static_cast<unsigned long long>(r.total()), e.events_queued, req.actor.c_str());
  ::closelog();

  std::size_t expected = 0;
  for (const auto& o : r.orgs) expected += o.empty() ? 0 : 1;
  if (e.events_queued < expected)
    std::fprintf(stderr, "cllavioctl: warning: outbox full, %zu subject.erased event(s) not queued\n",
                 expected - e.events_queued);

  if (json) {
    nlohmann::ordered_json j{{"address", r.address},
                             {"hash", r.hash_hex},
                             {"orgs", r.orgs},
                             {"records_deleted", r.records_deleted},
                             {"records_edited", r.records_edited},
                             {"delivery_states", r.delivery_states},
                             {"consent_rows", r.consent_rows},
                             {"tombstones", r.tombstones},
                             {"audit_entries", r.audit_entries},
                             {"events_dropped", r.events_dropped},
                             {"events_edited", r.events_edited},
                             {"dead_letters", r.dead_letters},
                             {"pending_lines", r.pending_lines},
                             {"chains", r.chains},
                             {"expiries", r.expiries},
                             {"total", r.total()},
                             {"events_queued", e.events_queued}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  std::printf("erased <%s> from %s (hash %s)\n", store::printable(r.address).c_str(), orgs.c_str(),
              r.hash_hex.c_str());
  std::printf("  records: %llu deleted, %llu edited; delivery states %llu, chains %llu, expiries %llu, log lines %llu\n",
              (unsigned long long)r.records_deleted, (unsigned long long)r.records_edited,
              (unsigned long long)r.delivery_states, (unsigned long long)r.chains, (unsigned long long)r.expiries,
              (unsigned long long)r.pending_lines);
  std::printf("  consent rows: %llu (tombstones kept: %llu); audit entries: %llu\n", (unsigned long long)r.consent_rows,
              (unsigned long long)r.tombstones, (unsigned long long)r.audit_entries);
  std::printf("  outbox: %llu events dropped, %llu edited; dead letters: %llu\n", (unsigned long long)r.events_dropped,
              (unsigned long long)r.events_edited, (unsigned long long)r.dead_letters);
  std::printf("  subject.erased events queued: %zu\n", e.events_queued);
  std::printf("freed pages keep old bytes until reused: run `cllavioctl store compact` (daemon stopped) to rewrite the file\n");
  return kExitOk;
}

}  // namespace cllavio::cli
