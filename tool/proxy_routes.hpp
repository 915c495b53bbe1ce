// The ends of routes: addresses resolved at start, and the listeners, TCP or unix-domain.
// Every socket of the proxy is a generic stream socket, so that one relay serves both kinds.
#ifndef SLUICE_TOOL_PROXY_ROUTES_HPP
#define SLUICE_TOOL_PROXY_ROUTES_HPP

#include "proxy_options.hpp"

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>

#include <sys/types.h>

#include <string>
#include <vector>

namespace sluice::proxy {

using stream_protocol = boost::asio::generic::stream_protocol;
using stream_socket = stream_protocol::socket;
using stream_endpoint = stream_protocol::endpoint;
using stream_acceptor = boost::asio::basic_socket_acceptor<stream_protocol>;

/// "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock", or "unix" for an unnamed unix
/// socket (what a unix client's address is).
std::string endpoint_text(const stream_endpoint& e);

/// What --per-ip counts a client by: its IP address ("127.0.0.2", "::1"; an IPv4-mapped
/// IPv6 address as IPv4), or "unix" for every unix-domain client.
std::string client_address(const stream_endpoint& e);

/// The addresses of `where`: a TCP name resolved (once: a restart picks up changes in DNS),
/// or the unix path. A name that does not resolve throws option_error naming `option`.
std::vector<stream_endpoint> resolve(boost::asio::io_context& ctx, const std::string& option,
                                     const endpoint_spec& where);

/// "localhost:8000 (127.0.0.1:8000)": an address as given and, where that was a name, the
/// addresses it resolved to.
std::string resolved_text(const endpoint_spec& given, const std::vector<stream_endpoint>& resolved);

/// A listening socket. On a unix path, a socket file left by a proxy that did not exit is
/// removed first, but only if nothing accepts connections on it (else this throws, as it
/// does for a path that exists and is not a socket); the file is removed again when the
/// listener goes, if it is still the one it made.
class listener {
public:
  /// Throws std::runtime_error saying why it cannot listen on `where`.
  listener(boost::asio::io_context& ctx, const stream_endpoint& where);
  ~listener();
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  stream_acceptor& acceptor() { return acceptor_; }
  /// The address listened on, with the port the kernel chose for port 0.
  std::string local_text() const;

private:
  stream_acceptor acceptor_;
  std::string unix_path_; // its socket file, to remove
  dev_t device_ = 0;      // ...if it is still this one
  ino_t inode_ = 0;
};

} // namespace sluice::proxy

#endif
