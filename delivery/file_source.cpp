// make_file_source (delivery/source.hpp): follows a log file written by syslog or by Postfix's
// postlogd, with no loss and no duplicate across rotation, truncation and restarts.
//
// Lines: complete lines only, read with pread() through a 256 KB buffer from the offset of the
// first unread line; a partial last line stays unread until its '\n' arrives. Bytes pass through
// as they are (NUL, invalid UTF-8, the '\r' of a CRLF line: the parser decides). A line longer
// than 64 KB is returned cut to its first 64 KB once its '\n' has arrived; the rest is skipped.
//
// Checkpoint (JSON): {"v":1,"path":P,"dev":D,"ino":I,"off":O,"head_len":L,"head":H}: O is the
// offset after the last line returned, H the SHA-256 (hex) of the file's first L bytes, L =
// min(size, 512) as last seen. The head tells a file from a new one that got the same inode
// number, and still finds a file whose device number changed (another boot).
//
// Rotation by rename-and-create (logrotate `create`, `postfix logrotate`): when PATH names
// another inode than the file being read, the new file is opened at once (so later rotations
// queue behind it) and the old one is read to its end first: the switch happens only once the
// old file is at its end AND (the new one has data OR the old one has not grown for 2 s). A
// partial line left at the end of a finished old file is returned as a line. Two rotations
// between two read() calls lose the middle file.
//
// copytruncate: when the file gets shorter than what was read, or its first bytes change, the
// rest is read from PATH.1 if PATH.1 starts with the same bytes and reaches the offset, then
// PATH from 0; else a gap is reported and PATH is read from 0. copytruncate is lossy by nature:
// lines written between the copy and the truncation are in neither file, unseen by anyone.
//
// restore(cp): PATH when it is the checkpointed file (same inode or, failing that, same head;
// size >= offset); else PATH.1 when it is (renamed while we were down, or a copytruncate's
// copy), or another uncompressed PATH.* (postfix logrotate's dated name), read from the offset
// and then PATH from 0; else a gap and PATH from 0. A file compressed while we were down
// (postfix logrotate gzips one second after the rotation) is a gap.
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "delivery/source.hpp"

namespace cllavio::delivery {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kBufSize = 256 * 1024;
constexpr std::size_t kMaxLine = 64 * 1024;
constexpr std::size_t kHeadMax = 512;
constexpr auto kQuiet = std::chrono::seconds(2);

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::string sha256_hex(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr) != 1) return "";
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string errno_text(int e) {
  if (e == -1) return "not a regular file";
  return std::error_code(e, std::generic_category()).message();
}

// One open file and the position after the last line returned from it.
struct File {
  Fd fd;
  std::uint64_t dev = 0, ino = 0;
  std::int64_t off = 0;
  std::string head;  // its first min(size, 512) bytes as last seen
  std::int64_t last_size = -1;
  Clock::time_point last_change = Clock::now();
};

std::int64_t fsize(const File& f) {
  struct stat st;
  return ::fstat(f.fd.get(), &st) == 0 ? st.st_size : -1;
}

