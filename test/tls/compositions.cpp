// TLS composed with each of sluice's layers, in both orders, each case carrying 1,000,000
// patterned bytes each way at once (checked byte for byte) after a handshake, and ending
// with a clean TLS shutdown on both ends:
//   ssl::stream<rate_limited_stream<tcp::socket>>   wire bytes shaped, the limits binding
//   rate_limited_stream<ssl::stream<tcp::socket>>   plaintext counted exactly
//   ssl::stream<pipe>
//   filtered_stream<ssl::stream<pipe | tcp::socket>, inflate, deflate>   zlib inside TLS
// The certificate is made in memory for each run (sluice_test/tls.hpp).
#include <boost/test/unit_test.hpp>

#include <sluice/filtered_stream.hpp>
#include <sluice/filters/zlib.hpp>
#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/support.hpp>
#include <sluice_test/tls.hpp>

#include <zlib.h>

#if defined(__linux__)
#include <linux/sockios.h>
#include <sys/ioctl.h>
#endif

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using namespace sluice_test;

namespace {

constexpr std::size_t megabyte = 1'000'000; // each way, in every case

/// Where `got` first differs from `want` (their size if nowhere).
std::size_t first_difference(const std::vector<std::uint8_t>& want,
                             const std::vector<std::uint8_t>& got) {
  if (got.size() != want.size())
    return std::min(got.size(), want.size());
  return static_cast<std::size_t>(std::mismatch(want.begin(), want.end(), got.begin()).first -
                                  want.begin());
}

/// Runs every handler that is ready, and those they make ready, until none is; the reactor
/// is polled without blocking. With pipes this settles all in-process I/O.
void run_ready(net::io_context& ctx) {
  do
    ctx.restart();
  while (ctx.poll() > 0);
}

/// Bytes `s` has sent that the peer's kernel has not acknowledged yet (SIOCOUTQ).
int unacknowledged(tcp::socket::lowest_layer_type& s) {
#if defined(__linux__)
  int n = 0;
  return ::ioctl(s.native_handle(), SIOCOUTQ, &n) == 0 ? n : -1;
#else
  (void)s;
  return 0; // elsewhere the test relies on loopback delivering at once
#endif
}

/// Connected loopback sockets, Nagle off: a short last segment goes out when written, not
/// once the peer's (maybe delayed) ACK comes.
std::pair<tcp::socket, tcp::socket> nagle_off_tcp_pair(net::io_context& ctx) {
  tcp::acceptor acceptor(ctx, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  tcp::socket client(ctx), server(ctx);
  client.connect(acceptor.local_endpoint());
  acceptor.accept(server);
  client.set_option(tcp::no_delay(true));
  server.set_option(tcp::no_delay(true));
  return {std::move(client), std::move(server)};
}

/// Equal read and write limits: `per_tick` bytes each tick, a burst of one tick.
sluice::token_bucket_config limit(std::uint64_t per_tick, std::chrono::nanoseconds tick) {
  sluice::token_bucket_config cfg;
  cfg.read_rate = cfg.read_burst = cfg.write_rate = cfg.write_burst = per_tick;
  cfg.tick = tick;
  return cfg;
}

/// Handshakes both ends at once, and checks the client verified the server's certificate.
template <class Client, class Server>
void verified_handshake(net::io_context& ctx, Client& client, Server& server) {
  handshake(ctx, client, server);
  BOOST_TEST(SSL_get_verify_result(client.native_handle()) == X509_V_OK);
}

/// Writes `data` on `s`; a filtered stream then ends its output (the zlib trailer).
template <class Stream>
void send(Stream& s, const std::vector<std::uint8_t>& data, const char* what, int& done) {
  net::async_write(s, net::buffer(data), [&, what](error_code ec, std::size_t n) {
    BOOST_TEST(!ec, what << " write: " << ec.message());
    BOOST_TEST(n == megabyte, what << " wrote " << n);
    if constexpr (requires { s.async_flush(sluice::flush_mode::finished, [](error_code) {}); }) {
      if (!ec) {
        s.async_flush(sluice::flush_mode::finished, [&done, what](error_code ec) {
          BOOST_TEST(!ec, what << " flush(finished): " << ec.message());
          ++done;
        });
        return;
      }
    }
    ++done;
  });
}

/// Reads exactly `into.size()` bytes from `s`.
template <class Stream>
void receive(Stream& s, std::vector<std::uint8_t>& into, const char* what, int& done) {
  net::async_read(s, net::buffer(into), [&done, what](error_code ec, std::size_t n) {
    BOOST_TEST(!ec, what << " read: " << ec.message());
    BOOST_TEST(n == megabyte, what << " read " << n);
    ++done;
  });
}

/// 1,000,000 bytes a→b and 1,000,000 b→a, all at once; returns the seconds it took.
template <class A, class B>
double exchange(net::io_context& ctx, A& a, B& b) {
  const auto a_to_b = compressible_pattern(megabyte, 1), b_to_a = compressible_pattern(megabyte, 2);
  std::vector<std::uint8_t> at_b(megabyte), at_a(megabyte);
  int done = 0;
  const auto t0 = clock_type::now();
  send(a, a_to_b, "a->b", done);
  send(b, b_to_a, "b->a", done);
  receive(b, at_b, "a->b", done);
  receive(a, at_a, "b->a", done);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return done == 4; }));
  const double took = seconds(clock_type::now() - t0);
  BOOST_TEST(first_difference(a_to_b, at_b) == megabyte); // the index of a bad byte if any
  BOOST_TEST(first_difference(b_to_a, at_a) == megabyte);
  return took;
}

