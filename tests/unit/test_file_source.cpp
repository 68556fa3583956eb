// make_file_source: exact line sequences across growth, partial lines, checkpoints and
// restores, rename-and-create rotation (while reading and while down), copytruncate, a
// missing or unreadable file, a reused inode, overlong lines and arbitrary bytes; and a
// writer thread with rotations against a reader using wait().
#define BOOST_TEST_MODULE file_source
#include <boost/test/unit_test.hpp>

#include <utime.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "delivery/source.hpp"
#include "tmpdir.hpp"

using cllavio::delivery::LineSource;
using cllavio::delivery::make_file_source;
using cllavio::test::TmpDir;
using Lines = std::vector<std::string>;

namespace {

void append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::app) << text;
}
// Truncates in place (the inode stays) and writes text.
void rewrite(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}
void copytruncate(const std::string& path) {
  std::filesystem::copy_file(path, path + ".1", std::filesystem::copy_options::overwrite_existing);
  rewrite(path, "");
}

// Every line readable now.
Lines drain(LineSource& s, std::size_t max = 1000) {
  Lines out;
  while (s.read(out, max) > 0) {
  }
  return out;
}

// Lines joined for a readable comparison: non-printable bytes as \xNN.
std::string show(const Lines& lines) {
  std::string out = std::to_string(lines.size()) + ":";
  for (const auto& l : lines) {
    out += " [";
    for (unsigned char c : l) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : std::string(hex);
    }
    out += "]";
  }
  return out;
}
#define CHECK_LINES(got, ...) BOOST_TEST(show(got) == show(Lines __VA_ARGS__))

std::uint64_t inode_of(const std::string& path) {
  struct stat st;
  BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

long ms_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

nlohmann::json cp_json(const LineSource& s) { return nlohmann::json::parse(s.checkpoint()); }

// A writer that keeps its descriptor across a rename, as syslog and postlogd do.
class Writer {
 public:
  explicit Writer(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644)) {
    BOOST_REQUIRE(fd_ >= 0);
  }
  ~Writer() { ::close(fd_); }
  void put(const std::string& s) { BOOST_REQUIRE(::write(fd_, s.data(), s.size()) == static_cast<ssize_t>(s.size())); }

 private:
  int fd_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(growth_and_partial_line) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "a\nb\npar");
  auto s = make_file_source(p);
  s->restore("");
  CHECK_LINES(drain(*s), {"a", "b"});
  BOOST_TEST(s->lag() == 3);
  CHECK_LINES(drain(*s), {});
  append(p, "tial\nc\n");
  CHECK_LINES(drain(*s), {"partial", "c"});
  BOOST_TEST(s->lag() == 0);
  BOOST_TEST(s->take_gaps().empty());
  BOOST_TEST(s->status().find("reading " + p) == 0);
}

BOOST_AUTO_TEST_CASE(checkpoint_then_restore_continues_exactly) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "l1\nl2\nl3\npart");
  auto s1 = make_file_source(p);
  s1->restore("");
  Lines got;
  BOOST_TEST(s1->read(got, 2) == 2u);
  CHECK_LINES(got, {"l1", "l2"});
  std::string cp = s1->checkpoint();
  auto j = nlohmann::json::parse(cp);
  BOOST_TEST(j["v"] == 1);
  BOOST_TEST(j["path"] == p);
  BOOST_TEST(j["ino"] == inode_of(p));
  BOOST_TEST(j["off"] == 6);
  BOOST_TEST(j["head_len"] == 13);
  BOOST_TEST(j["head"].get<std::string>().size() == 64u);

  auto s2 = make_file_source(p);
  s2->restore(cp);
  BOOST_TEST(s2->checkpoint() == cp);
  CHECK_LINES(drain(*s2), {"l3"});
  append(p, "\nl4\n");
  CHECK_LINES(drain(*s2), {"part", "l4"});
  BOOST_TEST(s2->take_gaps().empty());
  // A checkpoint after the head grew past what the first one saw.
  auto s3 = make_file_source(p);
  s3->restore(s2->checkpoint());
  CHECK_LINES(drain(*s3), {});
  append(p, "l5\n");
  CHECK_LINES(drain(*s3), {"l5"});
  BOOST_TEST(s3->take_gaps().empty());

  auto bad = make_file_source(p);
  bad->restore("{not json");
  BOOST_TEST(bad->take_gaps().size() == 1u);
  BOOST_TEST(drain(*bad).size() == 6u);
}

