// The code blocks of doc/guide.md, compiled by the test build; the test doc_snippets
// checks that every ```cpp block of the docs appears, line for line, in a compiled source
// (here, or in example/). Each block sits in a function that declares what it uses.
// clang-format off: each block keeps the line breaks the docs show.
#include <sluice/filters/zlib.hpp>
#include <sluice/sluice.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using net::ip::tcp;
using namespace std::chrono_literals;

namespace guide {

void first_pipe(std::string request, std::string reply) {
  auto on_written = [](boost::system::error_code, std::size_t) {};
  auto on_read = [](boost::system::error_code, std::size_t) {};
  net::io_context ctx;
  auto [client, server] = sluice::make_pipe(ctx);
  net::async_write(client, net::buffer(request), on_written);
  net::async_read(server, net::buffer(reply), on_read);
  ctx.run();
}

template <class Stream> net::awaitable<void> line_server(Stream stream);

net::awaitable<void> same_server(net::io_context& ctx, tcp::acceptor& acceptor) {
  auto [client_end, server_end] = sluice::make_pipe(ctx);
  net::co_spawn(ctx, line_server(std::move(server_end)), net::detached);      // a pipe
  net::co_spawn(ctx, line_server(co_await acceptor.async_accept(net::use_awaitable)), net::detached); // TCP
}

net::awaitable<void> shaped_write(tcp::socket socket, std::string data) {
  sluice::rate_limited_stream<tcp::socket> s(std::move(socket));
  s.set_rate_limit({.write_rate = 12800, .write_burst = 12800, .tick = 100ms}); // 128 KB/s
  co_await net::async_write(s, net::buffer(data), net::use_awaitable);
}

void tls_orders(tcp::socket socket, ssl::context& tls) {
  ssl::stream<sluice::rate_limited_stream<tcp::socket>> wire_shaped(std::move(socket), tls);
  sluice::rate_limited_stream<ssl::stream<tcp::socket>> plaintext_shaped(std::move(socket), tls);
}

void group(net::io_context& ctx, std::vector<sluice::rate_limited_stream<tcp::socket>>& streams) {
  sluice::rate_limit_group downloads(ctx, sluice::token_bucket_config::per_second(
                                              sluice::unlimited, 2 << 20)); // 2 MiB/s in all
  for (auto& s : streams)
    s.join(downloads);
}

void nested(tcp::socket socket, sluice::rate_limit_group& client_group,
            sluice::rate_limit_group& total_group) {
  sluice::rate_limited_stream<sluice::rate_limited_stream<tcp::socket>> s(std::move(socket));
  s.join(client_group);              // 50 KiB/s for all of this client's connections
  s.next_layer().join(total_group);  // 100 KiB/s for everyone
}

net::awaitable<void> compressed(tcp::socket socket, std::string text) {
  sluice::filtered_stream<tcp::socket, sluice::pass_through_filter, sluice::zlib::deflate_filter>
      out(std::move(socket));
  co_await net::async_write(out, net::buffer(text), net::use_awaitable);
  co_await out.async_flush(sluice::flush_mode::finished, net::use_awaitable); // the trailer
}

void virtual_time(net::io_context& ctx, sluice::pipe end) {
  sluice::manual_rate_clock clock;
  sluice::rate_limited_stream<sluice::pipe> stream(std::move(end));
  stream.set_clock(clock);
  stream.set_rate_limit({.write_rate = 1000, .write_burst = 1000, .tick = 1s});
  sluice::rate_limit_group group(ctx, sluice::token_bucket_config::per_second(5000, 5000), clock);
  clock.advance(10s); // then run ctx: the waits that are due now complete
}

} // namespace guide
// clang-format on
