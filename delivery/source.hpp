// Where log lines come from: a growing file (rotated and truncated under our feet) or the
// systemd journal. The follower (delivery/follower.hpp) reads complete lines from a
// LineSource and stores checkpoint() in the same LMDB transaction as what those lines
// produced, so a restart resumes exactly after the last line it acted on.
//
// Contract:
// - restore(cp) positions the source after the checkpoint cp (as returned by checkpoint()
//   earlier, possibly by another process). "" (first start): a file from its first byte,
//   the journal from `first_start_since_us`. When the position cannot be found again, the
//   source starts as it would with "" and reports a gap (a human-readable sentence) in
//   take_gaps(); it never silently skips to the end.
// - read() appends up to max_lines complete lines (without their '\n') and returns how
//   many; a partial last line stays unread until its newline arrives. 0: nothing new now.
// - checkpoint() is the position after the last line read() returned.
// - wait(ms) blocks at most ms until more may be readable (inotify/poll or
//   sd_journal_wait); spurious returns are fine.
// - Nothing here throws for a missing or unreadable log: that is a state reported by
//   status() (and retried at each read), since the log may appear later.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cllavio::delivery {

class LineSource {
 public:
  virtual ~LineSource() = default;
  virtual void restore(const std::string& checkpoint) = 0;
  virtual std::size_t read(std::vector<std::string>& lines, std::size_t max_lines) = 0;
  virtual std::string checkpoint() const = 0;
  virtual void wait(int timeout_ms) = 0;
  // Gaps found since the last call (rotation lost, checkpoint not found, copytruncate).
  virtual std::vector<std::string> take_gaps() = 0;
  // One line for `cllavioctl delivery follow` and the log: what is open, where, any error.
  virtual std::string status() const = 0;
  // Bytes (file) or entries (journal, when known) not read yet; -1 when unknown.
  virtual std::int64_t lag() const = 0;
};

// A file written by syslog or by Postfix's postlogd (maillog_file).
// Checkpoint: path, device, inode, offset, and a hash of the file's first bytes (so a
// reused inode is not mistaken for the same file). Rotation by rename-and-create: the
// old file is finished (read to its end once the new one has data) before the new one;
// at restore, a checkpointed file that was renamed meanwhile is found again as PATH.1.
// copytruncate: when the file shrinks below the offset, the rest of the old content is
// read from PATH.1 when its head matches, else a gap is reported; then PATH from 0.
std::unique_ptr<LineSource> make_file_source(const std::string& path);

// The systemd journal: entries with SYSLOG_FACILITY=2 (mail), read from the system
// journal (dir "") or from the journal files in dir (sd_journal_open_directory). Each
// entry becomes one line in RFC 3339 syslog form, "STAMP HOST IDENT[PID]: MESSAGE", so
// the same parser reads it. Checkpoint: the journal cursor.
std::unique_ptr<LineSource> make_journal_source(const std::string& dir, std::int64_t first_start_since_us);

}  // namespace cllavio::delivery
