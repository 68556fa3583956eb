// The journal LineSource (delivery/journal_source.cpp) against real journal files, without a
// running journald: systemd-journal-remote (Debian package systemd-journal-remote, installed
// by scripts/deps.sh) turns entries in the Journal Export Format into DIR/*.journal, and a
// second run appends to the same file or writes a new one while a source follows the folder.
#define BOOST_TEST_MODULE journal_source
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "delivery/source.hpp"
#include "tmpdir.hpp"

using cllavio::delivery::LineSource;
using cllavio::delivery::make_journal_source;
using cllavio::test::TmpDir;

namespace {

constexpr std::uint64_t kT0 = 1796097592123456;  // 2026-12-01T03:59:52.123456Z

struct Entry {
  std::uint64_t realtime_us = kT0;
  std::string message;
  std::string ident = "postfix/smtp";
  std::string pid = "123";
  int facility = 2;
  bool trusted_pid = false;  // _PID instead of SYSLOG_PID
  std::string host = "mx1";
};

std::string journal_remote() {
  for (const char* p : {"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"})
    if (std::filesystem::exists(p)) return p;
  return {};
}

// One field in the export format: text form, or the binary form (name, 64-bit little-endian
// length, bytes) that the format requires for values with a newline or control bytes.
void put_field(std::string& out, const std::string& name, const std::string& value) {
  bool binary = false;
  for (unsigned char c : value) binary = binary || c < 0x20;
  if (!binary) {
    out += name + "=" + value + "\n";
    return;
  }
  out += name + "\n";
  std::uint64_t n = value.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  out += value + "\n";
}

// Runs systemd-journal-remote once: appends the entries to `file`, created when missing (with
// its folder: journal-remote does not create it; the name must end in .journal).
void append(const TmpDir& tmp, const std::string& file, const std::vector<Entry>& entries) {
  std::filesystem::create_directories(std::filesystem::path(file).parent_path());
  std::string bin = journal_remote();
  BOOST_REQUIRE_MESSAGE(!bin.empty(),
                        "systemd-journal-remote not found: run scripts/deps.sh as root "
                        "(Debian package systemd-journal-remote)");
  static std::uint64_t monotonic = 1000;
  std::string in;
  for (const Entry& e : entries) {
    in += "__REALTIME_TIMESTAMP=" + std::to_string(e.realtime_us) + "\n";
    in += "__MONOTONIC_TIMESTAMP=" + std::to_string(monotonic++) + "\n";
    in += "_BOOT_ID=0123456789abcdef0123456789abcdef\n";
    if (!e.host.empty()) in += "_HOSTNAME=" + e.host + "\n";
    in += "SYSLOG_FACILITY=" + std::to_string(e.facility) + "\n";
    if (!e.ident.empty()) in += "SYSLOG_IDENTIFIER=" + e.ident + "\n";
    if (!e.pid.empty()) in += (e.trusted_pid ? "_PID=" : "SYSLOG_PID=") + e.pid + "\n";
    put_field(in, "MESSAGE", e.message);
    in += "\n";
  }
  std::string input = tmp / "export.txt", err = tmp / "journal-remote.err";
  std::ofstream(input, std::ios::binary) << in;
  std::string cmd = bin + " --output=" + file + " - <" + input + " 2>" + err;
  int rc = std::system(cmd.c_str());
  std::ifstream e(err);
  std::stringstream es;
  es << e.rdbuf();
  BOOST_REQUIRE_MESSAGE(rc == 0, "systemd-journal-remote failed: " << cmd << "\n" << es.str());
}

std::vector<Entry> numbered(int from, int to) {
  std::vector<Entry> out;
  for (int i = from; i <= to; ++i) {
    Entry e;
    e.realtime_us = kT0 + static_cast<std::uint64_t>(i) * 1000000;
    e.message = "QID" + std::to_string(i) + ": to=<r" + std::to_string(i) + "@x.example>, status=sent";
    out.push_back(e);
  }
  return out;
}

// The message part of each line ("QIDn: ...").
std::vector<std::string> messages(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) {
    auto at = l.find(": ");
    out.push_back(at == std::string::npos ? l : l.substr(at + 2));
  }
  return out;
}

std::vector<std::string> expected(int from, int to) {
  std::vector<std::string> out;
  for (const auto& e : numbered(from, to)) out.push_back(e.message);
  return out;
}

std::vector<std::string> read_all(LineSource& src, std::size_t max = 1000) {
  std::vector<std::string> lines;
  src.read(lines, max);
  return lines;
}

