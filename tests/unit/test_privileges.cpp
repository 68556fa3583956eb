#define BOOST_TEST_MODULE privileges
#include <boost/test/unit_test.hpp>

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "milter/privileges.hpp"
#include "tmpdir.hpp"

using namespace cllavio::milter;
using cllavio::test::TmpDir;

namespace {

unsigned mode_of(const std::string& p) {
  struct stat st{};
  ::lstat(p.c_str(), &st);
  return st.st_mode & 07777;
}

bool has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(missing_folder_is_created_with_the_mode) {
  TmpDir dir;
  BOOST_TEST(ensure_private_dir(dir / "a/b", 0700, std::nullopt) == "");
  BOOST_TEST(mode_of(dir / "a/b") == 0700u);
  BOOST_TEST(ensure_private_dir(dir / "a/b", 0700, std::nullopt) == "");  // existing and fine
}

BOOST_AUTO_TEST_CASE(symlinks_other_owners_and_open_folders_are_refused) {
  TmpDir dir;
  std::filesystem::create_directories(dir / "real");
  std::filesystem::create_symlink(dir / "real", dir / "link");
  BOOST_TEST(has(ensure_private_dir(dir / "link", 0700, std::nullopt), "is a symbolic link"));

  dir.write("file", "x");
  BOOST_TEST(has(ensure_private_dir(dir / "file", 0700, std::nullopt), "is not a folder"));

  std::filesystem::create_directories(dir / "open");
  ::chmod((dir / "open").c_str(), 0775);
  BOOST_TEST(has(ensure_private_dir(dir / "open", 0700, std::nullopt), "writable by group or others (mode 0775)"));

  std::filesystem::create_directories(dir / "sticky");
  ::chmod((dir / "sticky").c_str(), 01777);  // like /tmp: others cannot replace our files
  BOOST_TEST(ensure_private_dir(dir / "sticky", 0700, std::nullopt) == "");

  if (geteuid() == 0) {
    std::filesystem::create_directories(dir / "theirs");
    const passwd* nobody = getpwnam("nobody");
    BOOST_REQUIRE(nobody != nullptr);
    BOOST_REQUIRE(::chown((dir / "theirs").c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
    BOOST_TEST(has(ensure_private_dir(dir / "theirs", 0700, std::nullopt), "is owned by uid"));
  }
}

BOOST_AUTO_TEST_CASE(a_listening_socket_is_detected) {
  TmpDir dir;
  std::string path = dir / "m.sock";
  BOOST_TEST(check_socket_free(path) == "");  // nothing there
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  BOOST_TEST(check_socket_free(path) == "");  // bound but not listening: a stale socket
  BOOST_REQUIRE(::listen(fd, 1) == 0);
  BOOST_TEST(has(check_socket_free(path), "already listening"));
  BOOST_TEST(secure_socket(path, 0660, Account{}) == "");
  BOOST_TEST(mode_of(path) == 0660u);
  BOOST_TEST(has(secure_socket(dir.path(), 0660, Account{}), "is not the socket"));
  ::close(fd);
}
