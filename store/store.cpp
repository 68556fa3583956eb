#include "store/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

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

}  // namespace

Store::Store(const StoreOptions& opts)
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
  lmdb::EnvOptions eo;
  eo.map_size_bytes = opts.map_size_mb * 1024 * 1024;
  eo.flags = sync_flags(opts.sync) | (opts.read_only ? MDB_RDONLY : 0);
  env_ = std::make_unique<lmdb::Env>(file_, eo);

  unsigned create = opts.read_only ? 0 : MDB_CREATE;
  lmdb::Txn txn(*env_, opts.read_only ? lmdb::Txn::read_only : lmdb::Txn::read_write);
  try {
    meta_ = lmdb::open_dbi(txn, "meta", create);
    messages_ = lmdb::open_dbi(txn, "messages", create);
    by_queue_ = lmdb::open_dbi(txn, "by_queue", create | MDB_DUPSORT | MDB_DUPFIXED);
  } catch (const lmdb::Error& e) {
    if (e.code() != MDB_NOTFOUND) throw;
    throw std::runtime_error("store " + file_ + " holds no message log yet");
  }
  std::string_view version;
  if (lmdb::get(txn, meta_, "schema", version)) {
    if (version != std::to_string(kSchemaVersion))
      throw std::runtime_error("store " + file_ + " has schema version " + std::string(version) +
                               "; this program knows version " + std::to_string(kSchemaVersion));
  } else if (!opts.read_only) {
    lmdb::put(txn, meta_, "schema", std::to_string(kSchemaVersion));
  }
  {
    lmdb::Cursor cur(txn, messages_);
    MDB_val k{}, v{};
    if (cur.get(k, v, MDB_LAST)) last_id_ = lmdb::from_be64(lmdb::view(k));
  }
  txn.commit();
  if (!opts.read_only) committer_ = std::make_unique<GroupCommitter>(*env_);
}

Store::~Store() {
  if (writer_lock_fd_ >= 0) ::close(writer_lock_fd_);
}

std::uint64_t Store::allocate_id() {
  std::uint64_t last = last_id_.load();
  for (;;) {
    std::int64_t now = now_us_();
    std::uint64_t next = now > 0 && static_cast<std::uint64_t>(now) > last ? static_cast<std::uint64_t>(now) : last + 1;
    if (last_id_.compare_exchange_weak(last, next)) return next;
  }
}

std::uint64_t Store::append(MessageRecord& rec, const std::function<void(lmdb::Txn&)>& also) {
  if (!committer_) throw lmdb::Error("store opened read-only", EACCES);
  if (rec.id == 0) rec.id = allocate_id();
  auto key = lmdb::be64(rec.id);
  std::string value = encode(rec);
  committer_->run([&](lmdb::Txn& txn) {
    lmdb::put(txn, messages_, lmdb::view(key), value, MDB_NOOVERWRITE);
    if (!rec.queue_id.empty()) lmdb::put(txn, by_queue_, rec.queue_id, lmdb::view(key));
    if (also) also(txn);
  });
  return rec.id;
}

bool Store::open_tables(std::initializer_list<std::pair<const char*, MDB_dbi*>> tables) {
  bool ro = read_only();
  lmdb::Txn txn(*env_, ro ? lmdb::Txn::read_only : lmdb::Txn::read_write);
  try {
    for (const auto& [name, dbi] : tables) *dbi = lmdb::open_dbi(txn, name, ro ? 0 : MDB_CREATE);
  } catch (const lmdb::Error& e) {
    if (e.code() != MDB_NOTFOUND) throw;
    for (const auto& t : tables) *t.second = 0;
    return false;
  }
  txn.commit();
  return true;
}

void Store::sync() { lmdb::check(mdb_env_sync(env_->get(), 1), "mdb_env_sync"); }

std::optional<MessageRecord> Store::get(std::uint64_t id) const {
  lmdb::Txn txn(*env_, lmdb::Txn::read_only);
  auto key = lmdb::be64(id);
  std::string_view bytes;
  if (!lmdb::get(txn, messages_, lmdb::view(key), bytes)) return std::nullopt;
  MessageRecord r = decode(bytes);
  r.id = id;
  return r;
}

std::vector<MessageRecord> Store::find_by_queue_id(std::string_view queue_id) const {
  std::vector<MessageRecord> out;
  if (queue_id.empty()) return out;
  lmdb::Txn txn(*env_, lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, by_queue_);
  MDB_val k = lmdb::val(queue_id), v{};
  for (bool ok = cur.get(k, v, MDB_SET_KEY); ok; ok = cur.get(k, v, MDB_NEXT_DUP)) {
    std::string_view bytes;
    if (!lmdb::get(txn, messages_, lmdb::view(v), bytes)) continue;
    MessageRecord r = decode(bytes);
    r.id = lmdb::from_be64(lmdb::view(v));
    out.push_back(std::move(r));
  }
  return out;
}

void Store::scan(const std::function<bool(const MessageRecord&)>& fn, std::uint64_t from_id) const {
  lmdb::Txn txn(*env_, lmdb::Txn::read_only);
  lmdb::Cursor cur(txn, messages_);
  auto start = lmdb::be64(from_id);
  MDB_val k = lmdb::val(lmdb::view(start)), v{};
  for (bool ok = cur.get(k, v, MDB_SET_RANGE); ok; ok = cur.get(k, v, MDB_NEXT)) {
    MessageRecord r = decode(lmdb::view(v));
    r.id = lmdb::from_be64(lmdb::view(k));
    if (!fn(r)) break;
  }
}

}  // namespace cllavio::store
