// A private redis-server for one test (tests/unit/test_redis_ledger.cpp): started on a
// free loopback port (or a unix socket only) in a temporary folder, without persistence,
// and killed at scope exit. A missing redis-server is a failure, not a skip.
#pragma once

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tmpdir.hpp"

namespace cllavio::test {

inline const char* kRedisServer = "/usr/bin/redis-server";

// A port nobody listens on now (bound and closed; checked again by binding it).
inline int free_tcp_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(fd);
    if (port == 0) continue;
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return port;
  }
  throw std::runtime_error("no free TCP port");
}

// A raw connection for what the tests look at (TIME, PTTL, MEMORY USAGE, SCRIPT FLUSH).
class RawRedis {
 public:
  RawRedis(const std::string& host, int port, const std::string& unix_path = {}, const std::string& password = {}) {
    timeval tv{5, 0};
    c_ = unix_path.empty() ? redisConnectWithTimeout(host.c_str(), port, tv)
                           : redisConnectUnixWithTimeout(unix_path.c_str(), tv);
    if (!c_ || c_->err) throw std::runtime_error("raw redis connect failed");
    redisSetTimeout(c_, tv);
    if (!password.empty()) cmd({"AUTH", password});
  }
  ~RawRedis() {
    if (c_) redisFree(c_);
  }
  RawRedis(const RawRedis&) = delete;
  RawRedis& operator=(const RawRedis&) = delete;

  struct Reply {
    int type = 0;
    long long integer = 0;
    std::string str;
    std::vector<std::string> elements;
  };
  Reply cmd(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) argv.push_back(a.c_str()), lens.push_back(a.size());
    auto* r = static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r) throw std::runtime_error("raw redis command failed");
    Reply out{r->type, r->integer, r->str ? std::string(r->str, r->len) : std::string(), {}};
    for (size_t i = 0; i < r->elements; ++i)
      out.elements.push_back(r->element[i]->str ? std::string(r->element[i]->str, r->element[i]->len)
                                                : std::to_string(r->element[i]->integer));
    freeReplyObject(r);
    return out;
  }
  std::int64_t time_us() {
    auto r = cmd({"TIME"});
    return std::stoll(r.elements.at(0)) * 1000000 + std::stoll(r.elements.at(1));
  }

 private:
  redisContext* c_ = nullptr;
};

class RedisServer {
 public:
  struct Options {
    bool tcp = true;
    bool unix_socket = false;
    std::string password;
  };
  RedisServer() : RedisServer(Options{}) {}
  explicit RedisServer(Options o) : opt_(std::move(o)) {
    BOOST_REQUIRE_MESSAGE(std::filesystem::exists(kRedisServer),
                          "redis-server is not installed: apt-get install redis-server (scripts/deps.sh)");
    port_ = opt_.tcp ? free_tcp_port() : 0;
    if (opt_.unix_socket) sock_ = dir_ / "redis.sock";
    std::vector<std::string> args{kRedisServer, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", dir_.path(),
                                  "--logfile", dir_ / "redis.log", "--daemonize", "no"};
    if (opt_.unix_socket) args.insert(args.end(), {"--unixsocket", sock_, "--unixsocketperm", "700"});
    if (!opt_.password.empty()) args.insert(args.end(), {"--requirepass", opt_.password});
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kRedisServer, argv.data());
      ::_exit(127);
    }
    BOOST_REQUIRE(pid_ > 0);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!answers()) {
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "redis-server did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  const std::string& socket_path() const { return sock_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  RawRedis raw() const { return RawRedis("127.0.0.1", port_, opt_.tcp ? std::string() : sock_, opt_.password); }

 private:
  bool answers() const {
    timeval tv{0, 200000};
    redisContext* c = opt_.tcp ? redisConnectWithTimeout("127.0.0.1", port_, tv)
                               : redisConnectUnixWithTimeout(sock_.c_str(), tv);
    bool ok = false;
    if (c && !c->err) {
      redisSetTimeout(c, tv);
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr;  // PONG, or NOAUTH when a password is set: it runs
      if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
  }

  Options opt_;
  TmpDir dir_;
  int port_ = 0;
  std::string sock_;
  pid_t pid_ = -1;
};

}  // namespace cllavio::test