BOOST_AUTO_TEST_CASE(rename_and_create_while_reading) {
  TmpDir dir;
  std::string p = dir / "mail.log";
  auto old_writer = std::make_unique<Writer>(p);
  old_writer->put("o1\no2\n");
  auto s = make_file_source(p);
  s->restore("");
  CHECK_LINES(drain(*s), {"o1", "o2"});
  std::uint64_t old_ino = inode_of(p);
  BOOST_REQUIRE(std::rename(p.c_str(), (p + ".1").c_str()) == 0);
  old_writer->put("o3\n");  // the writer has not reopened yet
  Writer new_writer(p);
  CHECK_LINES(drain(*s), {"o3"});
  BOOST_TEST(s->status().find("finishing the rotated file") == 0);
  BOOST_TEST(cp_json(*s)["ino"] == old_ino);
  old_writer->put("o4\npartial-o5");  // a line and a partial one, then the writer reopens
  old_writer.reset();
  new_writer.put("n1\n");
  BOOST_TEST(s->lag() == 13 + 3);  // the rest of the old file, then the new one
  CHECK_LINES(drain(*s), {"o4", "partial-o5", "n1"});
  new_writer.put("n2\n");
  CHECK_LINES(drain(*s), {"n2"});
  BOOST_TEST(cp_json(*s)["ino"] == inode_of(p));
  BOOST_TEST(cp_json(*s)["off"] == 6);
  BOOST_TEST(s->take_gaps().empty());
}

BOOST_AUTO_TEST_CASE(rotated_file_left_after_two_quiet_seconds) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "o1\n");
  auto s = make_file_source(p);
  s->restore("");
  CHECK_LINES(drain(*s), {"o1"});
  BOOST_REQUIRE(std::rename(p.c_str(), (p + ".1").c_str()) == 0);
  Writer w(p);  // empty new file
  CHECK_LINES(drain(*s), {});
  BOOST_TEST(s->status().find("finishing") == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  CHECK_LINES(drain(*s), {});
  BOOST_TEST(s->status().find("reading " + p) == 0);
  BOOST_TEST(cp_json(*s)["ino"] == inode_of(p));
  BOOST_TEST(cp_json(*s)["off"] == 0);
  w.put("n1\n");
  CHECK_LINES(drain(*s), {"n1"});
}

BOOST_AUTO_TEST_CASE(rotation_while_down) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "a\nb\n");
  std::string cp;
  {
    auto s = make_file_source(p);
    s->restore("");
    CHECK_LINES(drain(*s), {"a", "b"});
    cp = s->checkpoint();
  }
  BOOST_REQUIRE(std::rename(p.c_str(), (p + ".1").c_str()) == 0);
  append(p + ".1", "c\n");
  append(p, "d\n");
  auto s = make_file_source(p);
  s->restore(cp);
  CHECK_LINES(drain(*s), {"c", "d"});
  BOOST_TEST(s->take_gaps().empty());

}

// postfix logrotate names the old file PATH.YYYYMMDD-HHMMSS (and gzips it a second later,
// unless maillog_file_compressor = true): found again when it is the newest rotated file.
BOOST_AUTO_TEST_CASE(dated_rotation_while_down) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "a\nb\n");
  std::string cp;
  {
    auto s = make_file_source(p);
    s->restore("");
    CHECK_LINES(drain(*s), {"a", "b"});
    cp = s->checkpoint();
  }
  dir.write("mail.log.20261101-000000.gz", "older, compressed");
  ::utime((p + ".20261101-000000.gz").c_str(), nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  BOOST_REQUIRE(std::rename(p.c_str(), (p + ".20261201-042532").c_str()) == 0);
  append(p + ".20261201-042532", "c\n");
  append(p, "d\n");
  auto s = make_file_source(p);
  s->restore(cp);
  CHECK_LINES(drain(*s), {"c", "d"});
  BOOST_TEST(s->take_gaps().empty());
}

