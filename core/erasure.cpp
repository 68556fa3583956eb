// A data subject's erasure: the store's erase and its subject.erased events, one write.
#include "core/erasure.hpp"

#include <algorithm>

#include "core/event.hpp"

namespace cllavio::core {

Erasure erase_subject(store::Tables& t, const store::EraseRequest& req, std::uint64_t max_outbox_bytes) {
  Erasure e;
  e.report = store::erase_address(t, req);
  for (const auto& org : e.report.orgs) {
    if (org.empty()) continue;  // records of no org: nobody to tell
    auto a = std::find_if(e.report.audited.begin(), e.report.audited.end(),
                          [&](const store::AuditEntry& x) { return x.org == org; });
    if (a == e.report.audited.end()) continue;
    Event ev = subject_erased_event(org, e.report.address, a->at_us, req.source, a->id);
    if (t.outbox.put(org, to_text(ev), max_outbox_bytes)) ++e.events_queued;
  }
  return e;
}

Erasure erase_subject(store::Db& db, const store::EraseRequest& req, std::uint64_t max_outbox_bytes) {
  Erasure out;
  db.write([&](store::Tables& t) {
    out = erase_subject(t, req, max_outbox_bytes);  // kept only once the whole unit of work ran
  });
  return out;
}

}  // namespace cllavio::core
