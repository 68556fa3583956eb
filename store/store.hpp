// The host-local store: one LMDB environment (STORE_DIR/cllavio.mdb).
//
// Databases inside it:
//   meta       "schema" -> version; refuses a store written by a newer schema
//   messages   8-byte big-endian message id -> CBOR MessageRecord
//   by_queue   Postfix queue id -> message ids (dupsort, big-endian: time order)
// store/policy_store.hpp adds consent, audit and quota databases to the same
// environment, so that one write transaction at end of message covers them all.
//
// Contract: append() is atomic (its own nested transaction inside a group commit
// shared with concurrent appends, see store/group_commit.hpp) and returns once
// committed. Message ids are unique and time-ordered: max(now in microseconds,
// last id + 1) from an atomic seeded with the store's last id; one writing daemon
// per store is enforced with a lock file. Every failure throws lmdb::Error (map
// full included) and leaves the store unchanged. Safe to share between threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/group_commit.hpp"
#include "store/lmdb.hpp"
#include "store/message_record.hpp"

namespace cllavio::store {

enum class Sync { full, meta, none };

std::int64_t realtime_us();  // unix time in microseconds

struct StoreOptions {
  std::string dir;
  std::uint64_t map_size_mb = 1024;
  Sync sync = Sync::meta;
  bool create = true;                        // false: fail when the store does not exist
  bool read_only = false;                    // MDB_RDONLY: readers only (cllavioctl); append() throws
  bool exclusive = false;                    // one writing daemon per store (flock on cllavio.mdb-writer)
  std::function<std::int64_t()> now_us;      // defaults to the realtime clock
};

class Store {
 public:
  static constexpr int kSchemaVersion = 1;
  static constexpr const char* kFileName = "cllavio.mdb";

  explicit Store(const StoreOptions& opts);  // throws lmdb::Error or std::runtime_error
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // A new message id: max(now in microseconds, last id + 1). The milter takes one before
  // the rewrite (tokens carry it) and appends the record with it at end of message.
  std::uint64_t allocate_id();
  // Uses rec.id, or allocates one when 0. `also` runs in the same transaction (the
  // quota charge and, later, the outbox event): all of it commits, or none.
  std::uint64_t append(MessageRecord& rec, const std::function<void(lmdb::Txn&)>& also = {});
  std::optional<MessageRecord> get(std::uint64_t id) const;
  std::vector<MessageRecord> find_by_queue_id(std::string_view queue_id) const;
  // Records in id order starting at from_id; stops when fn returns false.
  void scan(const std::function<bool(const MessageRecord&)>& fn, std::uint64_t from_id = 0) const;

  void sync();  // force buffered writes to disk (store.sync = none/meta)

  const std::string& file() const { return file_; }
  std::vector<std::string> files() const { return {file_, file_ + "-lock"}; }
  int stale_readers_cleared() const { return env_->stale_readers_cleared(); }
  const GroupCommitter& committer() const { return *committer_; }  // not for read-only stores
  lmdb::Env& env() const { return *env_; }
  // Opens (a writer: creates) more named databases of this environment, for the tables
  // other classes keep here. False when a read-only opener finds a store that predates
  // them: every handle is then 0 and the caller reads as empty.
  bool open_tables(std::initializer_list<std::pair<const char*, MDB_dbi*>> tables);
  bool read_only() const { return committer_ == nullptr; }
  std::int64_t now_us() const { return now_us_(); }

 private:
  std::string file_;
  std::function<std::int64_t()> now_us_;
  std::unique_ptr<lmdb::Env> env_;
  std::unique_ptr<GroupCommitter> committer_;
  std::atomic<std::uint64_t> last_id_{0};
  int writer_lock_fd_ = -1;
  MDB_dbi meta_ = 0, messages_ = 0, by_queue_ = 0;
};

}  // namespace cllavio::store
