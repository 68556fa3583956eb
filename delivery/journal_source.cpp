// The journal LineSource (make_journal_source in source.hpp): reads the mail facility's
// entries (SYSLOG_FACILITY=2) from the system journal or from the journal files in a folder
// with libsystemd's sd-journal, and turns each into one RFC 3339 syslog line,
// "2026-12-01T03:59:52.123456+00:00 HOST IDENT[PID]: MESSAGE", for parse_line().
//
// Position: the cursor of the last entry read() returned. restore(cursor) seeks to it and
// checks that the entry found there is the same one (sd_journal_test_cursor); when it is not
// (vacuumed, another machine's journal) a gap is reported and reading starts at the oldest
// entry, never at the newest.
//
// New data: sd_journal_wait() and, when read() finds nothing, sd_journal_process() read the
// inotify watches that sd-journal puts on the journal folders once sd_journal_get_fd() has
// been called (right after each open): entries appended to an open file and journal files
// created in the folder (a rotation, or systemd-journal-remote writing remote-2.journal) are
// both picked up without reopening (tests/unit/test_journal_source.cpp checks both).
//
// Errors: a folder that does not exist (yet) or was removed or replaced (its watch went with
// it; a stat when read() finds nothing tells), or a failing sd_journal_next, close the
// handle; status() says why, and every read() and wait() tries to open again, positioned
// after the last entry returned. Nothing here throws. Not thread-safe: one follower thread
// uses it.
#include "delivery/source.hpp"

#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>
#include <thread>

