// Beast websockets over shaped TCP, the shaping checked on virtual time.
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

BOOST_AUTO_TEST_SUITE_END()