BOOST_AUTO_TEST_CASE(dated_rotation_already_compressed_is_a_gap) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "a\nb\n");
  std::string cp;
  {
    auto s = make_file_source(p);
    s->restore("");
    CHECK_LINES(drain(*s), {"a", "b"});
    cp = s->checkpoint();
  }
  BOOST_REQUIRE(std::rename(p.c_str(), (p + ".20261201-042532").c_str()) == 0);
  append(p + ".20261201-042532", "c\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  dir.write("mail.log.20261201-050000.gz", "a newer rotation, compressed");
  append(p, "d\n");
  auto s = make_file_source(p);
  s->restore(cp);
  BOOST_TEST(s->take_gaps().size() == 1u);  // the newer compressed file's lines cannot be read
  CHECK_LINES(drain(*s), {"d"});
}

BOOST_AUTO_TEST_CASE(restart_while_finishing_the_rotated_file) {
  TmpDir dir;
  std::string p = dir / "mail.log";
  Writer old_writer(p);
  old_writer.put("a\n");
  std::string cp;
  {
    auto s = make_file_source(p);
    s->restore("");
    CHECK_LINES(drain(*s), {"a"});
    std::rename(p.c_str(), (p + ".1").c_str());
    Writer(p).put("");
    old_writer.put("b\n");
    CHECK_LINES(drain(*s), {"b"});
    cp = s->checkpoint();  // in the rotated file
  }
  old_writer.put("c\n");
  append(p, "n1\n");
  auto s = make_file_source(p);
  s->restore(cp);
  CHECK_LINES(drain(*s), {"c", "n1"});
  BOOST_TEST(s->take_gaps().empty());
}

BOOST_AUTO_TEST_CASE(two_rotations_while_down_are_a_gap) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "a\nb\n");
  auto s1 = make_file_source(p);
  s1->restore("");
  CHECK_LINES(drain(*s1), {"a", "b"});
  std::string cp = s1->checkpoint();
  s1.reset();
  append(p, "c\n");
  std::rename(p.c_str(), (p + ".1").c_str());
  append(p, "m\n");
  std::rename((p + ".1").c_str(), (p + ".2").c_str());
  std::rename(p.c_str(), (p + ".1").c_str());
  append(p, "z\n");
  auto s = make_file_source(p);
  s->restore(cp);
  auto gaps = s->take_gaps();
  BOOST_REQUIRE(gaps.size() == 1u);
  BOOST_TEST(gaps[0].find("checkpointed file " + p + " (inode ") == 0);
  BOOST_TEST(gaps[0].find("not found again") != std::string::npos);
  BOOST_TEST(gaps[0].find("reading " + p + " from its start") != std::string::npos);
  CHECK_LINES(drain(*s), {"z"});
  BOOST_TEST(s->take_gaps().empty());
}

BOOST_AUTO_TEST_CASE(copytruncate_while_running) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "a\nb\n");
  auto s = make_file_source(p);
  s->restore("");
  CHECK_LINES(drain(*s), {"a", "b"});
  append(p, "c\n");
  copytruncate(p);
  append(p, "d\n");
  CHECK_LINES(drain(*s), {"c", "d"});
  BOOST_TEST(s->take_gaps().empty());
  // Truncated and grown past the offset again before we looked: the head tells.
  append(p, "e\n");
  copytruncate(p);
  append(p, "ffffffffffffffffff\n");
  CHECK_LINES(drain(*s), {"e", "ffffffffffffffffff"});
  BOOST_TEST(s->take_gaps().empty());
  // No copy: a gap, then the file from its start.
  append(p, "g\n");
  std::filesystem::remove(p + ".1");
  rewrite(p, "h\n");
  CHECK_LINES(drain(*s), {"h"});
  auto gaps = s->take_gaps();
  BOOST_REQUIRE(gaps.size() == 1u);
  BOOST_TEST(gaps[0].find("copytruncate?") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(copytruncate_while_down) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "a\nb\n");
  auto s1 = make_file_source(p);
  s1->restore("");
  CHECK_LINES(drain(*s1), {"a", "b"});
  std::string cp = s1->checkpoint();
  s1.reset();
  append(p, "c\n");
  copytruncate(p);
  append(p, "d\n");
  auto s = make_file_source(p);
  s->restore(cp);
  CHECK_LINES(drain(*s), {"c", "d"});
  BOOST_TEST(s->take_gaps().empty());

  std::string cp2 = s->checkpoint();
  append(p, "e\n");
  std::filesystem::remove(p + ".1");
  rewrite(p, "f\n");
  auto s2 = make_file_source(p);
  s2->restore(cp2);
  auto gaps = s2->take_gaps();
  BOOST_REQUIRE(gaps.size() == 1u);
  BOOST_TEST(gaps[0].find("was truncated or rewritten") != std::string::npos);
  CHECK_LINES(drain(*s2), {"f"});
}