namespace cllavio::delivery {
namespace {

struct JournalCloser {
  void operator()(sd_journal* j) const { sd_journal_close(j); }
};
using JournalPtr = std::unique_ptr<sd_journal, JournalCloser>;

std::string errno_text(int r) { return std::strerror(r < 0 ? -r : r); }

// The value of the field NAME in the current entry; false when the entry has none.
bool field(sd_journal* j, const char* name, std::string_view& value) {
  const void* data = nullptr;
  std::size_t len = 0;
  if (sd_journal_get_data(j, name, &data, &len) < 0) return false;
  std::string_view all(static_cast<const char*>(data), len);
  std::size_t prefix = std::strlen(name) + 1;  // "NAME="
  if (all.size() < prefix) return false;
  value = all.substr(prefix);
  return true;
}

// "2026-12-01T03:59:52.123456+00:00"
void append_stamp(std::string& out, std::uint64_t usec) {
  std::time_t secs = static_cast<std::time_t>(usec / 1000000);
  unsigned micros = static_cast<unsigned>(usec % 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06u+00:00", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  out.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

// The syslog line for the current entry. No _HOSTNAME: "-"; no SYSLOG_IDENTIFIER: _COMM,
// else "-"; no SYSLOG_PID: _PID, else no "[PID]".
std::string entry_line(sd_journal* j) {
  std::string line;
  std::uint64_t usec = 0;
  if (sd_journal_get_realtime_usec(j, &usec) < 0) usec = 0;
  append_stamp(line, usec);

  std::string_view host, ident, pid, message;
  line += ' ';
  line += field(j, "_HOSTNAME", host) && !host.empty() ? host : std::string_view("-");
  line += ' ';
  if (!(field(j, "SYSLOG_IDENTIFIER", ident) && !ident.empty()) && !(field(j, "_COMM", ident) && !ident.empty()))
    ident = "-";
  line += ident;
  if ((field(j, "SYSLOG_PID", pid) && !pid.empty()) || (field(j, "_PID", pid) && !pid.empty())) {
    line += '[';
    line += pid;
    line += ']';
  }
  line += ": ";
  std::size_t at = line.size();
  if (field(j, "MESSAGE", message)) line += message;
  // One entry, one line: a multi-line (or binary) MESSAGE keeps its bytes, newlines become spaces.
  std::replace_if(line.begin() + static_cast<std::ptrdiff_t>(at), line.end(),
                  [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return line;
}

std::string current_cursor(sd_journal* j) {
  char* c = nullptr;
  if (sd_journal_get_cursor(j, &c) < 0 || c == nullptr) return {};
  std::string out(c);
  std::free(c);
  return out;
}

class JournalSource final : public LineSource {
 public:
  JournalSource(std::string dir, std::int64_t first_start_since_us)
      : dir_(std::move(dir)), since_us_(first_start_since_us) {}

  void restore(const std::string& checkpoint) override {
    try {
      checkpoint_ = checkpoint;
      from_head_ = false;
      journal_.reset();  // positioned at the next open
      error_.clear();
      open();
    } catch (...) {
      journal_.reset();
      error_ = "out of memory";
    }
  }

  std::size_t read(std::vector<std::string>& lines, std::size_t max_lines) override {
    std::size_t n = 0;
    try {
      if (!journal_ && !open()) return 0;
      bool processed = false;
      while (n < max_lines) {
        int r = sd_journal_next(journal_.get());
        if (r < 0) {
          fail("reading", r);
          break;
        }
        if (r == 0) {
          // Nothing now (not the end): take in what inotify reported (a new file, more data)
          // once, in case the caller reads without waiting.
          if (processed) break;
          processed = true;
          int p = sd_journal_process(journal_.get());
          if (p < 0) {
            fail("processing changes", p);
            break;
          }
          if (p == SD_JOURNAL_NOP) {
            check_folder();
            break;
          }
          continue;
        }
        // No line without its checkpoint: an entry whose cursor cannot be had is read again
        // after the reopen.
        std::string c = current_cursor(journal_.get());
        if (c.empty()) {
          fail("getting the cursor", EADDRNOTAVAIL);
          break;
        }
        lines.push_back(entry_line(journal_.get()));
        ++n;
        checkpoint_ = std::move(c);
        from_head_ = false;
      }
    } catch (...) {
      journal_.reset();
      error_ = "out of memory";
    }
    return n;
  }

  std::string checkpoint() const override { return checkpoint_; }

  void wait(int timeout_ms) override {
    try {
      timeout_ms = std::max(timeout_ms, 0);
      if (!journal_ && !open()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
        return;
      }
      // SD_JOURNAL_APPEND and SD_JOURNAL_INVALIDATE (files added or removed) both mean "read
      // again"; sd-journal has already updated its file list when this returns.
      int r = sd_journal_wait(journal_.get(), static_cast<std::uint64_t>(timeout_ms) * 1000);
      if (r < 0) fail("waiting", r);
    } catch (...) {
      journal_.reset();
      error_ = "out of memory";
    }
  }

  std::vector<std::string> take_gaps() override {
    std::vector<std::string> out;
    out.swap(gaps_);
    return out;
  }

  std::string status() const override {
    try {
      std::string s = "journal " + (dir_.empty() ? std::string("(system, local)") : dir_);
      if (!error_.empty()) return s + ": " + error_;
      return s + " (cursor " + (checkpoint_.empty() ? std::string("none yet") : checkpoint_) + ")";
    } catch (...) {
      return "journal: out of memory";
    }
  }

  std::int64_t lag() const override { return -1; }

 private:
  // Opens the journal and positions it after checkpoint_ (or at the first start's place).
  // False (and error_ set) when it cannot be opened now.
  bool open() {
    // The folder's identity before opening: replaced in between, check_folder() sees a
    // difference and opens again (the other order could miss the replacement).
    struct stat st{};
    if (!dir_.empty() && ::stat(dir_.c_str(), &st) == 0) {
      dir_dev_ = st.st_dev;
      dir_ino_ = st.st_ino;
    }
    sd_journal* raw = nullptr;
    int r = dir_.empty() ? sd_journal_open(&raw, SD_JOURNAL_LOCAL_ONLY)
                         : sd_journal_open_directory(&raw, dir_.c_str(), 0);
    if (r < 0) {
      error_ = "cannot open: " + errno_text(r) + " (retrying)";
      return false;
    }
    JournalPtr j(raw);
    // The inotify watches exist from here on: files created after this point are seen.
    r = sd_journal_get_fd(j.get());
    if (r < 0) {
      error_ = "cannot watch for changes: " + errno_text(r) + " (retrying)";
      return false;
    }
    r = sd_journal_add_match(j.get(), "SYSLOG_FACILITY=2", 0);
    if (r < 0) {
      error_ = "cannot add the SYSLOG_FACILITY=2 match: " + errno_text(r) + " (retrying)";
      return false;
    }
    if (!position(j.get())) return false;
    journal_ = std::move(j);
    error_.clear();
    return true;
  }

  bool position(sd_journal* j) {
    int r;
    if (from_head_) {
      r = sd_journal_seek_head(j);
      if (r < 0) error_ = "cannot seek to the oldest entry: " + errno_text(r) + " (retrying)";
      return r >= 0;
    }
    if (checkpoint_.empty()) {
      r = since_us_ > 0 ? sd_journal_seek_realtime_usec(j, static_cast<std::uint64_t>(since_us_))
                        : sd_journal_seek_head(j);
      if (r < 0) error_ = "cannot seek to the first start's position: " + errno_text(r) + " (retrying)";
      return r >= 0;
    }
    r = sd_journal_seek_cursor(j, checkpoint_.c_str());
    if (r >= 0) {
      r = sd_journal_next(j);
      if (r < 0) {
        error_ = "cannot read at the checkpoint: " + errno_text(r) + " (retrying)";
        return false;
      }
      // On the checkpointed entry itself: the next sd_journal_next() gives the one after it.
      if (r > 0 && sd_journal_test_cursor(j, checkpoint_.c_str()) > 0) return true;
    }
    gaps_.push_back("journal cursor " + checkpoint_ +
                    " not found (vacuumed, rotated away or another journal); reading from the oldest entry");
    // Until an entry is read, a reopen starts from the head again without a second gap;
    // checkpoint() still says the lost cursor, so a restart from it reports the gap again.
    from_head_ = true;
    r = sd_journal_seek_head(j);
    if (r < 0) error_ = "cannot seek to the oldest entry: " + errno_text(r) + " (retrying)";
    return r >= 0;
  }

  // A folder removed or replaced while open: its inotify watch is gone with it, so the
  // handle would never see the new folder's files. Close it; the next read() or wait() opens
  // whatever is at dir_ then (after checkpoint_, or from the oldest entry with a gap).
  void check_folder() {
    if (dir_.empty()) return;
    struct stat st{};
    if (::stat(dir_.c_str(), &st) != 0) {
      fail("folder gone", errno);
    } else if (st.st_dev != dir_dev_ || st.st_ino != dir_ino_) {
      fail("folder replaced", 0);
    }
  }

  void fail(const char* what, int r) {
    error_ = std::string(what) + (r != 0 ? ": " + errno_text(r) : std::string()) + " (reopening)";
    journal_.reset();
  }

  std::string dir_;
  std::int64_t since_us_;
  JournalPtr journal_;
  dev_t dir_dev_ = 0;  // the folder that journal_ watches
  ino_t dir_ino_ = 0;
  std::string checkpoint_;
  bool from_head_ = false;  // checkpoint_ was not found: start from the oldest entry
  std::string error_;
  std::vector<std::string> gaps_;
};

}  // namespace

std::unique_ptr<LineSource> make_journal_source(const std::string& dir, std::int64_t first_start_since_us) {
  return std::make_unique<JournalSource>(dir, first_start_since_us);
}

}  // namespace cllavio::delivery
