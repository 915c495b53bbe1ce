// --admin: an HTTP endpoint of the running proxy. GET /metrics (Prometheus text format),
// GET /stats and GET /limits (JSON), PUT /limits (JSON: changes the limits at once, or
// nothing). Loopback only unless --admin-allow-remote: a request whose Origin or Host is
// not loopback (a web page, or a DNS name rebound to 127.0.0.1) is refused.
#ifndef SLUICE_TOOL_PROXY_ADMIN_HPP
#define SLUICE_TOOL_PROXY_ADMIN_HPP

#include "proxy_logger.hpp"
#include "proxy_server.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <string>

namespace sluice::proxy {

/// The metrics of `p` in the Prometheus text format (version 0.0.4).
std::string metrics_text(const proxy& p);
/// The same, and the routes' addresses, as a JSON object.
std::string stats_json(const proxy& p);

/// A status and a body, before they are an HTTP response: what handle_admin decides.
struct admin_reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow; ///< for a 405: the methods the path takes
};

/// The answer to one request, with the request's method, path, Origin and Host (empty
/// when absent) and body; PUT /limits applies new limits to `p`.
admin_reply handle_admin(proxy& p, logger& log, bool allow_remote, std::string_view method,
                         std::string_view target, std::string_view origin, std::string_view host,
                         std::string_view body);

class admin_server {
public:
  /// At most this many connections at once. One more closes the one that has waited longest
  /// for its request (idle, or sending it slowly), so that clients which connect and send
  /// nothing cannot keep others out; when all are being answered, it is closed instead.
  static constexpr std::size_t max_sessions = 16;
  /// A connection that has sent no whole request in this time is closed.
  static constexpr std::chrono::seconds request_timeout{10};

  /// Listens on `at` (throws boost::system::system_error when it cannot).
  admin_server(boost::asio::io_context& ctx, const boost::asio::ip::tcp::endpoint& at,
               bool allow_remote, proxy& p, logger& log);
  std::string local_text() const;
  void start();
  /// Stops listening and closes every admin connection.
  void stop();

private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  bool allow_remote_;
  proxy& proxy_;
  logger& log_;
  struct session_state {
    bool reading = true; // waiting for a request
    std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  };
  std::map<boost::asio::ip::tcp::socket*, session_state> sessions_;
  bool stopping_ = false;
};

} // namespace sluice::proxy

#endif
