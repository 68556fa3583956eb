// The /metrics endpoint: libmicrohttpd on its own thread (MHD_USE_INTERNAL_POLLING_THREAD).
//
// GET (or HEAD) /metrics -> 200 "text/plain; version=0.0.4; charset=utf-8" with what
// render() returns; another path -> 404; another method on /metrics -> 405 with Allow.
// render() runs on the listener's thread, one scrape at a time; it must not wait on a lock
// a milter callback holds (Registry::render() takes none of theirs).
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace cllavio::metrics {

class Listener {
 public:
  explicit Listener(std::function<std::string()> render);
  ~Listener();  // stops
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds host:port (an IPv4 or IPv6 literal, or a name that resolves to one; port 0:
  // any free port) and serves. "" on success, else why not (address in use, ...).
  std::string start(const std::string& host, int port);
  void stop();
  int port() const { return port_; }  // the bound port, after start()

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace cllavio::metrics
