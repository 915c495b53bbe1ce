// Beast websockets over pipes (<sluice/beast.hpp>): an echo and a close handshake that
// completes on both sides, over a pipe pair and over filtered pipes; the pipe's teardown;
// a peer that vanishes in the middle of the close. (The suites are split by layer, one
// translation unit each: websocket instantiations are heavy to compile under sanitizers.)
#include "websocket_echo.hpp"

using namespace websocket_echo;

BOOST_AUTO_TEST_SUITE(websocket_pipe)

BOOST_AUTO_TEST_CASE(echo_over_a_pipe_pair) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  ws::stream<sluice::pipe> client(std::move(a));
  ws::stream<sluice::pipe> server_ws(std::move(b));
  echo_server<ws::stream<sluice::pipe>> server{server_ws};
  open(ctx, client, server);
  // Larger than the pipe's capacity, so that backpressure is part of it.
  const auto message = pattern<std::string>(200 * 1024, 1);
  BOOST_TEST((echo(ctx, client, message) == message));
  BOOST_TEST((echo(ctx, client, "short") == "short"));
  close(ctx, client, server);
  // The teardown closed both ends, as a socket's does.
  BOOST_TEST(!client.next_layer().is_open());
  BOOST_TEST(!server_ws.next_layer().is_open());
}

BOOST_AUTO_TEST_CASE(echo_over_filtered_pipes) {
  // The teardown of a filtered_stream ends its output, then tears the pipe down.
  using filtered = sluice::filtered_stream<sluice::pipe, sluice::pass_through_filter,
                                           sluice::pass_through_filter>;
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  ws::stream<filtered> client(std::move(a));
  ws::stream<filtered> server_ws(std::move(b));
  echo_server<ws::stream<filtered>> server{server_ws};
  open(ctx, client, server);
  const auto message = pattern<std::string>(100 * 1024, 5);
  BOOST_TEST((echo(ctx, client, message) == message));
  close(ctx, client, server);
  BOOST_TEST(!client.next_layer().next_layer().is_open());
  BOOST_TEST(!server_ws.next_layer().next_layer().is_open());
}

BOOST_AUTO_TEST_CASE(a_pipe_teardown_waits_for_the_peer_and_can_be_cancelled) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  // As a server: sending is shut down first, so the peer sees eof while the teardown waits
  // for the peer's.
  outcome torn_down, peer_read;
  net::cancellation_signal cancel;
  sluice::async_teardown(beast::role_type::server, a,
                         net::bind_cancellation_slot(cancel.slot(), record(torn_down)));
  char byte = 0;
  b.async_read_some(net::buffer(&byte, 1), record(peer_read));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return peer_read.done(); }));
  BOOST_TEST((peer_read.ec == net::error::eof), peer_read.ec.message());
  BOOST_TEST(!torn_down.done());
  // A cancelled teardown ends at once and leaves the end open.
  cancel.emit(net::cancellation_type::terminal);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return torn_down.done(); }));
  BOOST_TEST((torn_down.ec == net::error::operation_aborted), torn_down.ec.message());
  BOOST_TEST(a.is_open());
  // Torn down again, it ends with the peer's eof, and closes the end.
  outcome again;
  sluice::async_teardown(beast::role_type::client, a, record(again));
  ctx.restart();
  ctx.poll();
  BOOST_TEST(!again.done());
  b.shutdown(net::socket_base::shutdown_send);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return again.done(); }));
  BOOST_TEST(!again.ec, again.ec.message());
  BOOST_TEST(!a.is_open());
}

BOOST_AUTO_TEST_CASE(a_peer_that_vanishes_mid_close_ends_the_close) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  ws::stream<sluice::pipe> client(std::move(a));
  auto server_ws = std::make_unique<ws::stream<sluice::pipe>>(std::move(b));
  echo_server<ws::stream<sluice::pipe>> server{*server_ws};
  open(ctx, client, server);
  outcome closed;
  client.async_close(ws::close_code::normal, record(closed));
  ctx.restart();
  ctx.poll(); // the close frame is on its way; the server never answers it
  server_ws.reset();
  // The client's read for the answer gets eof, which ends its close (Beast counts that as
  // done); the teardown closed its end.
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return closed.done(); }));
  BOOST_TEST(!client.is_open());
  BOOST_TEST(!client.next_layer().is_open());
}

BOOST_AUTO_TEST_CASE(a_close_that_cannot_be_written_is_ended_by_the_timeout) {
  // A peer that reads nothing more after the handshake, over a pipe with no buffer: the
  // close frame cannot even be written. The websocket's own timeout closes the pipe
  // (beast_close_socket), which ends the write, and the close.
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx, {.capacity = 0});
  ws::stream<sluice::pipe> client(std::move(a));
  ws::stream<sluice::pipe> server(std::move(b));
  outcome accepted, handshake;
  server.async_accept(record(accepted));
  client.async_handshake("localhost", "/", record(handshake));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return accepted.done() && handshake.done(); }));
  BOOST_TEST_REQUIRE(!handshake.ec);
  ws::stream_base::timeout t{};
  t.handshake_timeout = 100ms; // a close handshake's too
  t.idle_timeout = ws::stream_base::none();
  client.set_option(t);
  outcome closed;
  client.async_close(ws::close_code::normal, record(closed));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return closed.done(); }));
  BOOST_TEST((closed.ec == beast::error::timeout), closed.ec.message());
  BOOST_TEST(!client.next_layer().is_open());
  BOOST_TEST(server.next_layer().partner() == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()
