// Options to open a store that must already exist, as the tools beside the daemon do
// (cllavioctl's commands, its rewrite preview, doctor): never created here, read-only unless
// the caller writes (erase, consent, quota reset...).
#pragma once

#include <cstdint>
#include <string>

#include "store/db.hpp"

namespace cllavio::store {

inline StoreOptions existing_store(std::string dir, std::uint64_t map_size_mb, bool writable = false) {
  StoreOptions so;
  so.dir = std::move(dir);
  so.map_size_mb = map_size_mb;
  so.create = false;
  so.read_only = !writable;
  return so;
}

}  // namespace cllavio::store