BOOST_AUTO_TEST_CASE(missing_file_appears_later) {
  TmpDir dir;
  std::string p = dir / "mail.log";
  auto s = make_file_source(p);
  s->restore("");
  CHECK_LINES(drain(*s), {});
  BOOST_TEST(s->status() == p + " does not exist (yet)");
  BOOST_TEST(s->lag() == -1);
  BOOST_TEST(s->checkpoint() == "");
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    append(p, "first\n");
  });
  auto t0 = std::chrono::steady_clock::now();
  s->wait(5000);
  later.join();
  BOOST_TEST(ms_since(t0) < 1500);
  CHECK_LINES(drain(*s), {"first"});
  BOOST_TEST(s->take_gaps().empty());
}

BOOST_AUTO_TEST_CASE(directory_is_an_error_status) {
  TmpDir dir;
  std::filesystem::create_directories(dir / "log");
  auto s = make_file_source(dir / "log");
  s->restore("");
  CHECK_LINES(drain(*s), {});
  BOOST_TEST(s->status() == "cannot read " + (dir / "log") + ": Is a directory");
  s->wait(10);
}

BOOST_AUTO_TEST_CASE(permission_denied_is_a_status) {
  if (::geteuid() != 0) return;  // the child drops to nobody: needs root
  TmpDir dir;
  ::chmod(dir.path().c_str(), 0755);
  std::string p = dir.write("mail.log", "a\nb\n");
  ::chmod(p.c_str(), 0600);
  auto s0 = make_file_source(p);
  s0->restore("");
  Lines got;
  s0->read(got, 1);
  std::string cp = s0->checkpoint();
  pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(2);
    auto s = make_file_source(p);
    s->restore("");
    Lines l;
    bool ok = s->read(l, 10) == 0 && s->status() == "cannot read " + p + ": Permission denied";
    auto r = make_file_source(p);  // a checkpoint is kept until the file can be read
    r->restore(cp);
    ok = ok && r->read(l, 10) == 0 && r->checkpoint() == cp && r->take_gaps().empty() &&
         r->status().find("Permission denied") != std::string::npos;
    ::_exit(ok ? 0 : 1);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  BOOST_TEST(WIFEXITED(st));
  BOOST_TEST(WEXITSTATUS(st) == 0);
}

BOOST_AUTO_TEST_CASE(same_inode_other_content_is_a_gap) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "aaa\nbbb\n");
  auto s1 = make_file_source(p);
  s1->restore("");
  CHECK_LINES(drain(*s1), {"aaa", "bbb"});
  std::string cp = s1->checkpoint();
  std::uint64_t ino = inode_of(p);
  rewrite(p, "xxx\nyyy\nzzz\n");
  BOOST_REQUIRE(inode_of(p) == ino);
  auto s2 = make_file_source(p);
  s2->restore(cp);
  auto gaps = s2->take_gaps();
  BOOST_REQUIRE(gaps.size() == 1u);
  BOOST_TEST(gaps[0].find("was truncated or rewritten") != std::string::npos);
  CHECK_LINES(drain(*s2), {"xxx", "yyy", "zzz"});
  // The same while running.
  CHECK_LINES(drain(*s1), {"xxx", "yyy", "zzz"});
  BOOST_TEST(s1->take_gaps().size() == 1u);
}

