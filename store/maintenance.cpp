// The store as a file: map use (here), per-table statistics and the compacting copy.
#include "store/maintenance.hpp"

#include <sys/stat.h>

#include <cstring>

#include "store/db.hpp"

namespace cllavio::store {

MapUse map_use(const Db& db) {
  MapUse u;
  MDB_envinfo info{};
  MDB_stat st{};
  lmdb::check(mdb_env_info(db.env().get(), &info), "mdb_env_info");
  lmdb::check(mdb_env_stat(db.env().get(), &st), "mdb_env_stat");
  const std::uint64_t psize = st.ms_psize;
  u.map_bytes = info.me_mapsize;
  struct stat fst{};
  if (::stat(db.file().c_str(), &fst) == 0) u.file_bytes = static_cast<std::uint64_t>(fst.st_size);
  // The free list (database 0): each value is a list of page numbers, its count first.
  std::uint64_t free_pages = 0;
  lmdb::Txn txn(db.env(), lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, 0);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok; ok = cur.get(k, v, MDB_NEXT)) {
    if (v.mv_size < sizeof(std::size_t)) continue;
    std::size_t n = 0;
    std::memcpy(&n, v.mv_data, sizeof n);
    free_pages += n;
  }
  std::uint64_t high = static_cast<std::uint64_t>(info.me_last_pgno) + 1;
  u.free_bytes = free_pages * psize;
  u.used_bytes = (high > free_pages ? high - free_pages : 0) * psize;
  return u;
}

}  // namespace cllavio::store
