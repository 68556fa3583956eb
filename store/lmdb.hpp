// A thin RAII layer over LMDB (in the spirit of lmdbxx).
//
// Contract:
// - Env owns one environment = one file (MDB_NOSUBDIR); never open the same file
//   twice in one process (LMDB's rule). mdb_reader_check runs at open.
// - Txn aborts in its destructor unless commit() succeeded; commit() failures
//   (MDB_MAP_FULL, I/O errors) throw lmdb::Error and leave nothing half-written.
// - Integer keys are 8-byte big-endian so LMDB's byte order is numeric order.
// - prefix_range() walks the entries whose key starts with a prefix, in key order,
//   and may delete the entry it stands on.
// Every LMDB failure becomes lmdb::Error carrying the MDB_* code.
#pragma once

#include <lmdb.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cllavio::store::lmdb {

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, int code);
  int code() const { return code_; }
  bool map_full() const { return code_ == MDB_MAP_FULL; }

 private:
  int code_;
};

void check(int rc, const char* what);

struct EnvOptions {
  std::uint64_t map_size_bytes = 1ull << 30;
  unsigned max_dbs = 32;
  unsigned flags = 0;        // extra MDB_* flags (MDB_NOSYNC, MDB_NOMETASYNC, MDB_RDONLY)
  unsigned file_mode = 0600;
};

class Env {
 public:
  Env(const std::string& file, const EnvOptions& opts);  // throws Error
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* get() const { return env_; }
  int stale_readers_cleared() const { return stale_readers_; }

 private:
  MDB_env* env_ = nullptr;
  int stale_readers_ = 0;
};

class Txn {
 public:
  enum Mode { read_only, read_write };
  Txn(const Env& env, Mode mode);  // throws Error
  Txn(const Env& env, Txn& parent);  // nested write transaction: aborting it undoes only its writes
  ~Txn();
  Txn(Txn&& other) noexcept : txn_(other.txn_) { other.txn_ = nullptr; }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  void commit();  // throws Error; the handle is released either way
  void abort();
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

// Opens (and with create=true creates) a named database inside txn.
MDB_dbi open_dbi(Txn& txn, const char* name, unsigned flags);

class Cursor {
 public:
  Cursor(Txn& txn, MDB_dbi dbi);
  ~Cursor();
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // false at MDB_NOTFOUND; throws on other errors.
  bool get(MDB_val& key, MDB_val& val, MDB_cursor_op op);
  void del();  // the entry under the cursor

 private:
  MDB_cursor* cur_ = nullptr;
};

// The entries of `dbi` whose key starts with `prefix`, in key order, beginning at the
// first key >= `start` (default: the prefix itself):
//   for (auto& e : lmdb::prefix_range(txn, dbi, prefix)) { e.suffix(); e.value; e.erase(); }
// erase() deletes the entry the loop stands on; the loop then goes on with the next one.
class PrefixRange {
 public:
  struct Entry {
    std::string_view key, value;
    std::size_t prefix_size = 0;
    Cursor* cursor = nullptr;
    std::string_view suffix() const { return key.substr(prefix_size); }
    void erase() const { cursor->del(); }
  };
  class Iterator {
   public:
    explicit Iterator(PrefixRange* r) : r_(r) {}
    const Entry& operator*() const { return r_->entry_; }
    const Entry* operator->() const { return &r_->entry_; }
    Iterator& operator++() {
      r_->step(MDB_NEXT);
      return *this;
    }
    bool operator!=(std::nullptr_t) const { return r_->valid_; }

   private:
    PrefixRange* r_;
  };

  PrefixRange(Txn& txn, MDB_dbi dbi, std::string prefix, std::string start = {});
  PrefixRange(const PrefixRange&) = delete;
  PrefixRange& operator=(const PrefixRange&) = delete;
  Iterator begin();
  std::nullptr_t end() const { return nullptr; }

 private:
  void step(MDB_cursor_op op);
  Cursor cur_;
  std::string prefix_, start_;
  Entry entry_;
  bool valid_ = false;
};

inline PrefixRange prefix_range(Txn& txn, MDB_dbi dbi, std::string prefix, std::string start = {}) {
  return PrefixRange(txn, dbi, std::move(prefix), std::move(start));
}

// Returns false at MDB_NOTFOUND.
bool get(Txn& txn, MDB_dbi dbi, std::string_view key, std::string_view& out);
void put(Txn& txn, MDB_dbi dbi, std::string_view key, std::string_view val, unsigned flags = 0);
bool del(Txn& txn, MDB_dbi dbi, std::string_view key);  // false when absent

inline MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

using Be64 = std::array<char, 8>;
Be64 be64(std::uint64_t v);
std::uint64_t from_be64(std::string_view bytes);  // requires 8 bytes; throws Error otherwise
inline std::string_view view(const Be64& b) { return {b.data(), b.size()}; }

}  // namespace cllavio::store::lmdb
