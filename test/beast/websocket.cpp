// Beast websockets over sluice's streams (<sluice/beast.hpp>): an echo and a close handshake
// that completes on both sides, over a pipe pair, over shaped TCP (the shaping checked on
// virtual time), over TLS over shaped TCP, and with permessage-deflate; and a peer that
// vanishes in the middle of the close.
#include <boost/test/unit_test.hpp>

#include <sluice/beast.hpp>
#include <sluice/filtered_stream.hpp>
#include <sluice/pipe.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <sluice_test/completion.hpp>
#include <sluice_test/pattern.hpp>
#include <sluice_test/support.hpp>
#include <sluice_test/tls.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace ws = boost::beast::websocket;
using net::ip::tcp;
using namespace std::chrono_literals;

using namespace sluice_test;

namespace {

/// Echoes every message until the connection ends; `ended` holds how it ended.
template <class Ws>
struct echo_server {
  Ws& ws;
  beast::flat_buffer buffer{};
  outcome ended{};

  void accept() {
    ws.async_accept([this](beast::error_code ec) {
      BOOST_TEST_REQUIRE(!ec, "accept: " << ec.message());
      read();
    });
  }
  void read() {
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        record(ended)(ec);
        return;
      }
      ws.binary(ws.got_binary());
      ws.async_write(buffer.data(), [this](beast::error_code wec, std::size_t) {
        BOOST_TEST_REQUIRE(!wec, "echo: " << wec.message());
        buffer.consume(buffer.size());
        read();
      });
    });
  }
};

/// Handshakes `client` with `server` (which echoes from then on).
template <class Client, class Server>
void open(net::io_context& ctx, Client& client, echo_server<Server>& server) {
  server.accept();
  outcome handshake;
  client.async_handshake("localhost", "/", record(handshake));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return handshake.done(); }));
  BOOST_TEST_REQUIRE(!handshake.ec, "handshake: " << handshake.ec.message());
}

/// Sends `message` and returns its echo.
template <class Client>
std::string echo(net::io_context& ctx, Client& client, const std::string& message) {
  client.binary(true);
  outcome written, read;
  beast::flat_buffer in;
  client.async_write(net::buffer(message), record(written));
  client.async_read(in, record(read));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return written.done() && read.done(); }));
  BOOST_TEST_REQUIRE(!written.ec, "write: " << written.ec.message());
  BOOST_TEST_REQUIRE(!read.ec, "read: " << read.ec.message());
  return beast::buffers_to_string(in.data());
}

/// The client closes; the close handshake must complete on both sides. With a `clock`, the
/// server's writes are shaped on it: it moves a tick at a time while the close goes on.
template <class Client, class Server>
void close(net::io_context& ctx, Client& client, echo_server<Server>& server,
           sluice::manual_rate_clock* clock = nullptr) {
  outcome closed;
  client.async_close(ws::close_code::normal, record(closed));
  auto both = [&] { return closed.done() && server.ended.done(); };
  for (int ticks = 0; clock && ticks < 5 && !both(); ++ticks) {
    run_until(ctx, both, 100ms);
    clock->advance(100ms);
  }
  BOOST_TEST_REQUIRE(run_until(ctx, both));
  BOOST_TEST(!closed.ec, "close: " << closed.ec.message());
  BOOST_TEST((server.ended.ec == ws::error::closed), server.ended.ec.message());
  BOOST_TEST(!client.is_open());
  BOOST_TEST(!server.ws.is_open());
}

/// A websocket over shaped TCP, the server's writes shaped on a manual clock once open.
struct shaped_connection {
  using shaped = sluice::rate_limited_stream<tcp::socket>;
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  std::pair<tcp::socket, tcp::socket> sockets = tcp_pair(ctx);
  ws::stream<shaped> client{std::move(sockets.first)};
  ws::stream<shaped> server_ws{std::move(sockets.second)};
  echo_server<ws::stream<shaped>> server{server_ws};

  /// Handshakes, then limits the server's writes to 1000 bytes per 100 ms, from a fresh
  /// bucket of one tick's worth.
  void open_shaped() {
    open(ctx, client, server);
    server_ws.next_layer().set_clock(clock);
    server_ws.next_layer().set_rate_limit({.write_rate = 1000, .write_burst = 1000, .tick = 100ms});
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(websocket)

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
