// A Beast websocket over TLS over shaped TCP.
#include "websocket_echo.hpp"

using namespace websocket_echo;

BOOST_AUTO_TEST_SUITE(websocket_tls)

BOOST_AUTO_TEST_CASE(echo_over_tls_over_shaped_tcp) {
  net::io_context ctx;
  auto server_tls = server_context();
  auto client_tls = client_context();
  auto [c, s] = tcp_pair(ctx);
  using wire = ssl::stream<sluice::rate_limited_stream<tcp::socket>>;
  ws::stream<wire> client(std::move(c), client_tls);
  ws::stream<wire> server_ws(std::move(s), server_tls);
  BOOST_TEST_REQUIRE(SSL_set_tlsext_host_name(client.next_layer().native_handle(), tls_host));
  handshake(ctx, client.next_layer(), server_ws.next_layer());
  // The wire under TLS: 20 KB per 100 ms, a tick's worth of burst.
  const sluice::token_bucket_config limit{.read_rate = 20000,
                                          .read_burst = 20000,
                                          .write_rate = 20000,
                                          .write_burst = 20000,
                                          .tick = 100ms};
  server_ws.next_layer().next_layer().set_rate_limit(limit);
  echo_server<ws::stream<wire>> server{server_ws};
  open(ctx, client, server);
  const auto message = pattern<std::string>(60000, 3);
  const auto start = std::chrono::steady_clock::now();
  BOOST_TEST((echo(ctx, client, message) == message));
  // Read and written once each by the server, with TLS records on top: at least 40 KB
  // beyond each bucket, at 200 KB/s. A bucket never lets more through, so never sooner.
  BOOST_TEST(seconds(std::chrono::steady_clock::now() - start) >= 0.2);
  close(ctx, client, server);
}

BOOST_AUTO_TEST_SUITE_END()
