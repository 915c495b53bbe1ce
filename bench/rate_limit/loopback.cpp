#include "rate_limit/loopback.hpp"
#include "support/system.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice::bench::ratelim_bench {

void close_all(std::vector<connection_fds>& conns) {
  for (auto& c : conns) {
    if (c.server >= 0)
      ::close(c.server);
    if (c.client >= 0)
      ::close(c.client);
    c = {};
  }
}

std::vector<connection_fds> connect_loopback(std::size_t n) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0)
    throw_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  std::vector<connection_fds> conns;
  try {
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw_errno("bind");
    if (::listen(listener, 128) != 0)
      throw_errno("listen");
    if (::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw_errno("getsockname");
    for (std::size_t i = 0; i < n; ++i) {
      connection_fds c;
      c.client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c.client < 0)
        throw_errno("socket");
      conns.push_back(c);
      if (::connect(c.client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw_errno("connect");
      conns.back().server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (conns.back().server < 0)
        throw_errno("accept");
      if (::fcntl(c.client, F_SETFL, ::fcntl(c.client, F_GETFL) | O_NONBLOCK) != 0)
        throw_errno("fcntl");
    }
  } catch (...) {
    ::close(listener);
    close_all(conns);
    throw;
  }
  ::close(listener);
  return conns;
}

} // namespace sluice::bench::ratelim_bench
