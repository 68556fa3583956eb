// The host-local store: one LMDB environment (STORE_DIR/cllavio.mdb) that owns every table.
//
// Contract:
// - write(fn) is the one unit of work: fn gets every table (store/tables.hpp) inside one
//   write transaction; everything it writes commits together or not at all. Concurrent
//   writers share one commit and one sync (store/group_commit.hpp); a piece that throws
//   is rolled back alone and its exception rethrown to its caller. write() returns once
//   committed. Every failure throws (lmdb::Error for LMDB's, map full included) and
//   leaves the store unchanged.
// - read() is the one read view: a read transaction with every table, const.
// - Message ids are unique and time-ordered: max(now in microseconds, last id + 1), from
//   an atomic seeded with the store's last id; one writing daemon per store is enforced
//   with a lock file (exclusive).
// - A writer migrates an older store on open (schema 1 -> 2: the address index is built
//   from the records; 2 -> 3: the retention index), in one transaction; a store from a newer schema is refused. A
//   read-only opener reads an older store as it is (tables it lacks read as empty).
// Safe to share between threads; LMDB serializes writers across processes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/group_commit.hpp"
#include "store/lmdb.hpp"
#include "store/tables.hpp"

namespace cllavio::store {

enum class Sync { full, meta, none };

std::int64_t realtime_us();  // unix time in microseconds

struct StoreOptions {
  std::string dir;
  std::uint64_t map_size_mb = 1024;
  Sync sync = Sync::meta;
  bool create = true;                        // false: fail when the store does not exist
  bool read_only = false;                    // MDB_RDONLY: readers only (cllavioctl); write() throws
  bool exclusive = false;                    // one writing daemon per store (flock on cllavio.mdb-writer)
  std::function<std::int64_t()> now_us;      // defaults to the realtime clock
};

class Db {
 public:
  static constexpr int kSchemaVersion = 3;
  static constexpr const char* kFileName = "cllavio.mdb";

  explicit Db(const StoreOptions& opts);  // throws lmdb::Error or std::runtime_error
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // A new message id. The milter takes one before the rewrite (tokens carry it).
  std::uint64_t allocate_id();

  void write(const std::function<void(Tables&)>& fn);

  // A read transaction with every table; keep it short (it pins the pages it sees).
  class View {
   public:
    explicit View(const Db& db);
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    const Tables* operator->() const { return &tables_; }
    const Tables& operator*() const { return tables_; }

   private:
    lmdb::Txn txn_;
    Tables tables_;
  };
  View read() const { return View(*this); }

  void sync();  // force buffered writes to disk (sync = none/meta)

  const std::string& file() const { return file_; }
  std::vector<std::string> files() const { return {file_, file_ + "-lock"}; }
  int stale_readers_cleared() const { return env_->stale_readers_cleared(); }
  const GroupCommitter& committer() const { return *committer_; }  // not for read-only stores
  lmdb::Env& env() const { return *env_; }
  bool read_only() const { return committer_ == nullptr; }
  std::int64_t now_us() const { return now_us_(); }
  int schema_version() const { return schema_; }
  const Handles& handles() const { return h_; }  // the tables' handles (store/maintenance.cpp)

  // What opening did to an older store (the daemon logs it).
  struct Migration {
    int from = 0;
    std::uint64_t records = 0;  // records indexed
  };
  const std::optional<Migration>& migrated() const { return migrated_; }

 private:
  void open_tables(lmdb::Txn& txn, bool writable);
  void migrate(lmdb::Txn& txn, int from);

  std::string file_;
  std::function<std::int64_t()> now_us_;
  std::unique_ptr<lmdb::Env> env_;
  std::unique_ptr<GroupCommitter> committer_;
  std::atomic<std::uint64_t> last_id_{0};
  int writer_lock_fd_ = -1;
  int schema_ = kSchemaVersion;
  std::optional<Migration> migrated_;
  Handles h_;
};

}  // namespace cllavio::store
