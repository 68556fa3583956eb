#include "store/db.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <openssl/rand.h>

#include "store/keys.hpp"

namespace cllavio::store {

std::int64_t realtime_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

unsigned sync_flags(Sync s) {
  switch (s) {
    case Sync::meta: return MDB_NOMETASYNC;
    case Sync::none: return MDB_NOSYNC;
    case Sync::full: break;
  }
  return 0;
}

// Opens a named database; a reader gets 0 for one the store does not have yet.
MDB_dbi open_or_zero(lmdb::Txn& txn, const char* name, unsigned flags, bool writable) {
  MDB_dbi dbi = 0;
  int rc = mdb_dbi_open(txn.get(), name, flags | (writable ? MDB_CREATE : 0), &dbi);
  if (rc == MDB_NOTFOUND && !writable) return 0;
  lmdb::check(rc, name);
  return dbi;
}

}  // namespace

Db::Db(const StoreOptions& opts)
    : file_((std::filesystem::path(opts.dir) / kFileName).string()),
      now_us_(opts.now_us ? opts.now_us : realtime_us) {
  std::error_code ec;
  if (opts.create) {
    // Only a folder created here gets our mode; an existing one is the admin's (or the
    // daemon checked it, milter/privileges.hpp).
    if (std::filesystem::create_directories(opts.dir, ec)) ::chmod(opts.dir.c_str(), 0700);
    if (ec) throw std::runtime_error("cannot create store folder " + opts.dir + ": " + ec.message());
  } else if (!std::filesystem::exists(file_, ec)) {
    throw std::runtime_error("no store at " + file_ + " (the milter creates it when it starts)");
  }
  if (opts.exclusive) {
    std::string lock = file_ + "-writer";
    writer_lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (writer_lock_fd_ < 0) throw std::runtime_error("cannot open " + lock + ": " + std::strerror(errno));
    if (::flock(writer_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(writer_lock_fd_);
      throw std::runtime_error("another cllavio-milter is writing to " + file_);
    }
  }
  try {
    lmdb::EnvOptions eo;
    eo.map_size_bytes = opts.map_size_mb * 1024 * 1024;
    eo.flags = sync_flags(opts.sync) | (opts.read_only ? MDB_RDONLY : 0);
    env_ = std::make_unique<lmdb::Env>(file_, eo);

    bool writable = !opts.read_only;
    lmdb::Txn txn(*env_, writable ? lmdb::Txn::read_write : lmdb::Txn::read_only);
    open_tables(txn, writable);
    Meta meta(txn, h_.meta);
    auto version = meta.get(keys::kSchema);
    int found = version ? std::atoi(version->c_str()) : 0;
    if (version && (found < 1 || found > kSchemaVersion))
      throw std::runtime_error("store " + file_ + " has schema version " + *version + "; this program knows versions 1.." +
                               std::to_string(kSchemaVersion));
    if (writable) {
      if (found != 0 && found < kSchemaVersion) migrate(txn, found);
      if (found != kSchemaVersion) meta.put(keys::kSchema, std::to_string(kSchemaVersion));
      if (!meta.get(keys::kEraseSecret)) {
        // The key of erased addresses' hashes (store/erase.hpp): the store's own.
        unsigned char secret[32];
        if (RAND_bytes(secret, sizeof secret) != 1) throw std::runtime_error("no random bytes for the store's secret");
        meta.put(keys::kEraseSecret, std::string_view(reinterpret_cast<const char*>(secret), sizeof secret));
      }
    } else {
      schema_ = found == 0 ? kSchemaVersion : found;
    }
    last_id_ = Records(txn, h_).last_id();
    txn.commit();
    if (writable) committer_ = std::make_unique<GroupCommitter>(*env_);
  } catch (...) {
    if (writer_lock_fd_ >= 0) ::close(writer_lock_fd_);
    throw;
  }
}

Db::~Db() {
  if (writer_lock_fd_ >= 0) ::close(writer_lock_fd_);
}

void Db::open_tables(lmdb::Txn& txn, bool writable) {
  try {
    h_.meta = lmdb::open_dbi(txn, "meta", writable ? MDB_CREATE : 0);
    h_.messages = lmdb::open_dbi(txn, "messages", writable ? MDB_CREATE : 0);
    h_.by_queue = lmdb::open_dbi(txn, "by_queue", (writable ? MDB_CREATE : 0) | MDB_DUPSORT | MDB_DUPFIXED);
  } catch (const lmdb::Error& e) {
    if (e.code() != MDB_NOTFOUND) throw;
    throw std::runtime_error("store " + file_ + " holds no message log yet");
  }
  h_.by_address = open_or_zero(txn, "by_address", 0, writable);
  h_.consent = open_or_zero(txn, "consent", 0, writable);
  h_.audit = open_or_zero(txn, "audit", 0, writable);
  h_.quota = open_or_zero(txn, "quota", 0, writable);
  h_.outbox = open_or_zero(txn, "outbox", 0, writable);
  h_.outbox_dead = open_or_zero(txn, "outbox_dead", 0, writable);
  h_.delivery = open_or_zero(txn, "delivery", 0, writable);
  h_.delivery_pending = open_or_zero(txn, "delivery_pending", 0, writable);
  h_.delivery_chain = open_or_zero(txn, "delivery_chain", 0, writable);
  h_.delivery_expiries = open_or_zero(txn, "delivery_expiries", 0, writable);
  h_.by_org = open_or_zero(txn, "by_org", 0, writable);
  h_.erased = open_or_zero(txn, "erased", 0, writable);
}

// Schema 1 had no address index, schema 2 no retention index: build them from the records.
void Db::migrate(lmdb::Txn& txn, int from) {
  Migration m{from, 0};
  Records records(txn, h_);
  records.scan([&](const MessageRecord& r) {
    if (from < 2) records.index_addresses(r);
    records.index_org(r);
    ++m.records;
    return true;
  });
  migrated_ = m;
}

std::uint64_t Db::allocate_id() {
  std::uint64_t last = last_id_.load();
  for (;;) {
    std::int64_t now = now_us_();
    std::uint64_t next = now > 0 && static_cast<std::uint64_t>(now) > last ? static_cast<std::uint64_t>(now) : last + 1;
    if (last_id_.compare_exchange_weak(last, next)) return next;
  }
}

void Db::write(const std::function<void(Tables&)>& fn) {
  if (!committer_) throw lmdb::Error("store opened read-only", EACCES);
  std::int64_t now = now_us_();
  committer_->run([&](lmdb::Txn& txn) {
    Tables t(txn, h_, now);
    fn(t);
  });
}

Db::View::View(const Db& db) : txn_(*db.env_, lmdb::Txn::read_only), tables_(txn_, db.h_, db.now_us_()) {}

void Db::sync() { lmdb::check(mdb_env_sync(env_->get(), 1), "mdb_env_sync"); }

}  // namespace cllavio::store
