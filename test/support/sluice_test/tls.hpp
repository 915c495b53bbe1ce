// What the TLS suites share: one identity made in memory for the run, and handshaking both
// ends of a connection at once.
#ifndef SLUICE_TEST_TLS_HPP
#define SLUICE_TEST_TLS_HPP

#include <sluice_test/support.hpp>

#include <boost/asio/ssl.hpp>
#include <boost/test/unit_test.hpp>

namespace sluice_test {

/// The host name the test certificate is made for.
inline constexpr const char* tls_host = "localhost";

/// A server context presenting the test identity: a key pair and a self-signed certificate
/// for `tls_host`, made in memory once per run (the TLS example's, example/self_signed.hpp).
boost::asio::ssl::context server_context();

/// A client context that trusts the test certificate only, and checks it.
boost::asio::ssl::context client_context();

/// Handshakes both ends (ssl::streams) at once; fails the test unless both succeed.
template <class Client, class Server>
void handshake(boost::asio::io_context& ctx, Client& client, Server& server) {
  namespace ssl = boost::asio::ssl;
  bool c = false, s = false;
  client.async_handshake(ssl::stream_base::client, [&](boost::system::error_code ec) {
    BOOST_TEST(!ec, "client handshake: " << ec.message());
    c = true;
  });
  server.async_handshake(ssl::stream_base::server, [&](boost::system::error_code ec) {
    BOOST_TEST(!ec, "server handshake: " << ec.message());
    s = true;
  });
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return c && s; }));
}

} // namespace sluice_test

#endif
