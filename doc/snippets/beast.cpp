// The code blocks of doc/beast.md, compiled by the test build (see guide.cpp).
// clang-format off: each block keeps the line breaks the docs show.
#include <sluice/beast.hpp>
#include <sluice/sluice.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <chrono>
#include <string>

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using net::ip::tcp;
using namespace std::chrono_literals;

namespace beast_doc {

net::awaitable<void> shaped_http(tcp::socket socket, http::response<http::string_body> res) {
  sluice::rate_limited_stream<beast::tcp_stream> s(std::move(socket));
  s.set_rate_limit(sluice::token_bucket_config::per_second(sluice::unlimited, 100 << 10));
  s.expires_after(30s); // the waits for tokens and the I/O: one expiry for the whole write
  co_await http::async_write(s, res, net::use_awaitable); // beast::error::timeout after 30 s
}

net::awaitable<void> shaped_websocket(tcp::socket socket) {
  websocket::stream<sluice::rate_limited_stream<tcp::socket>> ws(std::move(socket));
  ws.next_layer().set_rate_limit(sluice::token_bucket_config::per_second(64 << 10, 64 << 10));
  co_await ws.async_accept(net::use_awaitable);
  // ... read and write messages ...
  co_await ws.async_close(websocket::close_code::normal, net::use_awaitable);
}

void websocket_layers(tcp::socket socket, ssl::context& tls, net::io_context& ctx) {
  websocket::stream<ssl::stream<sluice::rate_limited_stream<tcp::socket>>> wss(std::move(socket), tls);
  auto [client_end, server_end] = sluice::make_pipe(ctx);
  websocket::stream<sluice::pipe> client(std::move(client_end)), server(std::move(server_end));
}

void shaped_timed_websocket(tcp::socket socket) {
  websocket::stream<sluice::rate_limited_stream<beast::tcp_stream>> ws(std::move(socket));
  ws.next_layer().expires_after(30s); // the handshake, waits for tokens included
  // ... the handshake ...
  ws.next_layer().expires_never();    // then the websocket's own timeouts
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
}

net::awaitable<void> timed_by_a_timer(sluice::rate_limited_stream<tcp::socket>& s,
                                      http::response<http::string_body>& res) {
  using namespace net::experimental::awaitable_operators;
  net::steady_timer timer(s.get_executor(), 30s);
  auto done = co_await (http::async_write(s, res, net::use_awaitable) ||
                        timer.async_wait(net::use_awaitable));
  if (done.index() == 1) // the timer won: the write was cancelled, wherever it was
    s.next_layer().close();
}

} // namespace beast_doc
