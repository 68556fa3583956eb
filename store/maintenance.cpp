// The store as a file: map use (here), per-table statistics and the compacting copy.
#include "store/maintenance.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "store/db.hpp"
#include "store/keys.hpp"

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

namespace {

std::uint64_t be64_at(std::string_view key, std::size_t pos) {
  return key.size() >= pos + 8 ? lmdb::from_be64(key.substr(pos, 8)) : 0;
}

// The first key of a table (nullopt when empty or absent).
std::optional<std::string> first_key(lmdb::Txn& txn, MDB_dbi dbi) {
  if (dbi == 0) return std::nullopt;
  lmdb::Cursor cur(txn, dbi);
  MDB_val k{}, v{};
  if (!cur.get(k, v, MDB_FIRST)) return std::nullopt;
  return std::string(lmdb::view(k));
}

// Walks a table whose keys start with `group` bytes ending in '\0' (plus `extra` bytes of
// the key after it): fn gets each group's first entry, one seek per group.
void first_of_each(lmdb::Txn& txn, MDB_dbi dbi, std::size_t extra,
                   const std::function<void(std::string_view key, std::string_view val, std::size_t rest)>& fn) {
  if (dbi == 0) return;
  lmdb::Cursor cur(txn, dbi);
  MDB_val k{}, v{};
  for (bool ok = cur.get(k, v, MDB_FIRST); ok;) {
    std::string_view key = lmdb::view(k);
    std::size_t nul = key.find('\0');
    if (nul == std::string_view::npos || key.size() < nul + 1 + extra) break;
    std::size_t rest = nul + 1 + extra;  // where the group's own part of the key starts
    fn(key, lmdb::view(v), rest);
    std::string next(key.substr(0, rest));
    // The first key after every key of this group: bump the group's last byte (with carry).
    while (!next.empty() && static_cast<unsigned char>(next.back()) == 0xff) next.pop_back();
    if (next.empty()) break;
    next.back() = static_cast<char>(static_cast<unsigned char>(next.back()) + 1);
    k = lmdb::val(next);
    ok = cur.get(k, v, MDB_SET_RANGE);
  }
}

void keep_oldest(std::optional<std::int64_t>& oldest, std::int64_t at) {
  if (at <= 0) return;
  if (!oldest || at < *oldest) oldest = at;
}

}  // namespace

