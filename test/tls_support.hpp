// What the TLS suites share: handshaking both ends of a connection at once.
#ifndef SLUICE_TEST_TLS_SUPPORT_HPP
#define SLUICE_TEST_TLS_SUPPORT_HPP

#include "support.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/test/unit_test.hpp>

namespace sluice_test {

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