BOOST_AUTO_TEST_CASE(overlong_lines_are_cut_at_64k) {
  TmpDir dir;
  std::string p = dir.write("mail.log", std::string(200 * 1024, 'x') + "\nshort\n");
  auto s = make_file_source(p);
  s->restore("");
  CHECK_LINES(drain(*s), {std::string(64 * 1024, 'x'), "short"});
  // Arriving in pieces, longer than the buffer; the cut line is returned once its '\n' is there.
  append(p, std::string(100 * 1024, 'y'));
  CHECK_LINES(drain(*s), {});
  append(p, std::string(1024 * 1024, 'z'));
  CHECK_LINES(drain(*s), {});
  append(p, "tail\nend\n");
  CHECK_LINES(drain(*s), {std::string(64 * 1024, 'y'), "end"});
  BOOST_TEST(cp_json(*s)["off"] == std::filesystem::file_size(p));
  // A line of exactly 64 KB is whole.
  append(p, std::string(64 * 1024, 'w') + "\n");
  CHECK_LINES(drain(*s), {std::string(64 * 1024, 'w')});
}

BOOST_AUTO_TEST_CASE(bytes_pass_through) {
  TmpDir dir;
  std::string p = dir.write("mail.log", std::string("a\0b\xff\xfe\n", 6) + "crlf\r\n\n\xc3\n");
  auto s = make_file_source(p);
  s->restore("");
  CHECK_LINES(drain(*s), {std::string("a\0b\xff\xfe", 5), "crlf\r", "", "\xc3"});
  BOOST_TEST(s->checkpoint().find("\"path\":\"" + p + "\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(max_lines_and_wait) {
  TmpDir dir;
  std::string p = dir.write("mail.log", "1\n2\n3\n");
  auto s = make_file_source(p);
  s->restore("");
  Lines got;
  BOOST_TEST(s->read(got, 2) == 2u);
  auto t0 = std::chrono::steady_clock::now();
  s->wait(3000);  // more is known to be there: no wait
  BOOST_TEST(ms_since(t0) < 100);
  BOOST_TEST(s->read(got, 2) == 1u);
  CHECK_LINES(got, {"1", "2", "3"});
}

BOOST_AUTO_TEST_CASE(stress_writer_with_rotations) {
  TmpDir dir;
  std::string p = dir / "mail.log";
  constexpr int kLines = 100000;
  auto line = [](int i) { return "line " + std::to_string(i) + " status=sent (250 2.0.0 Ok: queued)"; };
  Writer(p).put("");
  auto s = make_file_source(p);
  s->restore("");
  std::thread writer([&] {
    int fd = ::open(p.c_str(), O_WRONLY | O_APPEND);
    for (int i = 0; i < kLines;) {
      if (i > 0 && i % 25000 == 0) {
        std::rename(p.c_str(), (p + ".1").c_str());
        for (int k = 0; k < 200; ++k, ++i) {  // still writing to the renamed file
          std::string l = line(i) + "\n";
          (void)!::write(fd, l.data(), l.size());
        }
        int next = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
        ::close(fd);
        fd = next;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::string l = line(i) + "\n";
      (void)!::write(fd, l.data(), l.size());
      ++i;
    }
    ::close(fd);
  });
  Lines got;
  got.reserve(kLines);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (got.size() < static_cast<std::size_t>(kLines) && std::chrono::steady_clock::now() < deadline) {
    if (s->read(got, 4096) == 0) s->wait(200);
  }
  writer.join();
  drain(*s);
  BOOST_TEST(got.size() == static_cast<std::size_t>(kLines));
  std::size_t bad = got.size();
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != line(static_cast<int>(i))) {
      bad = i;
      break;
    }
  BOOST_TEST(bad == got.size(), "first wrong line " << bad << ": " << (bad < got.size() ? got[bad] : ""));
  BOOST_TEST(s->take_gaps().empty());
  BOOST_TEST(drain(*s).empty());
}