// Reads until `want` lines came (waiting in between) or 10 s passed, then once more to see
// that nothing else comes.
std::vector<std::string> read_until(LineSource& src, std::size_t want) {
  std::vector<std::string> lines;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (lines.size() < want && std::chrono::steady_clock::now() < deadline) {
    if (src.read(lines, 1000) == 0) src.wait(200);
  }
  src.read(lines, 1000);
  return lines;
}

// wait() returns early when the folder changed: the inotify watch works. Seconds waited.
double timed_wait(LineSource& src, int ms) {
  auto t = std::chrono::steady_clock::now();
  src.wait(ms);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

BOOST_AUTO_TEST_CASE(journal_remote_is_installed) {
  BOOST_REQUIRE_MESSAGE(!journal_remote().empty(),
                        "systemd-journal-remote not found: run scripts/deps.sh as root "
                        "(Debian package systemd-journal-remote)");
}

BOOST_AUTO_TEST_CASE(lines_in_order_and_in_syslog_form) {
  TmpDir tmp;
  std::string dir = tmp / "journal";
  std::filesystem::create_directories(dir);
  std::vector<Entry> in(7);
  in[0].message = "4F1B2C3D4E: to=<a@b>, relay=none, status=sent";
  in[1].facility = 3;
  in[1].ident = "cron";
  in[1].message = "not mail";
  in[2].realtime_us = kT0 + 1;
  in[2].ident = "postfix/qmgr";
  in[2].pid = "7";
  in[2].trusted_pid = true;
  in[2].message = "4F1B2C3D4E: removed";
  in[3].realtime_us = kT0 + 2000000;
  in[3].ident = "postfix-out/smtp";
  in[3].pid = "";
  in[3].message = "no pid";
  in[4].realtime_us = kT0 + 3000000;
  in[4].message = "first\nsecond\nthird";
  in[5].realtime_us = kT0 + 4000000;
  in[5].message = std::string("bin\x01ary\0x", 9);
  in[6].realtime_us = kT0 + 5000000;
  in[6].facility = 1;
  in[6].message = "user facility";
  append(tmp, dir + "/remote.journal", in);

  auto src = make_journal_source(dir, 0);
  BOOST_TEST(src->checkpoint() == "");
  src->restore("");
  auto lines = read_all(*src);
  std::vector<std::string> want = {
      "2026-12-01T03:59:52.123456+00:00 mx1 postfix/smtp[123]: 4F1B2C3D4E: to=<a@b>, relay=none, status=sent",
      "2026-12-01T03:59:52.123457+00:00 mx1 postfix/qmgr[7]: 4F1B2C3D4E: removed",
      "2026-12-01T03:59:54.123456+00:00 mx1 postfix-out/smtp: no pid",
      "2026-12-01T03:59:55.123456+00:00 mx1 postfix/smtp[123]: first second third",
      "2026-12-01T03:59:56.123456+00:00 mx1 postfix/smtp[123]: " + std::string("bin\x01ary\0x", 9),
  };
  BOOST_TEST(lines == want, boost::test_tools::per_element());
  BOOST_TEST(src->checkpoint() != "");
  BOOST_TEST(src->checkpoint().find("s=") == 0);
  BOOST_TEST(read_all(*src).empty());  // 0: nothing now
  BOOST_TEST(src->take_gaps().empty());
  BOOST_TEST(src->status().find("journal " + dir + " (cursor s=") == 0, src->status());
  BOOST_TEST(src->lag() == -1);
}

BOOST_AUTO_TEST_CASE(read_respects_max_lines) {
  TmpDir tmp;
  std::string dir = tmp.path();
  append(tmp, dir + "/remote.journal", numbered(1, 5));
  auto src = make_journal_source(dir, 0);
  src->restore("");
  std::vector<std::string> lines;
  BOOST_TEST(src->read(lines, 2) == 2u);
  BOOST_TEST(src->read(lines, 2) == 2u);
  BOOST_TEST(src->read(lines, 2) == 1u);
  BOOST_TEST(src->read(lines, 2) == 0u);
  BOOST_TEST(messages(lines) == expected(1, 5), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(checkpoint_restore_continues_exactly_while_entries_are_appended) {
  TmpDir tmp;
  std::string dir = tmp / "j";
  std::filesystem::create_directories(dir);
  append(tmp, dir + "/remote.journal", numbered(1, 5));

  auto a = make_journal_source(dir, 0);
  a->restore("");
  std::vector<std::string> lines;
  BOOST_REQUIRE(a->read(lines, 2) == 2u);
  BOOST_TEST(messages(lines) == expected(1, 2), boost::test_tools::per_element());
  std::string cp = a->checkpoint();
  a.reset();

  // A new source (a restart) continues after the last line read: no loss, no duplicate.
  auto b = make_journal_source(dir, 0);
  b->restore(cp);
  BOOST_TEST(b->checkpoint() == cp);
  BOOST_TEST(messages(read_all(*b)) == expected(3, 5), boost::test_tools::per_element());
  BOOST_TEST(b->take_gaps().empty());

  // A second journal-remote run appends to the same file while b follows it.
  append(tmp, dir + "/remote.journal", numbered(6, 8));
  BOOST_TEST(timed_wait(*b, 8000) < 4.0);  // woken by inotify, not by the timeout
  BOOST_TEST(messages(read_until(*b, 3)) == expected(6, 8), boost::test_tools::per_element());
  std::string cp2 = b->checkpoint();
  BOOST_TEST(cp2 != cp);

  // Restored at the very end: nothing until more comes; then a new file in the folder
  // (rotation, or journal-remote writing another file) is picked up while following.
  auto c = make_journal_source(dir, 0);
  c->restore(cp2);
  BOOST_TEST(read_all(*c).empty());
  append(tmp, dir + "/remote-2.journal", numbered(9, 10));
  BOOST_TEST(timed_wait(*c, 8000) < 4.0);
  BOOST_TEST(messages(read_until(*c, 2)) == expected(9, 10), boost::test_tools::per_element());
  // ... and a restart after it continues in the new file.
  std::string cp3 = c->checkpoint();
  append(tmp, dir + "/remote-2.journal", numbered(11, 11));
  auto d = make_journal_source(dir, 0);
  d->restore(cp3);
  BOOST_TEST(messages(read_until(*d, 1)) == expected(11, 11), boost::test_tools::per_element());
  BOOST_TEST(c->take_gaps().empty());
  BOOST_TEST(d->take_gaps().empty());
}

BOOST_AUTO_TEST_CASE(new_entries_arrive_without_calling_wait) {
  TmpDir tmp;
  std::string dir = tmp.path();
  append(tmp, dir + "/remote.journal", numbered(1, 1));
  auto src = make_journal_source(dir, 0);
  src->restore("");
  BOOST_TEST(messages(read_all(*src)) == expected(1, 1));
  append(tmp, dir + "/remote.journal", numbered(2, 2));
  append(tmp, dir + "/remote-2.journal", numbered(3, 3));
  BOOST_TEST(messages(read_all(*src)) == expected(2, 3), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unknown_cursor_is_a_gap_and_reads_from_the_oldest) {
  TmpDir tmp;
  std::string dir = tmp / "here", other = tmp / "other";
  std::filesystem::create_directories(dir);
  std::filesystem::create_directories(other);
  append(tmp, dir + "/remote.journal", numbered(1, 3));
  append(tmp, other + "/remote.journal", numbered(1, 3));

  // A well-formed cursor of another journal (another machine, or a vacuumed file).
  auto o = make_journal_source(other, 0);
  o->restore("");
  BOOST_REQUIRE(read_all(*o).size() == 3u);
  std::string foreign = o->checkpoint();

  const std::string made_up =
      "s=00000000000000000000000000000001;i=99;b=0123456789abcdef0123456789abcdef;m=3e8;t=6618a8ef5e040;x=1";
  for (const std::string& cp : {foreign, std::string("not a cursor"), made_up}) {
    auto src = make_journal_source(dir, static_cast<std::int64_t>(kT0 + 2000000));
    src->restore(cp);
    auto gaps = src->take_gaps();
    BOOST_TEST_REQUIRE(gaps.size() == 1u, cp);
    BOOST_TEST(gaps[0].find("not found") != std::string::npos, gaps[0]);
    BOOST_TEST(gaps[0].find("oldest") != std::string::npos, gaps[0]);
    // From the oldest entry, not from first_start_since_us and not from the end.
    BOOST_TEST(messages(read_all(*src)) == expected(1, 3), boost::test_tools::per_element());
    BOOST_TEST(src->take_gaps().empty());
  }
}

BOOST_AUTO_TEST_CASE(first_start_reads_from_since) {
  TmpDir tmp;
  std::string dir = tmp.path();
  append(tmp, dir + "/remote.journal", numbered(1, 5));
  auto src = make_journal_source(dir, static_cast<std::int64_t>(kT0 + 3000000));
  src->restore("");
  BOOST_TEST(messages(read_all(*src)) == expected(3, 5), boost::test_tools::per_element());
  BOOST_TEST(src->take_gaps().empty());

  // Without restore(): the same first start.
  auto fresh = make_journal_source(dir, static_cast<std::int64_t>(kT0 + 4000000));
  BOOST_TEST(messages(read_all(*fresh)) == expected(4, 5), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(missing_folder_is_a_state_then_works) {
  TmpDir tmp;
  std::string dir = tmp / "later";
  auto src = make_journal_source(dir, 0);
  src->restore("");
  BOOST_TEST(read_all(*src).empty());
  BOOST_TEST(src->status().find("cannot open") != std::string::npos, src->status());
  BOOST_TEST(src->status().find(dir) != std::string::npos, src->status());
  BOOST_TEST(timed_wait(*src, 50) < 2.0);
  BOOST_TEST(src->checkpoint() == "");

  // The folder appears (empty: the source opens it and watches it), then a file in it.
  std::filesystem::create_directories(dir);
  BOOST_TEST(read_all(*src).empty());
  BOOST_TEST(src->status().find("cannot open") == std::string::npos, src->status());
  append(tmp, dir + "/remote.journal", numbered(1, 2));
  BOOST_TEST(timed_wait(*src, 8000) < 4.0);
  BOOST_TEST(messages(read_until(*src, 2)) == expected(1, 2), boost::test_tools::per_element());
  BOOST_TEST(src->take_gaps().empty());
}

BOOST_AUTO_TEST_CASE(missing_folder_keeps_the_checkpoint) {
  TmpDir tmp;
  std::string dir = tmp / "j";
  std::filesystem::create_directories(dir);
  append(tmp, dir + "/remote.journal", numbered(1, 3));
  auto a = make_journal_source(dir, 0);
  a->restore("");
  std::vector<std::string> lines;
  BOOST_REQUIRE(a->read(lines, 2) == 2u);
  std::string cp = a->checkpoint();

  // Restored while the folder is away: no error thrown, the checkpoint kept; once it is back
  // reading continues after the checkpoint.
  std::filesystem::rename(dir, tmp / "away");
  auto b = make_journal_source(dir, 0);
  b->restore(cp);
  BOOST_TEST(read_all(*b).empty());
  BOOST_TEST(b->checkpoint() == cp);
  BOOST_TEST(b->status().find("cannot open") != std::string::npos, b->status());
  std::filesystem::rename(tmp / "away", dir);
  BOOST_TEST(messages(read_all(*b)) == expected(3, 3));
  BOOST_TEST(b->take_gaps().empty());
}

BOOST_AUTO_TEST_CASE(folder_removed_then_recreated) {
  TmpDir tmp;
  std::string dir = tmp / "j";
  append(tmp, dir + "/remote.journal", numbered(1, 2));
  auto src = make_journal_source(dir, 0);
  src->restore("");
  BOOST_TEST(messages(read_all(*src)) == expected(1, 2), boost::test_tools::per_element());

  // Gone: an error in status(), nothing read, no throw.
  std::filesystem::rename(dir, tmp / "old");
  src->wait(100);
  BOOST_TEST(read_all(*src).empty());
  BOOST_TEST(read_all(*src).empty());
  std::string st = src->status();
  BOOST_TEST((st.find("(reopening)") != std::string::npos || st.find("cannot open") != std::string::npos), st);

  // A new folder with other files: the checkpoint is not in them, so a gap and the oldest.
  append(tmp, dir + "/remote.journal", numbered(3, 4));
  BOOST_TEST(messages(read_until(*src, 2)) == expected(3, 4), boost::test_tools::per_element());
  BOOST_TEST(src->take_gaps().size() == 1u);
  BOOST_TEST(src->status().find("(cursor s=") != std::string::npos, src->status());

  // Replaced while open (not missing in between): seen at the next read that finds nothing.
  std::filesystem::rename(dir, tmp / "old2");
  append(tmp, dir + "/remote.journal", numbered(5, 6));
  BOOST_TEST(messages(read_until(*src, 2)) == expected(5, 6), boost::test_tools::per_element());
  BOOST_TEST(src->take_gaps().size() == 1u);
}

BOOST_AUTO_TEST_CASE(system_journal_opens_without_a_journald) {
  // dir "": the local system journal; in a container without journald it may be empty or
  // missing: no throw, a status either way.
  auto src = make_journal_source("", static_cast<std::int64_t>(kT0));
  src->restore("");
  std::vector<std::string> lines;
  src->read(lines, 10);
  src->wait(10);
  BOOST_TEST(src->status().find("journal (system, local)") == 0, src->status());
  BOOST_TEST_MESSAGE(src->status());
}