std::string read_head(const File& f, std::int64_t size) {
  std::string h(static_cast<std::size_t>(std::clamp<std::int64_t>(size, 0, kHeadMax)), '\0');
  std::size_t got = 0;
  while (got < h.size()) {
    ssize_t n = ::pread(f.fd.get(), h.data() + got, h.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  h.resize(got);
  return h;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// Opens a regular file at offset 0 and reads its head; on failure err is errno (-1: not regular).
std::optional<File> open_file(const std::string& name, int& err) {
  int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    err = errno;
    return std::nullopt;
  }
  File f;
  f.fd = Fd(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    err = errno;
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    err = S_ISDIR(st.st_mode) ? EISDIR : -1;
    return std::nullopt;
  }
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  f.head = read_head(f, st.st_size);
  err = 0;
  return f;
}

struct Checkpoint {
  std::string path, head;
  std::uint64_t dev = 0, ino = 0;
  std::int64_t off = 0;
  std::size_t head_len = 0;
};

std::optional<Checkpoint> parse_checkpoint(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto num = [&](const char* k) { return j.contains(k) && j[k].is_number_unsigned(); };
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string(); };
  if (!num("v") || j["v"].get<std::uint64_t>() != 1 || !str("path") || !num("dev") || !num("ino") || !num("off") ||
      !num("head_len") || !str("head"))
    return std::nullopt;
  Checkpoint c;
  c.path = j["path"].get<std::string>();
  c.dev = j["dev"].get<std::uint64_t>();
  c.ino = j["ino"].get<std::uint64_t>();
  c.off = static_cast<std::int64_t>(std::min<std::uint64_t>(j["off"].get<std::uint64_t>(), INT64_MAX));
  c.head_len = static_cast<std::size_t>(j["head_len"].get<std::uint64_t>());
  c.head = j["head"].get<std::string>();
  if (c.head_len > kHeadMax) return std::nullopt;
  return c;
}

class FileSource final : public LineSource {
 public:
  explicit FileSource(std::string path) : path_(std::move(path)), buf_(kBufSize) {
    auto slash = path_.rfind('/');
    dir_ = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
    base_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  }

  void restore(const std::string& checkpoint) override {
    files_.clear();
    reset_buffer();
    pending_.reset();
    error_.clear();
    more_ = false;
    if (checkpoint.empty()) return;
    try {
      auto c = parse_checkpoint(checkpoint);
      if (!c) {
        gaps_.push_back("checkpoint not understood (" + checkpoint.substr(0, 200) + "); reading " + path_ +
                        " from its start: lines may be read twice or lost");
        return;
      }
      pending_ = std::move(*c);
      pending_text_ = checkpoint;
      resolve();
    } catch (const std::exception& e) {
      error_ = std::string("restore: ") + e.what();
    }
  }

  std::size_t read(std::vector<std::string>& lines, std::size_t max_lines) override {
    const std::size_t base = lines.size();
    std::size_t n = 0;
    more_ = false;
    try {
      if (pending_ && !resolve()) return 0;
      check_path();
      if (files_.empty()) return 0;
      check_file();
      std::string line;
      while (n < max_lines) {
        // Room first, so that a line taken from the buffer is never lost to a failed push_back.
        if (lines.size() == lines.capacity()) lines.reserve(lines.capacity() * 2 + 64);
        Next r = next_line(line);
        if (r == Next::kLine) {
          lines.push_back(std::move(line));
          ++n;
          continue;
        }
        if (r == Next::kError || files_.size() < 2) break;
        // The end of a rotated file: move on once the new file has data or the old one is quiet.
        File& f = files_.front();
        bool next_has_data = fsize(files_[1]) > 0;
        note_size(f, fsize(f));
        if (!next_has_data && Clock::now() - f.last_change < kQuiet) break;
        // Checked after the new file's size: lines written to the old file before the writer
        // switched are read before the new file's first line.
        if (fsize(f) > read_end()) continue;
        bool partial = take_partial(line);
        files_.pop_front();
        reset_buffer();
        files_.front().last_change = Clock::now();
        if (partial) {
          lines.push_back(std::move(line));
          ++n;
        }
      }
      more_ = max_lines > 0 && n == max_lines;
    } catch (const std::exception& e) {
      error_ = std::string("read: ") + e.what();
      lines.resize(base + n);
    }
    return n;
  }

  std::string checkpoint() const override {
    if (pending_) return pending_text_;
    if (files_.empty()) return "";
    const File& f = files_.front();
    nlohmann::ordered_json j = {{"v", 1},        {"path", path_},        {"dev", f.dev},
                                {"ino", f.ino},  {"off", f.off},         {"head_len", f.head.size()},
                                {"head", sha256_hex(f.head)}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  void wait(int timeout_ms) override {
    try {
      if (more_ || timeout_ms <= 0) return;
      // A rotated file is polled (its 2 s quiet time; once deleted, the directory watch does
      // not see it), and a deleted-but-written file in general: at most 1 s without a look.
      int cap = files_.size() > 1 || pending_ ? 250 : 1000;
      auto deadline = Clock::now() + std::chrono::milliseconds(std::min(timeout_ms, cap));
      if (!watch()) {
        std::this_thread::sleep_until(deadline);
        return;
      }
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return;
        pollfd p{ino_fd_.get(), POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || drain_events()) return;
      }
    } catch (...) {
    }
  }

  std::vector<std::string> take_gaps() override { return std::exchange(gaps_, {}); }

  std::string status() const override {
    if (pending_) return "finding the checkpointed position in " + path_ + " again: " + error_;
    if (files_.empty()) return error_.empty() ? path_ + ": not opened yet" : error_;
    const File& f = files_.front();
    std::string s = files_.size() > 1 ? "finishing the rotated file (" : "reading " + path_ + " (";
    s += "inode " + std::to_string(f.ino) + ") at offset " + std::to_string(f.off) + " of " +
         std::to_string(fsize(f));
    if (files_.size() > 1) s += ", then " + std::to_string(files_.size() - 1) + " newer file(s) of " + path_;
    if (!error_.empty()) s += "; " + error_;
    return s;
  }

  std::int64_t lag() const override {
    if (files_.empty()) return -1;
    std::int64_t lag = std::max<std::int64_t>(0, fsize(files_.front()) - files_.front().off);
    for (std::size_t i = 1; i < files_.size(); ++i) lag += std::max<std::int64_t>(0, fsize(files_[i]));
    return lag;
  }

 private:
  enum class Next { kLine, kEof, kError };

  // The file offset of the first byte not in the buffer.
  std::int64_t read_end() const {
    return files_.front().off + static_cast<std::int64_t>(end_ - beg_) + skipped_;
  }
  void reset_buffer() { beg_ = end_ = scanned_ = 0, skipped_ = 0; }

  void note_size(File& f, std::int64_t size) {
    if (size == f.last_size) return;
    f.last_size = size;
    f.last_change = Clock::now();
  }

  // The next complete line of files_.front(). The unread bytes are buf_[beg_, end_): the file
  // from off; when a line is longer than kMaxLine, its first kMaxLine bytes, then (skipped_
  // bytes later) what follows, searched for the '\n' only.
  Next next_line(std::string& out) {
    File& f = files_.front();
    for (;;) {
      std::size_t from = beg_ + scanned_;
      auto* nl = static_cast<const char*>(std::memchr(buf_.data() + from, '\n', end_ - from));
      if (nl) {
        std::size_t idx = static_cast<std::size_t>(nl - buf_.data());
        out.assign(buf_.data() + beg_, std::min(idx - beg_, kMaxLine));
        f.off += static_cast<std::int64_t>(idx - beg_) + skipped_ + 1;
        beg_ = idx + 1;
        scanned_ = 0;
        skipped_ = 0;
        return Next::kLine;
      }
      scanned_ = end_ - beg_;
      if (scanned_ > kMaxLine) {
        skipped_ += static_cast<std::int64_t>(scanned_ - kMaxLine);
        scanned_ = kMaxLine;
        end_ = beg_ + kMaxLine;
      }
      if (beg_ > 0) {
        std::memmove(buf_.data(), buf_.data() + beg_, end_ - beg_);
        end_ -= beg_;
        beg_ = 0;
      }
      ssize_t n = ::pread(f.fd.get(), buf_.data() + end_, buf_.size() - end_, static_cast<off_t>(read_end()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error_ = "cannot read " + path_ + ": " + errno_text(errno);
        return Next::kError;
      }
      if (n == 0) return Next::kEof;
      end_ += static_cast<std::size_t>(n);
    }
  }

  // The unterminated rest of a finished file, as a line; false when there is none.
  bool take_partial(std::string& out) {
    if (end_ == beg_ && skipped_ == 0) return false;
    out.assign(buf_.data() + beg_, std::min(end_ - beg_, kMaxLine));
    files_.front().off = read_end();
    reset_buffer();
    return true;
  }

  // Opens PATH when nothing is open; otherwise queues PATH when it names a new file (rotation).
  void check_path() {
    int err = 0;
    if (files_.empty()) {
      auto f = open_file(path_, err);
      if (!f) {
        error_ = err == ENOENT ? path_ + " does not exist (yet)" : "cannot read " + path_ + ": " + errno_text(err);
        return;
      }
      files_.push_back(std::move(*f));
      error_.clear();
      return;
    }
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) return;  // renamed away, not created again yet
    const File& last = files_.back();
    if (st.st_dev == last.dev && st.st_ino == last.ino) return;
    auto f = open_file(path_, err);
    if (!f) {
      if (err != ENOENT) error_ = "cannot read the new " + path_ + ": " + errno_text(err);
      return;
    }
    error_.clear();
    if (f->dev == last.dev && f->ino == last.ino) return;
    files_.push_back(std::move(*f));
  }

  // Follows the size of files_.front(); a file that shrank below what was read, or whose
  // first bytes changed, was truncated (copytruncate).
  void check_file() {
    File& f = files_.front();
    std::int64_t size = fsize(f);
    if (size < 0 || size == f.last_size) return;
    note_size(f, size);
    std::string head = read_head(f, size);
    if (size >= read_end() && starts_with(head, f.head)) {
      f.head = std::move(head);
      return;
    }
    if (files_.size() == 1) on_truncated(size);
  }

  void on_truncated(std::int64_t size) {
    File& f = files_.front();
    int err = 0;
    auto copy = open_file(path_ + ".1", err);
    bool found = copy && !f.head.empty() && starts_with(copy->head, f.head) && fsize(*copy) >= f.off;
    std::int64_t old_off = f.off;
    reset_buffer();
    f.off = 0;
    f.head = read_head(f, size);
    if (found) {
      copy->off = old_off;
      files_.push_front(std::move(*copy));
      return;
    }
    gaps_.push_back(path_ + " (inode " + std::to_string(f.ino) + ") shrank below offset " + std::to_string(old_off) +
                    " or its first bytes changed (copytruncate?) and " + path_ +
                    ".1 does not hold the rest; lines logged after that offset and before the truncation may be "
                    "lost; reading " + path_ + " from its start");
  }

  // Finds the checkpointed position again (see the header comment). False: retry later
  // (permission denied), the checkpoint is kept meanwhile.
  bool resolve() {
    const Checkpoint& c = *pending_;
    auto matches = [&](const std::optional<File>& f, bool same_inode_only) {
      if (!f) return false;
      bool same = f->dev == c.dev && f->ino == c.ino;
      if (!same && (same_inode_only || c.head_len == 0)) return false;
      return fsize(*f) >= c.off && f->head.size() >= c.head_len &&
             sha256_hex(std::string_view(f->head).substr(0, c.head_len)) == c.head;
    };
    auto retry = [&](int err, const std::string& name) {
      if (err != EACCES && err != EPERM) return false;
      error_ = "cannot read " + name + ": " + errno_text(err);
      return true;
    };
    auto start = [&](std::optional<File>& f, std::int64_t off) {
      f->off = off;
      files_.push_back(std::move(*f));
    };
    auto done = [&] {
      pending_.reset();
      error_.clear();
      return true;
    };
    int perr = 0, qerr = 0;
    auto p = open_file(path_, perr);
    if (matches(p, true)) {
      start(p, c.off);
      return done();
    }
    if (!p && retry(perr, path_)) return false;
    auto q = open_file(path_ + ".1", qerr);
    if (matches(q, false)) {  // renamed while we were down, or the copy of a copytruncate
      start(q, c.off);
      if (p && (p->dev != files_.back().dev || p->ino != files_.back().ino)) start(p, 0);
      return done();
    }
    if (!q && retry(qerr, path_ + ".1")) return false;
    // Another rotated name (postfix logrotate's PATH.YYYYMMDD-HHMMSS before it is compressed).
    if (auto name = newest_rotated_sibling()) {
      int err = 0;
      auto r = open_file(*name, err);
      if (matches(r, false)) {
        start(r, c.off);
        if (p && (p->dev != files_.back().dev || p->ino != files_.back().ino)) start(p, 0);
        return done();
      }
    }
    if (matches(p, false)) {  // the same bytes under another device or inode number (another boot, a copy)
      start(p, c.off);
      return done();
    }
    bool same = p && p->dev == c.dev && p->ino == c.ino;
    std::string where = c.path + " (inode " + std::to_string(c.ino) + ", offset " + std::to_string(c.off) + ")";
    gaps_.push_back(same ? "checkpointed file " + where + " was truncated or rewritten and " + path_ +
                               ".1 does not hold the rest; lines logged after that offset may be lost; reading " +
                               path_ + " from its start"
                         : "checkpointed file " + where + " not found again; lines logged between that offset and " +
                               "the first line of the current " + path_ + " may be lost; reading " + path_ +
                               " from its start");
    if (p) start(p, 0);
    return done();
  }

  // The newest rotated PATH.* in PATH's folder, when it is not PATH.1 (checked apart) and not
  // compressed: postfix logrotate's PATH.YYYYMMDD-HHMMSS in the second before it is gzipped,
  // or with maillog_file_compressor = true. Only the newest: a file rotated before it would
  // leave the lines of the newer ones unread (a gap, then).
  std::optional<std::string> newest_rotated_sibling() const {
    std::optional<std::pair<std::filesystem::file_time_type, std::string>> best;
    bool tied = false;  // two files equally new: which was rotated last is unknown
    std::error_code ec;
    const std::string base = std::filesystem::path(path_).filename().string() + ".";
    for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
      std::string name = e.path().filename().string();
      std::error_code e2;
      if (name.rfind(base, 0) != 0 || !e.is_regular_file(e2)) continue;
      auto t = e.last_write_time(e2);
      if (best && t == best->first) tied = true;
      if (!best || t > best->first) best = {t, name}, tied = false;
    }
    if (!best || tied || best->second == base + "1") return std::nullopt;
    for (const char* ext : {".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z"}) {
      const std::string& n = best->second;
      if (n.size() > std::strlen(ext) && n.compare(n.size() - std::strlen(ext), std::string::npos, ext) == 0)
        return std::nullopt;
    }
    return (std::filesystem::path(dir_) / best->second).string();
  }

  bool watch() {
    if (!ino_fd_) {
      int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (fd < 0) return false;
      ino_fd_ = Fd(fd);
      wd_ = -1;
    }
    if (wd_ < 0) wd_ = ::inotify_add_watch(ino_fd_.get(), dir_.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO |
                                                                      IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF);
    return wd_ >= 0;
  }

  // Empties the inotify queue; true when an event may concern our files (PATH, PATH.*).
  bool drain_events() {
    alignas(inotify_event) char ev[4096];
    bool relevant = false;
    for (;;) {
      ssize_t n = ::read(ino_fd_.get(), ev, sizeof ev);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return relevant;
      for (ssize_t i = 0; i + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(ev + i);
        if (e->mask & IN_IGNORED) wd_ = -1;
        if ((e->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) ||
            (e->len > 0 && std::strncmp(e->name, base_.c_str(), base_.size()) == 0))
          relevant = true;
        i += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      }
    }
  }

  std::string path_, dir_, base_;
  std::deque<File> files_;  // [0] is read; back() is what PATH named last; older ones first
  std::vector<char> buf_;
  std::size_t beg_ = 0, end_ = 0, scanned_ = 0;  // scanned_: bytes after beg_ known to hold no '\n'
  std::int64_t skipped_ = 0;                     // bytes of an overlong line dropped after its first kMaxLine
  std::optional<Checkpoint> pending_;            // a restored checkpoint not resolved yet
  std::string pending_text_;
  std::vector<std::string> gaps_;
  std::string error_;
  bool more_ = false;  // the last read() stopped at max_lines
  Fd ino_fd_;
  int wd_ = -1;
};

}  // namespace

std::unique_ptr<LineSource> make_file_source(const std::string& path) { return std::make_unique<FileSource>(path); }

}  // namespace cllavio::delivery
