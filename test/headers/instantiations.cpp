// The templates of the public headers, instantiated the ways users instantiate them, for
// header_check (test/cmake/header_check.cmake): a header compiled alone checks only the code
// that does not depend on a template argument, and the warnings that matter to users are
// in the bodies their code instantiates. Compiled, never run.
#include <sluice/filters/zlib.hpp>
#include <sluice/sluice.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstddef>

namespace net = boost::asio;
using net::ip::tcp;

namespace {

std::array<char, 64> storage{};
auto callback = [](boost::system::error_code, std::size_t) {};

// Every stream: both directions, with a callback, deferred and in a coroutine,
// through the free functions that compose them.
template <class Stream>
net::awaitable<void> transfer(Stream& s) {
  net::async_read(s, net::buffer(storage), callback);
  net::async_write(s, net::buffer(storage), callback);
  s.async_read_some(net::buffer(storage), net::deferred)(callback);
  co_await net::async_read(s, net::buffer(storage), net::use_awaitable);
  auto [ec, n] =
      co_await s.async_read_some(net::buffer(storage), net::as_tuple(net::use_awaitable));
  (void)ec, (void)n;
  co_await s.async_write_some(net::buffer(storage), net::use_awaitable);
}

} // namespace

void instantiate_all(net::io_context& ctx, tcp::socket socket, net::ssl::context& tls) {
  auto [a, b] = sluice::make_pipe(ctx);
  auto strand = net::make_strand(ctx);
  auto [sa, sb] = sluice::make_pipe(strand, strand, sluice::pipe_options{.capacity = 0});
  (void)transfer(a);
  (void)transfer(sa);
  a.flush(sluice::flush_mode::finished);

  sluice::rate_limit_group group(ctx, sluice::token_bucket_config{});
  sluice::rate_limited_stream<tcp::socket> shaped(std::move(socket));
  shaped.set_rate_limit({.read_rate = 10, .read_burst = 20});
  shaped.join(group);
  shaped.read_some(net::buffer(storage));
  shaped.write_some(net::buffer(storage));
  (void)transfer(shaped);
  sluice::rate_limited_stream<sluice::pipe> shaped_pipe(std::move(b));
  (void)transfer(shaped_pipe);
  sluice::rate_limited_stream<decltype(sb)&> shaped_ref(sb);
  (void)transfer(shaped_ref);

  net::ssl::stream<sluice::rate_limited_stream<tcp::socket>> tls_over(ctx, tls);
  (void)transfer(tls_over);
  sluice::rate_limited_stream<net::ssl::stream<tcp::socket>> shaped_tls(ctx, tls);
  (void)transfer(shaped_tls);

  sluice::filtered_stream<decltype(sa), sluice::zlib::inflate_filter, sluice::zlib::deflate_filter>
      zipped(std::move(sa));
  (void)transfer(zipped);
  zipped.async_flush(sluice::flush_mode::flush, [](boost::system::error_code) {});
  sluice::filtered_stream<sluice::rate_limited_stream<tcp::socket>&, sluice::pass_through_filter,
                          sluice::pass_through_filter>
      passed(shaped);
  (void)transfer(passed);
}
