#include "store/lmdb.hpp"

namespace cllavio::store::lmdb {

Error::Error(const std::string& what, int code)
    : std::runtime_error(what + ": " + mdb_strerror(code)), code_(code) {}

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw Error(what, rc);
}

Env::Env(const std::string& file, const EnvOptions& opts) {
  check(mdb_env_create(&env_), "mdb_env_create");
  try {
    check(mdb_env_set_maxdbs(env_, opts.max_dbs), "mdb_env_set_maxdbs");
    check(mdb_env_set_mapsize(env_, opts.map_size_bytes), "mdb_env_set_mapsize");
    // Many milter threads: up to one reader slot per concurrent read transaction.
    check(mdb_env_set_maxreaders(env_, 1024), "mdb_env_set_maxreaders");
    check(mdb_env_open(env_, file.c_str(), MDB_NOSUBDIR | MDB_NOTLS | opts.flags, opts.file_mode),
          ("mdb_env_open " + file).c_str());
    check(mdb_reader_check(env_, &stale_readers_), "mdb_reader_check");
  } catch (...) {
    mdb_env_close(env_);
    throw;
  }
}

Env::~Env() {
  if (env_ != nullptr) mdb_env_close(env_);
}

Txn::Txn(const Env& env, Mode mode) {
  check(mdb_txn_begin(env.get(), nullptr, mode == read_only ? MDB_RDONLY : 0, &txn_), "mdb_txn_begin");
}

Txn::Txn(const Env& env, Txn& parent) {
  check(mdb_txn_begin(env.get(), parent.get(), 0, &txn_), "mdb_txn_begin (nested)");
}

Txn::~Txn() { abort(); }

void Txn::commit() {
  MDB_txn* t = txn_;
  txn_ = nullptr;  // mdb_txn_commit frees the handle even when it fails
  check(mdb_txn_commit(t), "mdb_txn_commit");
}

void Txn::abort() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

MDB_dbi open_dbi(Txn& txn, const char* name, unsigned flags) {
  MDB_dbi dbi = 0;
  check(mdb_dbi_open(txn.get(), name, flags, &dbi), name);
  return dbi;
}

Cursor::Cursor(Txn& txn, MDB_dbi dbi) { check(mdb_cursor_open(txn.get(), dbi, &cur_), "mdb_cursor_open"); }

Cursor::~Cursor() {
  if (cur_ != nullptr) mdb_cursor_close(cur_);
}

bool Cursor::get(MDB_val& key, MDB_val& v, MDB_cursor_op op) {
  int rc = mdb_cursor_get(cur_, &key, &v, op);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_cursor_get");
  return true;
}

bool get(Txn& txn, MDB_dbi dbi, std::string_view key, std::string_view& out) {
  MDB_val k = val(key), v{};
  int rc = mdb_get(txn.get(), dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_get");
  out = view(v);
  return true;
}

void put(Txn& txn, MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = val(key), v = val(value);
  check(mdb_put(txn.get(), dbi, &k, &v, flags), "mdb_put");
}

bool del(Txn& txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = val(key);
  int rc = mdb_del(txn.get(), dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_del");
  return true;
}

PrefixRange::PrefixRange(Txn& txn, MDB_dbi dbi, std::string prefix, std::string start)
    : cur_(txn, dbi), prefix_(std::move(prefix)), start_(start.empty() ? prefix_ : std::move(start)) {
  entry_.prefix_size = prefix_.size();
  entry_.cursor = &cur_;
}

PrefixRange::Iterator PrefixRange::begin() {
  step(MDB_SET_RANGE);
  return Iterator(this);
}

void PrefixRange::step(MDB_cursor_op op) {
  MDB_val k{}, v{};
  if (op == MDB_SET_RANGE && start_.empty()) op = MDB_FIRST;  // LMDB refuses an empty key
  if (op == MDB_SET_RANGE) k = val(start_);
  valid_ = cur_.get(k, v, op);
  if (!valid_) return;
  entry_.key = view(k);
  entry_.value = view(v);
  valid_ = entry_.key.substr(0, prefix_.size()) == prefix_;
}

void Cursor::del() { check(mdb_cursor_del(cur_, 0), "mdb_cursor_del"); }

Be64 be64(std::uint64_t v) {
  Be64 b;
  for (int i = 7; i >= 0; --i) {
    b[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return b;
}

std::uint64_t from_be64(std::string_view bytes) {
  if (bytes.size() != 8) throw Error("bad integer key", MDB_CORRUPTED);
  std::uint64_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

}  // namespace cllavio::store::lmdb
