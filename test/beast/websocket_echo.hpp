// What the websocket suites share: an echo server, the handshake, an echo and the close
// handshake that must complete on both sides, and a websocket over shaped TCP.
#ifndef SLUICE_TEST_BEAST_WEBSOCKET_ECHO_HPP
#define SLUICE_TEST_BEAST_WEBSOCKET_ECHO_HPP

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

namespace websocket_echo {

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

} // namespace websocket_echo

#endif