StoreStats stats(const Db& db) {
  StoreStats s;
  s.file = db.file();
  s.map = map_use(db);
  const Handles& h = db.handles();
  lmdb::Txn txn(db.env(), lmdb::Txn::read_only);
  Meta meta(txn, h.meta);
  if (auto v = meta.get(keys::kSchema)) s.schema = std::atoi(v->c_str());
  s.last_prune = meta.get(keys::kPruneStatus).value_or("");

  auto table = [&](const char* name, MDB_dbi dbi) -> TableStats& {
    TableStats ts;
    ts.name = name;
    if (dbi != 0) {
      MDB_stat st{};
      lmdb::check(mdb_stat(txn.get(), dbi, &st), "mdb_stat");
      ts.entries = st.ms_entries;
      ts.pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    s.tables.push_back(std::move(ts));
    return s.tables.back();
  };
  table("meta", h.meta);
  {
    TableStats& t = table("messages", h.messages);
    if (auto k = first_key(txn, h.messages); k && k->size() == 8) keep_oldest(t.oldest_us, be64_at(*k, 0));
  }
  table("by_queue", h.by_queue);
  table("by_address", h.by_address);
  {
    // org '\0' kind be64(id): the smallest id over every org and kind.
    TableStats& t = table("by_org", h.by_org);
    first_of_each(txn, h.by_org, 1, [&](std::string_view key, std::string_view, std::size_t rest) {
      keep_oldest(t.oldest_us, static_cast<std::int64_t>(be64_at(key, rest)));
    });
  }
  table("consent", h.consent);
  table("erased", h.erased);
  {
    TableStats& t = table("audit", h.audit);
    if (auto k = first_key(txn, h.audit); k && k->size() == 8) keep_oldest(t.oldest_us, be64_at(*k, 0));
  }
  {
    // org '\0' be64(charged at) be64(id): each org's first key is its oldest charge.
    TableStats& t = table("quota", h.quota);
    first_of_each(txn, h.quota, 0, [&](std::string_view key, std::string_view, std::size_t rest) {
      if (key.size() == rest + 16) keep_oldest(t.oldest_us, static_cast<std::int64_t>(be64_at(key, rest)));
    });
  }
  {
    // The value starts with be64(stored at); a dead letter sent back keeps its old seq
    // with a new time, so every entry is read (the outbox is bounded).
    TableStats& t = table("outbox", h.outbox);
    if (h.outbox != 0)
      for (const auto& e : lmdb::prefix_range(txn, h.outbox, ""))
        if (e.value.size() >= 8) keep_oldest(t.oldest_us, static_cast<std::int64_t>(be64_at(e.value, 0)));
  }
  {
    TableStats& t = table("outbox_dead", h.outbox_dead);
    if (h.outbox_dead != 0)
      for (const auto& e : lmdb::prefix_range(txn, h.outbox_dead, "")) {
        auto j = nlohmann::json::from_cbor(e.value.begin(), e.value.end(), true, false);
        if (j.is_object()) keep_oldest(t.oldest_us, j.value("at", std::int64_t{0}));
      }
  }
  {
    TableStats& t = table("delivery", h.delivery);
    if (auto k = first_key(txn, h.delivery); k && k->size() >= 8) keep_oldest(t.oldest_us, be64_at(*k, 0));
  }
  table("delivery_pending", h.delivery_pending);
  table("delivery_chain", h.delivery_chain);
  table("delivery_expiries", h.delivery_expiries);
  return s;
}

namespace {

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string errno_text() { return std::strerror(errno); }

// The pid of another process that has the environment open (LMDB holds a shared fcntl
// lock on the first byte of the lock file for as long as an environment is open); 0 when none.
pid_t other_user(const std::string& lock_file) {
  Fd fd(::open(lock_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.fd < 0) return 0;
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (::fcntl(fd.fd, F_GETLK, &fl) != 0) return 0;
  return fl.l_type == F_UNLCK ? 0 : (fl.l_pid > 0 ? fl.l_pid : -1);
}

}  // namespace

CompactResult compact(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string file = (fs::path(dir) / Db::kFileName).string();
  const std::string writer = file + "-writer", lock = file + "-lock", tmp = file + ".compact";
  struct stat old{};
  if (::stat(file.c_str(), &old) != 0)
    throw std::runtime_error("no store at " + file + (errno == ENOENT ? std::string() : ": " + errno_text()));

  // The daemon's lock: held for as long as it runs.
  Fd wl(::open(writer.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (wl.fd < 0) throw std::runtime_error("cannot open " + writer + ": " + errno_text());
  if (::flock(wl.fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      throw std::runtime_error("cllavio-milter is running (it holds " + writer + "): stop it first");
    throw std::runtime_error("cannot lock " + writer + ": " + errno_text());
  }
  // Readers and writers that do not take the daemon's lock (a running cllavioctl).
  if (pid_t p = other_user(lock))
    throw std::runtime_error("the store is open in another process" +
                             (p > 0 ? " (pid " + std::to_string(p) + ")" : std::string()) + ": let it finish first");

  CompactResult r;
  r.before_bytes = static_cast<std::uint64_t>(old.st_size);
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)  // a stale copy from an interrupted run
    throw std::runtime_error("cannot remove " + tmp + ": " + errno_text());
  {
    lmdb::EnvOptions eo;
    eo.map_size_bytes = 0;  // the store's own
    eo.flags = MDB_RDONLY;
    lmdb::Env env(file, eo);
    Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (out.fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + errno_text());
    auto fail = [&](const std::string& what) {
      ::unlink(tmp.c_str());
      throw std::runtime_error(what);
    };
    int rc = mdb_env_copyfd2(env.get(), out.fd, MDB_CP_COMPACT);
    if (rc != MDB_SUCCESS) fail("copying " + file + " to " + tmp + ": " + mdb_strerror(rc));
    if (::fchown(out.fd, old.st_uid, old.st_gid) != 0 && errno != EPERM)
      fail("cannot set the owner of " + tmp + ": " + errno_text());
    if (::fchmod(out.fd, old.st_mode & 07777) != 0) fail("cannot set the mode of " + tmp + ": " + errno_text());
    if (::fsync(out.fd) != 0) fail("cannot sync " + tmp + ": " + errno_text());
    struct stat st{};
    if (::fstat(out.fd, &st) == 0) r.after_bytes = static_cast<std::uint64_t>(st.st_size);
  }
  // Someone opened the store while it was copied: what they write would be lost. (Checked
  // with our environment closed: closing the probe's descriptor drops this process's locks.)
  if (other_user(lock) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("the store was opened by another process during the copy: nothing changed");
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " over " + file + ": " + why);
  }
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd < 0 || ::fsync(d.fd) != 0) throw std::runtime_error("cannot sync the folder " + dir + ": " + errno_text());
  return r;
}

}  // namespace cllavio::store
