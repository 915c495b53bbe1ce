// rate_limited_stream and ssl::stream in both orders: under ssl::stream the adapter shapes
// wire bytes (ciphertext and handshakes), over it plaintext. The certificate is made in
// memory for each run (sluice_test/tls.hpp).
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/support.hpp>
#include <sluice_test/tls.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using namespace sluice_test;

namespace {

/// Sends `n` bytes from `from` to `to`; returns the time it took, or a negative on failure.
template <class From, class To>
double send(net::io_context& ctx, From& from, To& to, std::size_t n, unsigned seed,
            clock_type::duration bound = 10s) {
  const std::string out = pattern<std::string>(n, seed);
  std::string in(n, '\0');
  bool wrote = false, read = false;
  auto t0 = clock_type::now(), t1 = t0;
  net::async_write(from, net::buffer(out), [&](error_code ec, std::size_t got) {
    BOOST_TEST(!ec, "write: " << ec.message());
    BOOST_TEST(got == n);
    wrote = true;
  });
  net::async_read(to, net::buffer(in), [&](error_code ec, std::size_t got) {
    BOOST_TEST(!ec, "read: " << ec.message());
    BOOST_TEST(got == n);
    t1 = clock_type::now();
    read = true;
  });
  if (!run_until(
          ctx, [&] { return wrote && read; }, bound))
    return -1;
  BOOST_TEST((in == out));
  return seconds(t1 - t0);
}

} // namespace

BOOST_AUTO_TEST_CASE(under_ssl_stream_the_adapter_counts_wire_bytes) {
  net::io_context ctx;
  auto cctx = client_context();
  auto sctx = server_context();
  auto [c, s] = tcp_pair(ctx);
  ssl::stream<sluice::rate_limited_stream<tcp::socket>> client(std::move(c), cctx);
  ssl::stream<tcp::socket> server(std::move(s), sctx);
  sluice::rate_limit_group counter(ctx.get_executor(), sluice::token_bucket_config{});
  client.next_layer().join(counter);
  handshake(ctx, client, server);
  auto hs = counter.totals();
  BOOST_TEST_MESSAGE("handshake: " << hs.written << " bytes out, " << hs.read << " in");
  BOOST_TEST(hs.written > 0u);
  BOOST_TEST(hs.read > 500u); // the certificate came in
  counter.reset_totals();
  BOOST_TEST(send(ctx, client, server, 10000, 1) >= 0);
  BOOST_TEST(send(ctx, server, client, 12000, 2) >= 0);
  auto t = counter.totals();
  BOOST_TEST(t.written > 10000u); // ciphertext: records carry headers and tags
  BOOST_TEST(t.written < 11000u);
  BOOST_TEST(t.read > 12000u);
  BOOST_TEST(t.read < 13000u);
}

BOOST_AUTO_TEST_CASE(over_ssl_stream_the_adapter_counts_plaintext) {
  net::io_context ctx;
  auto cctx = client_context();
  auto sctx = server_context();
  auto [c, s] = tcp_pair(ctx);
  sluice::rate_limited_stream<ssl::stream<tcp::socket>> client(std::move(c), cctx);
  ssl::stream<tcp::socket> server(std::move(s), sctx);
  static_assert(
      std::is_same_v<decltype(client)::lowest_layer_type, tcp::socket::lowest_layer_type>);
  sluice::rate_limit_group counter(ctx.get_executor(), sluice::token_bucket_config{});
  client.join(counter);
  handshake(ctx, client.next_layer(), server);
  BOOST_TEST(counter.totals().written == 0u); // the handshake is below the adapter
  BOOST_TEST(send(ctx, client, server, 10000, 3) >= 0);
  BOOST_TEST(send(ctx, server, client, 12000, 4) >= 0);
  BOOST_TEST(counter.totals().written == 10000u);
  BOOST_TEST(counter.totals().read == 12000u);

  // And it shapes them: 30,000 at 50 KB/s with a burst of one 100 ms tick.
  client.set_rate_limit(write_limit(5000, 5000, 100ms));
  double took = send(ctx, client, server, 30000, 5);
  BOOST_TEST_MESSAGE("30 KB of plaintext at 50 KB/s: " << took << " s");
  BOOST_TEST(took >= 0.48); // (30,000 - 5000) / 50,000
  BOOST_TEST(took <= 1.3);
}

BOOST_AUTO_TEST_CASE(write_limit_under_ssl_stream_shapes_the_ciphertext) {
  net::io_context ctx;
  auto cctx = client_context();
  auto sctx = server_context();
  auto [c, s] = tcp_pair(ctx);
  ssl::stream<sluice::rate_limited_stream<tcp::socket>> client(std::move(c), cctx);
  ssl::stream<tcp::socket> server(std::move(s), sctx);
  sluice::rate_limit_group counter(ctx.get_executor(), sluice::token_bucket_config{});
  client.next_layer().join(counter);
  handshake(ctx, client, server);
  counter.reset_totals();
  client.next_layer().set_rate_limit(write_limit(5000, 5000, 100ms)); // 50 KB/s
  const std::size_t plain = 100 * 1024;
  double took = send(ctx, client, server, plain, 6, 8s);
  const auto wire = counter.totals().written;
  BOOST_TEST(wire > plain);
  // The ciphertext, less the one-tick burst, at 50,000 bytes/s.
  const double needed = (static_cast<double>(wire) - 5000) / 50000;
  BOOST_TEST_MESSAGE("100 KiB of plaintext, " << wire << " bytes on the wire, took " << took
                                              << " s, needs " << needed << " s");
  BOOST_TEST(took >= 1.8);
  BOOST_TEST(took >= needed - 0.02);
  BOOST_TEST(took <= needed * 1.3 + 0.2);
}

BOOST_AUTO_TEST_CASE(ssl_stream_over_rate_limited_pipes) {
  net::io_context ctx;
  auto cctx = client_context();
  auto sctx = server_context();
  auto ends = sluice::make_pipe(ctx);
  using layer = sluice::rate_limited_stream<sluice::pipe>;
  ssl::stream<layer> client(std::move(ends.first), cctx);
  ssl::stream<layer> server(std::move(ends.second), sctx);
  static_assert(std::is_same_v<ssl::stream<layer>::lowest_layer_type, sluice::pipe>);
  // 200 KB/s each way, both ends; and a group over both.
  sluice::token_bucket_config limit;
  limit.read_rate = limit.read_burst = limit.write_rate = limit.write_burst = 20000;
  limit.tick = 100ms;
  client.next_layer().set_rate_limit(limit);
  server.next_layer().set_rate_limit(limit);
  sluice::rate_limit_group group(ctx.get_executor(), limit);
  client.next_layer().join(group);
  server.next_layer().join(group);
  handshake(ctx, client, server);
  BOOST_TEST(send(ctx, client, server, 20000, 7) >= 0);
  BOOST_TEST(send(ctx, server, client, 30000, 8) >= 0);
  auto t = group.totals();
  BOOST_TEST(t.written == t.read); // every byte written on one end is read on the other
  BOOST_TEST(t.written > 50000u);

  // Both ends close the session cleanly through the adapters.
  bool c = false, s = false;
  client.async_shutdown([&](error_code ec) {
    BOOST_TEST(!ec, "client shutdown: " << ec.message());
    c = true;
  });
  server.async_shutdown([&](error_code ec) {
    BOOST_TEST(!ec, "server shutdown: " << ec.message());
    s = true;
  });
  BOOST_TEST(run_until(ctx, [&] { return c && s; }));
}
