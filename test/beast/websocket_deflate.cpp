// A Beast websocket with permessage-deflate over shaped TCP.
#include "websocket_echo.hpp"

using namespace websocket_echo;

BOOST_AUTO_TEST_SUITE(websocket_deflate)

BOOST_AUTO_TEST_CASE(echo_with_permessage_deflate_over_shaped_tcp) {
  shaped_connection conn;
  auto& [ctx, clock, sockets, client, server_ws, server] = conn;
  ws::permessage_deflate deflate;
  deflate.client_enable = true;
  deflate.server_enable = true;
  client.set_option(deflate);
  server_ws.set_option(deflate);
  conn.open_shaped();

  // Text of 16 letters: about half its size once compressed.
  std::string message = pattern<std::string>(64 * 1024, 4);
  for (char& ch : message)
    ch = static_cast<char>('a' + (static_cast<unsigned char>(ch) & 15));
  client.text(true);
  outcome written, read;
  beast::flat_buffer in;
  client.async_write(net::buffer(message), record(written));
  client.async_read(in, record(read));
  int ticks = 0;
  while (!read.done() && ticks < 100) {
    // A writer short of tokens waits for half a tick's worth: below that, it waits.
    run_until(ctx, [&] { return read.done() || server_ws.next_layer().write_limit() < 500; });
    if (!read.done()) {
      clock.advance(100ms);
      ++ticks;
    }
  }
  BOOST_TEST_REQUIRE(read.done());
  BOOST_TEST(!read.ec, read.ec.message());
  BOOST_TEST((beast::buffers_to_string(in.data()) == message));
  // Shaped: the compressed echo needed several ticks' worth; compressed: far fewer than the
  // 65 the raw message would need.
  BOOST_TEST(ticks >= 2);
  BOOST_TEST(ticks < 50);
  close(ctx, client, server, &clock);
}

BOOST_AUTO_TEST_SUITE_END()
