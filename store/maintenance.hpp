// The store as a file: how full its map is, what each table holds, and a compacting copy.
//
// Contract:
// - map_use() is cheap enough to call every minute from the daemon: it reads the
//   environment's info and walks LMDB's free list (pages the next writes reuse) in one
//   read transaction. used = pages in use (high-water mark minus free pages).
// - stats() adds, per table, its entries, its pages and, for tables whose keys are
//   time-ordered (records, audit, quota charges, delivery states, outbox, dead letters),
//   the time of the oldest entry; plus the pruner's last run (meta prune_status).
// - compact() needs the daemon stopped: it takes the store's writer lock (the same flock
//   the daemon holds while it runs) and refuses when it cannot. It writes a compacting
//   copy (mdb_env_copy2, MDB_CP_COMPACT: only live pages, free pages are not copied) to
//   DIR/cllavio.mdb.compact, fsyncs it, renames it over cllavio.mdb and fsyncs the folder,
//   so a crash at any point leaves either the old file or the new one, both complete.
//   Ownership and mode of the old file are kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cllavio::store {

class Db;

struct MapUse {
  std::uint64_t map_bytes = 0;   // the configured map (the most the file can grow to)
  std::uint64_t file_bytes = 0;  // the data file's size on disk
  std::uint64_t used_bytes = 0;  // pages holding data (high-water mark minus the free list)
  std::uint64_t free_bytes = 0;  // pages in the file that new writes reuse
  double ratio() const { return map_bytes == 0 ? 0.0 : static_cast<double>(used_bytes) / static_cast<double>(map_bytes); }
};
MapUse map_use(const Db& db);

struct TableStats {
  std::string name;
  std::uint64_t entries = 0;
  std::uint64_t pages = 0;          // branch + leaf + overflow pages
  std::optional<std::int64_t> oldest_us;  // time-ordered tables with entries
};

struct StoreStats {
  std::string file;
  int schema = 0;
  MapUse map;
  std::vector<TableStats> tables;
  std::string last_prune;  // the pruner's last run as JSON ("" before the first)
};
StoreStats stats(const Db& db);

struct CompactResult {
  std::uint64_t before_bytes = 0, after_bytes = 0;
};
// Throws std::runtime_error with a clear message (daemon running, no store, disk full).
CompactResult compact(const std::string& dir);

}  // namespace cllavio::store