/// async_shutdown on both ssl::streams at once: each sends close_notify and waits for the
/// peer's.
template <class A, class B>
void shutdown_both(net::io_context& ctx, A& a, B& b) {
  bool a_done = false, b_done = false;
  a.async_shutdown([&](error_code ec) {
    BOOST_TEST(!ec, "a shutdown: " << ec.message());
    a_done = true;
  });
  b.async_shutdown([&](error_code ec) {
    BOOST_TEST(!ec, "b shutdown: " << ec.message());
    b_done = true;
  });
  BOOST_TEST(run_until(ctx, [&] { return a_done && b_done; }));
}

/// After the peer's close_notify, a read reports eof and nothing read.
template <class Stream>
void expect_eof(net::io_context& ctx, Stream& s, const char* what) {
  std::array<char, 16> spare;
  error_code got;
  std::size_t n = 99;
  bool done = false;
  s.async_read_some(net::buffer(spare), [&](error_code ec, std::size_t k) {
    got = ec;
    n = k;
    done = true;
  });
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return done; }));
  BOOST_TEST(got == net::error::eof, what << ": " << got.message());
  BOOST_TEST(n == 0u);
}

} // namespace

BOOST_AUTO_TEST_CASE(pattern_compresses_but_not_trivially) {
  const auto data = compressible_pattern(megabyte, 1);
  uLongf size = compressBound(static_cast<uLong>(data.size()));
  std::vector<Bytef> packed(size);
  BOOST_TEST_REQUIRE(compress(packed.data(), &size, data.data(), static_cast<uLong>(data.size())) ==
                     Z_OK);
  const double ratio = static_cast<double>(size) / static_cast<double>(data.size());
  BOOST_TEST_MESSAGE("zlib packs the pattern to " << ratio * 100 << " %");
  BOOST_TEST(ratio > 0.2);
  BOOST_TEST(ratio < 0.8);
  // Seeds differ at once.
  BOOST_TEST(first_difference(data, compressible_pattern(megabyte, 2)) < 16u);
}

