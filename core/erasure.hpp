// A data subject's erasure as one unit of work: the store's erase (store/erase.hpp) and
// the `subject.erased` event for every org concerned, committed together.
//
// Contract: erase_subject() runs one Db::write. The event (core/event.hpp
// subject_erased_event) carries the address: it travels over verified TLS to the org's
// own controller at Cllavio, which must erase its copy; it is queued for the orgs named
// and, with all_orgs, only for orgs that held something of the address (the address is
// not disclosed to an org that never had it). Throws what Db::write throws; the store is
// unchanged then.
#pragma once

#include <cstdint>

#include "store/db.hpp"
#include "store/erase.hpp"

namespace cllavio::core {

struct Erasure {
  store::EraseReport report;
  std::size_t events_queued = 0;
};

// max_outbox_bytes: api.max_outbox_mb in bytes (the same bound every event has).
Erasure erase_subject(store::Db& db, const store::EraseRequest& req, std::uint64_t max_outbox_bytes);
// The same inside the caller's write transaction (the API erasure feed writes its cursor with it).
Erasure erase_subject(store::Tables& t, const store::EraseRequest& req, std::uint64_t max_outbox_bytes);

}  // namespace cllavio::core
