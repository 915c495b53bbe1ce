// Beast websockets over shaped TCP (the shaping checked on virtual time) and over TLS over
// shaped TCP.
#include "websocket_echo.hpp"

using namespace websocket_echo;

BOOST_AUTO_TEST_SUITE(websocket_shaped)

BOOST_AUTO_TEST_CASE(echo_over_shaped_tcp_is_shaped_on_virtual_time) {
  shaped_connection conn;
  auto& [ctx, clock, sockets, client, server_ws, server] = conn;
  conn.open_shaped();
  server_ws.auto_fragment(false); // the echo is one frame

  const auto message = pattern<std::string>(10000, 2);
  client.binary(true);
  outcome written;
  client.async_write(net::buffer(message), record(written));
  // The echo is read as it comes, to see how much of it the wire has carried.
  std::string got;
  std::string chunk(64 * 1024, '\0');
  outcome done;
  std::function<void()> read_more = [&] {
    client.async_read_some(net::buffer(chunk), [&](beast::error_code ec, std::size_t n) {
      got.append(chunk.data(), n);
      if (ec || client.is_message_done())
        return record(done)(ec);
      read_more();
    });
  };
  read_more();
  // The frame is a 4-byte header and the message; the wire carries 1000 bytes per tick.
  constexpr std::size_t header = 4;
  for (std::size_t ticks = 0; !done.done(); ++ticks) {
    BOOST_TEST_REQUIRE(ticks <= 10u, "the echo took more than the 10 ticks it needs");
    const std::size_t due = std::min(message.size(), 1000 * (ticks + 1) - header);
    BOOST_TEST_REQUIRE(run_until(ctx, [&] { return got.size() >= due || done.done(); }),
                       "after " << ticks << " ticks: " << got.size() << " of " << due);
    BOOST_TEST_REQUIRE(got.size() == due, "after " << ticks << " ticks");
    if (!done.done())
      clock.advance(100ms);
  }
  BOOST_TEST(!done.ec);
  BOOST_TEST((got == message));
  BOOST_TEST(written.done());

  // The close: the server's reply is shaped too.
  close(ctx, client, server, &clock);
  BOOST_TEST(!client.next_layer().next_layer().is_open()); // torn down
  BOOST_TEST(!server_ws.next_layer().next_layer().is_open());
}

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