// Under ssl::stream the adapters shape ciphertext. Each end's own limit is 20 MB/s each
// way, and both share a group of 30 MB/s each way, which binds: the ~2,003,000 bytes of
// ciphertext written cannot pass in less than (written - one tick's burst) / 30 MB/s, and
// each end's 1,000,000 not in less than (1,000,000 - 200,000) / 20 MB/s.
BOOST_AUTO_TEST_CASE(ssl_stream_over_rate_limited_tcp) {
  net::io_context ctx;
  auto cctx = client_context();
  auto sctx = server_context();
  auto [c, s] = nagle_off_tcp_pair(ctx);
  using layer = sluice::rate_limited_stream<tcp::socket>;
  ssl::stream<layer> client(std::move(c), cctx);
  ssl::stream<layer> server(std::move(s), sctx);
  constexpr std::uint64_t own_per_tick = 200'000, group_per_tick = 300'000; // per 10 ms
  client.next_layer().set_rate_limit(limit(own_per_tick, 10ms));
  server.next_layer().set_rate_limit(limit(own_per_tick, 10ms));
  sluice::rate_limit_group group(ctx.get_executor(), limit(group_per_tick, 10ms));
  client.next_layer().join(group);
  server.next_layer().join(group);
  BOOST_TEST(group.size() == 2u);

  verified_handshake(ctx, client, server);
  group.reset_totals();
  const double took = exchange(ctx, client, server);
  const auto t = group.totals();
  BOOST_TEST(t.written >= 2 * megabyte); // records add headers and tags
  BOOST_TEST(t.written < 2 * megabyte + 100'000);
  BOOST_TEST(t.read >= 2 * megabyte);
  // Bytes in [t0, t1] <= burst + rate * (t1 - t0): the least time the group allows.
  const double group_needs = (static_cast<double>(t.written) - group_per_tick) / 30e6;
  const double own_needs = (static_cast<double>(megabyte) - own_per_tick) / 20e6;
  BOOST_TEST_MESSAGE("ssl::stream<rate_limited_stream<tcp>>: " << t.written << " bytes written in "
                                                               << took << " s; the group needs "
                                                               << group_needs << " s");
  BOOST_TEST(took >= group_needs - 0.001);
  BOOST_TEST(took >= own_needs - 0.001);

  shutdown_both(ctx, client, server);
  expect_eof(ctx, client, "client after shutdown");
  expect_eof(ctx, server, "server after shutdown");
}

// Over ssl::stream the adapters count plaintext: each end's group sees exactly 1,000,000
// bytes each way, and its 20 MB/s limit binds.
BOOST_AUTO_TEST_CASE(rate_limited_ssl_stream_over_tcp) {
  net::io_context ctx;
  auto cctx = client_context();
  auto sctx = server_context();
  auto [c, s] = nagle_off_tcp_pair(ctx);
  using stream = sluice::rate_limited_stream<ssl::stream<tcp::socket>>;
  stream client(std::move(c), cctx);
  stream server(std::move(s), sctx);
  static_assert(std::is_same_v<stream::lowest_layer_type, tcp::socket::lowest_layer_type>);
  constexpr std::uint64_t per_tick = 200'000; // per 10 ms: 20 MB/s
  sluice::rate_limit_group client_group(ctx.get_executor(), limit(per_tick, 10ms));
  sluice::rate_limit_group server_group(ctx.get_executor(), limit(per_tick, 10ms));
  client.join(client_group);
  server.join(server_group);

  verified_handshake(ctx, client.next_layer(), server.next_layer());
  BOOST_TEST(client_group.totals().written == 0u); // the handshake is below the adapters
  BOOST_TEST(server_group.totals().read == 0u);
  const double took = exchange(ctx, client, server);
  BOOST_TEST(client_group.totals().written == megabyte);
  BOOST_TEST(client_group.totals().read == megabyte);
  BOOST_TEST(server_group.totals().written == megabyte);
  BOOST_TEST(server_group.totals().read == megabyte);
  const double needs = (static_cast<double>(megabyte) - per_tick) / 20e6;
  BOOST_TEST_MESSAGE("rate_limited_stream<ssl::stream<tcp>>: " << took << " s, needs " << needs);
  BOOST_TEST(took >= needs - 0.001);

  shutdown_both(ctx, client.next_layer(), server.next_layer());
  expect_eof(ctx, client, "client after shutdown");
  expect_eof(ctx, server, "server after shutdown");
  BOOST_TEST(client_group.totals().read == megabyte); // an eof moves nothing
}

BOOST_AUTO_TEST_CASE(ssl_stream_over_pipe) {
  net::io_context ctx;
  auto cctx = client_context();
  auto sctx = server_context();
  auto [a, b] = sluice::make_pipe(ctx);
  ssl::stream<sluice::pipe> client(std::move(a), cctx);
  ssl::stream<sluice::pipe> server(std::move(b), sctx);
  BOOST_TEST(client.next_layer().partner() == &server.next_layer());
  verified_handshake(ctx, client, server);
  const double took = exchange(ctx, client, server);
  BOOST_TEST_MESSAGE("ssl::stream<pipe>: " << took << " s");
  shutdown_both(ctx, client, server);
  expect_eof(ctx, client, "client after shutdown");
  expect_eof(ctx, server, "server after shutdown");
  BOOST_TEST(client.next_layer().partner() == &server.next_layer()); // TLS closed, pipe not
}

namespace {

template <class Lower>
using zlib_over_tls = sluice::filtered_stream<ssl::stream<Lower>, sluice::zlib::inflate_filter,
                                              sluice::zlib::deflate_filter>;

/// zlib inside TLS, both ends: 1,000,000 bytes each way, each writer ending its output with
/// flush(finished); then each reader gets eof once the peer has closed TLS (close_notify),
/// with the zlib trailer checked on the way.
///
/// TLS closes in both directions at once, so the end that shuts down first (b) must have
/// taken in all the peer sent, trailer included: OpenSSL's SSL_shutdown fails ("application
/// data after close notify") on data still unread. filtered_stream gives no sign that its
/// input filter has reached the end of its stream, so b's reader waits for more while
/// `settle` lets everything in flight arrive; it is then cancelled (nothing is lost: the
/// trailer has been taken in) because Asio 1.81's ssl::stream completes an async_shutdown
/// that overlapped a read on the same stream with operation_aborted. a's reader sees b's
/// close_notify after all of b's data, so it needs no such care; a then shuts down too.
template <class Lower, class Settle>
void zlib_over_tls_each_way(net::io_context& ctx, Lower lower_a, Lower lower_b, Settle settle) {
  auto cctx = client_context();
  auto sctx = server_context();
  // filtered_stream builds its next layer from one argument; ssl::stream needs two.
  zlib_over_tls<Lower> a(ssl::stream<Lower>(std::move(lower_a), cctx));
  zlib_over_tls<Lower> b(ssl::stream<Lower>(std::move(lower_b), sctx));
  verified_handshake(ctx, a.next_layer(), b.next_layer());
  const double took = exchange(ctx, a, b);
  BOOST_TEST_MESSAGE("zlib over TLS: " << took << " s");

  struct outcome {
    std::array<char, 16> spare;
    error_code ec;
    std::size_t n = 99;
    bool done = false;
  } a_end, b_wait;
  bool a_shut = false, b_shut = false;
  a.async_read_some(net::buffer(a_end.spare), [&](error_code ec, std::size_t n) {
    a_end.ec = ec;
    a_end.n = n;
    a_end.done = true;
    a.next_layer().async_shutdown([&](error_code ec) { // the second close
      BOOST_TEST(!ec, "a shutdown: " << ec.message());
      a_shut = true;
    });
  });
  net::cancellation_signal stop_b;
  b.async_read_some(net::buffer(b_wait.spare),
                    net::bind_cancellation_slot(stop_b.slot(), [&](error_code ec, std::size_t n) {
                      b_wait.ec = ec;
                      b_wait.n = n;
                      b_wait.done = true;
                    }));
  settle(a, b);
  BOOST_TEST(!a_end.done, "a's reader ended early: " << a_end.ec.message()); // no close yet
  BOOST_TEST(!b_wait.done, "b's reader ended early: " << b_wait.ec.message());
  stop_b.emit(net::cancellation_type::terminal);
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return b_wait.done; }));
  BOOST_TEST(b_wait.ec == net::error::operation_aborted, "b: " << b_wait.ec.message());
  BOOST_TEST(b_wait.n == 0u);

  b.next_layer().async_shutdown([&](error_code ec) { // the first close
    BOOST_TEST(!ec, "b shutdown: " << ec.message());
    b_shut = true;
  });
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return a_end.done && a_shut && b_shut; }));
  BOOST_TEST(a_end.ec == net::error::eof, "a: " << a_end.ec.message());
  BOOST_TEST(a_end.n == 0u);
  expect_eof(ctx, b, "b"); // its input filter saw the whole stream, trailer and all
  expect_eof(ctx, a, "a again");
}

} // namespace

BOOST_AUTO_TEST_CASE(zlib_filtered_stream_over_ssl_stream_over_pipe) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  // In process, all that was sent has been taken in once no handler is ready.
  zlib_over_tls_each_way(ctx, std::move(a), std::move(b), [&](auto&, auto&) { run_ready(ctx); });
}

BOOST_AUTO_TEST_CASE(zlib_filtered_stream_over_ssl_stream_over_tcp) {
  net::io_context ctx;
  auto [c, s] = nagle_off_tcp_pair(ctx);
  zlib_over_tls_each_way(ctx, std::move(c), std::move(s), [&](auto& a, auto& b) {
    // All that each end sent is in the other's kernel once acknowledged: wait for the ACKs
    // (at once on loopback, or after a delayed ACK; 1 ms steps), then the readers take it in.
    const auto deadline = clock_type::now() + 10s;
    for (auto* socket : {&a.lowest_layer(), &b.lowest_layer()}) {
      while (unacknowledged(*socket) != 0 && clock_type::now() < deadline) {
        ctx.restart();
        ctx.run_one_for(1ms);
      }
      BOOST_TEST(unacknowledged(*socket) == 0);
    }
    run_ready(ctx);
  });
}
