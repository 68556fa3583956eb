#include "metrics/listener.hpp"

#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace cllavio::metrics {

struct Listener::Impl {
  std::function<std::string()> render;
  MHD_Daemon* daemon = nullptr;
};

namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

MHD_Result reply(MHD_Connection* conn, unsigned status, const std::string& body, const char* type,
                 const char* allow = nullptr) {
  MHD_Response* r =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (allow != nullptr) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  MHD_Result ok = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ok;
}

// Runs on libmicrohttpd's thread: no exception may leave it.
MHD_Result handle(void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                  const char*, size_t* upload_size, void**) {
  try {
    auto* impl = static_cast<Listener::Impl*>(cls);
    if (std::string_view(url) != "/metrics") return reply(conn, MHD_HTTP_NOT_FOUND, "not found\n", "text/plain");
    std::string_view m(method);
    if (m != "GET" && m != "HEAD") {
      *upload_size = 0;  // a body is not read: the answer does not depend on it
      return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "text/plain", "GET, HEAD");
    }
    return reply(conn, MHD_HTTP_OK, impl->render(), kContentType);
  } catch (...) {
    return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n", "text/plain");
  }
}

// A listening socket on host:port; -1 with `err` set when there is none.
int listen_on(const std::string& host, int port, std::string& err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    err = "cannot resolve " + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 16) == 0) break;
    err = std::string("bind/listen: ") + std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

}  // namespace

Listener::Listener(std::function<std::string()> render) : impl_(std::make_unique<Impl>()) {
  impl_->render = std::move(render);
}

Listener::~Listener() { stop(); }

std::string Listener::start(const std::string& host, int port) {
  if (impl_->daemon != nullptr) return "already started";
  std::string err;
  int fd = listen_on(host, port, err);
  if (fd < 0) return "cannot listen on " + host + ":" + std::to_string(port) + ": " + err;
  port_ = bound_port(fd);
  // One thread; a scrape is served in a few milliseconds, so a handful of connections
  // at a time is plenty, and an idle one is closed after 10 s.
  impl_->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, nullptr, nullptr, &handle, impl_.get(),
                                   MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 32u,
                                   MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (impl_->daemon == nullptr) {
    ::close(fd);
    return "cannot start the metrics listener on " + host + ":" + std::to_string(port) + " (libmicrohttpd)";
  }
  return {};
}

void Listener::stop() {
  if (impl_ && impl_->daemon != nullptr) {
    MHD_stop_daemon(impl_->daemon);  // closes the listening socket too
    impl_->daemon = nullptr;
  }
}

}  // namespace cllavio::metrics
