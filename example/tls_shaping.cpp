// TLS with shaping, in both orders, over loopback TCP:
//
//   ssl::stream<rate_limited_stream<tcp::socket>>   the limit counts wire bytes: records,
//                                                   MACs and the handshake included;
//   rate_limited_stream<ssl::stream<tcp::socket>>   the limit counts plaintext.
//
// The server sends the same 256 KiB through a 128 KiB/s write limit each way; the client
// reports how long it took and what the limit counted.
#include "self_signed.hpp"

#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace net = boost::asio;
namespace ssl = net::ssl;
using net::use_awaitable;
using net::ip::tcp;

constexpr std::size_t payload = 256 * 1024;
const auto limit = sluice::token_bucket_config{
    .write_rate = 12800, .write_burst = 12800, .tick = std::chrono::milliseconds(100)};

using wire_shaped = ssl::stream<sluice::rate_limited_stream<tcp::socket>>;
using plaintext_shaped = sluice::rate_limited_stream<ssl::stream<tcp::socket>>;

// Both orders expose the TLS layer and the limiter; only their nesting differs.
auto& tls_of(wire_shaped& s) {
  return s;
}
auto& tls_of(plaintext_shaped& s) {
  return s.next_layer();
}
auto& limiter_of(wire_shaped& s) {
  return s.next_layer();
}
auto& limiter_of(plaintext_shaped& s) {
  return s;
}

template <class Server>
net::awaitable<void> serve(Server server, sluice::rate_limit_group& counter) {
  limiter_of(server).set_rate_limit(limit);
  limiter_of(server).join(counter); // no limit of its own: it counts
  co_await tls_of(server).async_handshake(ssl::stream_base::server, use_awaitable);
  std::string data(payload, 'x');
  co_await net::async_write(server, net::buffer(data), use_awaitable);
  co_await tls_of(server).async_shutdown(use_awaitable);
}

template <class Server>
net::awaitable<void> run(const char* title, const sluice_example::self_signed& id) {
  auto ex = co_await net::this_coro::executor;
  ssl::context server_tls = id.server_context(), client_tls = id.client_context();
  sluice::rate_limit_group counter(ex, {});
  tcp::acceptor acceptor(ex, {net::ip::address_v4::loopback(), 0});
  ssl::stream<tcp::socket> client(ex, client_tls);
  co_await client.next_layer().async_connect(acceptor.local_endpoint(), use_awaitable);
  Server server(co_await acceptor.async_accept(use_awaitable), server_tls);
  net::co_spawn(ex, serve(std::move(server), counter), net::detached);

  auto start = std::chrono::steady_clock::now();
  co_await client.async_handshake(ssl::stream_base::client, use_awaitable);
  std::string got;
  auto [ec, n] =
      co_await net::async_read(client, net::dynamic_buffer(got), net::as_tuple(use_awaitable));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-48s %zu plaintext bytes in %.2f s; the limit counted %llu bytes ('%s')\n", title,
              n, seconds, static_cast<unsigned long long>(counter.totals().written),
              ec == ssl::error::stream_truncated ? "truncated" : ec.message().c_str());
}

int main() {
  sluice_example::self_signed id;
  net::io_context ctx;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        co_await run<wire_shaped>("ssl::stream<rate_limited_stream<tcp::socket>>", id);
        co_await run<plaintext_shaped>("rate_limited_stream<ssl::stream<tcp::socket>>", id);
      },
      [](std::exception_ptr e) {
        if (e)
          std::rethrow_exception(e);
      });
  ctx.run();
}
