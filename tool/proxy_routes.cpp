#include "proxy_routes.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace sluice::proxy {

namespace net = boost::asio;
using net::ip::tcp;

namespace {

// The TCP endpoint in a generic one (AF_INET or AF_INET6).
tcp::endpoint to_tcp(const stream_endpoint& e) {
  tcp::endpoint t;
  std::memcpy(t.data(), e.data(), e.size());
  t.resize(e.size());
  return t;
}

bool is_ip(const stream_endpoint& e) {
  return e.data()->sa_family == AF_INET || e.data()->sa_family == AF_INET6;
}

std::string unix_path(const stream_endpoint& e) {
  const auto* un = reinterpret_cast<const sockaddr_un*>(e.data());
  std::size_t offset = offsetof(sockaddr_un, sun_path);
  if (e.size() <= offset)
    return {};
  return std::string(un->sun_path, strnlen(un->sun_path, e.size() - offset));
}

} // namespace

std::string endpoint_text(const stream_endpoint& e) {
  if (is_ip(e)) {
    tcp::endpoint t = to_tcp(e);
    std::string address = t.address().to_string();
    if (t.address().is_v6())
      address = "[" + address + "]";
    return address + ":" + std::to_string(t.port());
  }
  std::string path = unix_path(e);
  return path.empty() ? "unix" : "unix:" + path;
}

std::string client_address(const stream_endpoint& e) {
  if (!is_ip(e))
    return "unix";
  auto address = to_tcp(e).address();
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6()).to_string();
  return address.to_string();
}

std::vector<stream_endpoint> resolve(net::io_context& ctx, const std::string& option,
                                     const endpoint_spec& where) {
  if (where.is_unix())
    return {stream_endpoint(net::local::stream_protocol::endpoint(where.unix_path))};
  tcp::resolver resolver(ctx);
  boost::system::error_code ec;
  auto results = resolver.resolve(where.tcp.host, std::to_string(where.tcp.port),
                                  tcp::resolver::numeric_service, ec);
  if (!ec && results.empty())
    ec = net::error::host_not_found;
  if (ec)
    throw option_error(option, "'" + where.text() + "': cannot resolve '" + where.tcp.host +
                                   "': " + ec.message());
  std::vector<stream_endpoint> out;
  for (const auto& entry : results)
    out.emplace_back(entry.endpoint());
  return out;
}

std::string resolved_text(const endpoint_spec& given,
                          const std::vector<stream_endpoint>& resolved) {
  std::string addresses;
  for (const auto& e : resolved) {
    if (!addresses.empty())
      addresses += ", ";
    addresses += endpoint_text(e);
  }
  return addresses == given.text() ? addresses : given.text() + " (" + addresses + ")";
}

listener::listener(net::io_context& ctx, const stream_endpoint& where) : acceptor_(ctx) {
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("cannot listen on " + endpoint_text(where) + ": " + why);
  };
  std::string path = is_ip(where) ? std::string() : unix_path(where);
  if (!path.empty()) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        fail("the path exists and is not a socket");
      // A socket file: in use if something accepts on it, else left behind by a proxy that
      // did not exit, and taken over.
      stream_socket probe(ctx);
      boost::system::error_code ec;
      probe.connect(where, ec);
      if (!ec)
        fail("something listens on it already");
      if (ec != net::error::connection_refused)
        fail(ec.message());
      if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        fail(std::error_code(errno, std::generic_category()).message());
    }
  }
  boost::system::error_code ec;
  acceptor_.open(where.protocol(), ec);
  if (!ec && path.empty())
    acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor_.bind(where, ec);
  if (!ec)
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    fail(ec.message());
  if (!path.empty()) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      unix_path_ = path;
      device_ = st.st_dev;
      inode_ = st.st_ino;
    }
  }
  acceptor_.non_blocking(true);
}

listener::~listener() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  struct stat st {};
  if (!unix_path_.empty() && ::lstat(unix_path_.c_str(), &st) == 0 && st.st_dev == device_ &&
      st.st_ino == inode_)
    ::unlink(unix_path_.c_str());
}

std::string listener::local_text() const {
  boost::system::error_code ec;
  auto e = acceptor_.local_endpoint(ec);
  return ec ? std::string("?") : endpoint_text(e);
}

} // namespace sluice::proxy
