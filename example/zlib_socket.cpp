// zlib over a TCP socket: the server compresses what it sends with a deflate filter, the
// client decompresses with an inflate filter. A rate_limit_group under the filter (here
// with no limit) counts the bytes that really crossed the wire.
#include <sluice/filtered_stream.hpp>
#include <sluice/filters/zlib.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <cstdio>
#include <string>

namespace net = boost::asio;
using net::use_awaitable;
using net::ip::tcp;

using counted_socket = sluice::rate_limited_stream<tcp::socket>;
using compressing = sluice::filtered_stream<counted_socket, sluice::pass_through_filter,
                                            sluice::zlib::deflate_filter>;
using decompressing =
    sluice::filtered_stream<tcp::socket, sluice::zlib::inflate_filter, sluice::pass_through_filter>;

std::string make_report() {
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += "line " + std::to_string(i) + ": the quick brown fox jumps over the lazy dog\n";
  return text;
}

net::awaitable<void> serve(compressing stream, std::string text) {
  co_await net::async_write(stream, net::buffer(text), use_awaitable);
  co_await stream.async_flush(sluice::flush_mode::finished, use_awaitable); // the trailer
  stream.next_layer().next_layer().shutdown(tcp::socket::shutdown_send);
}

net::awaitable<void> fetch(decompressing stream, std::size_t expected) {
  std::string received;
  auto [ec, n] =
      co_await net::async_read(stream, net::dynamic_buffer(received), net::as_tuple(use_awaitable));
  std::printf("client: %zu bytes decompressed, then '%s'; %s\n", n, ec.message().c_str(),
              n == expected ? "all there" : "MISSING BYTES");
}

int main() {
  net::io_context ctx;
  sluice::rate_limit_group wire(ctx, {}); // no limit: it only counts
  tcp::acceptor acceptor(ctx, {net::ip::address_v4::loopback(), 0});
  tcp::socket client(ctx);
  client.connect(acceptor.local_endpoint());

  compressing server(acceptor.accept());
  server.next_layer().join(wire);
  std::string text = make_report();
  net::co_spawn(ctx, serve(std::move(server), text), net::detached);
  net::co_spawn(ctx, fetch(decompressing(std::move(client)), text.size()), net::detached);
  ctx.run();
  std::printf("server: %zu bytes of text went out as %llu bytes on the wire\n", text.size(),
              static_cast<unsigned long long>(wire.totals().written));
}
