// rate_limited_stream, timing in real time: own limits, read limits over TCP, and the lower of
// own and group limits winning. The limiter may be late, never early, so lower bounds are
// tight and upper bounds loose (they must hold on a noisy machine).
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <string>
#include <utility>

namespace net = boost::asio;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(timing)

BOOST_AUTO_TEST_CASE(write_limit_10kBps_moves_30KB_in_2_9s) {
  net::io_context ctx;
  auto ends = sluice::make_pipe(ctx);
  sluice::rate_limited_stream<counting_pipe> writer(counting_pipe{std::move(ends.first)});
  sluice::pipe peer(std::move(ends.second));
  writer.set_rate_limit(write_limit(1000, 1000, 100ms)); // 10 KB/s, burst one tick
  const std::string out = pattern<std::string>(30000, 1);
  std::string in(out.size(), '\0');
  result w, r;
  auto t0 = clock_type::now();
  net::async_write(writer, net::buffer(out), store(w));
  net::async_read(peer, net::buffer(in), store(r));
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done && r.done; }, 8s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == out.size());
  BOOST_TEST(r.n == out.size());
  BOOST_TEST((in == out));
  BOOST_TEST(peer.available() == 0u);
  // A waiting writer wakes for half a tick's worth (500 bytes), not for a few bytes: the
  // burst, then 29,000 bytes in 58 writes at most.
  BOOST_TEST_MESSAGE(writer.next_layer().writes << " writes to the next layer");
  BOOST_TEST(writer.next_layer().writes <= 59u);
  // 1000 at once, then 29,000 at 10,000/s: 2.9 s, and the limiter may never be faster.
  double took = seconds(w.at - t0);
  BOOST_TEST_MESSAGE("30 KB at 10 KB/s took " << took << " s");
  BOOST_TEST(took >= 2.85);
  BOOST_TEST(took <= 3.9);
}

BOOST_AUTO_TEST_CASE(read_limit_over_loopback_tcp) {
  net::io_context ctx;
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> reader(std::move(server));
  reader.set_rate_limit(read_limit(1000, 1000, 100ms)); // 10 KB/s
  const std::string out = pattern<std::string>(20000, 2);
  std::string in(out.size(), '\0');
  result w, r;
  auto t0 = clock_type::now();
  net::async_write(client, net::buffer(out), store(w));
  net::async_read(reader, net::buffer(in), store(r));
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done && r.done; }, 8s));
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.n == out.size());
  BOOST_TEST((in == out));
  double took = seconds(r.at - t0);
  BOOST_TEST_MESSAGE("20 KB read at 10 KB/s took " << took << " s");
  BOOST_TEST(took >= 1.85); // (20,000 - 1000) / 10,000
  BOOST_TEST(took <= 2.9);
}

BOOST_AUTO_TEST_CASE(own_limit_below_group_limit_wins) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(5000, 5000, 100ms)); // 50 KB/s
  pipe_fixture p(ctx);
  p.stream.set_rate_limit(write_limit(500, 500, 100ms)); // 5 KB/s
  p.stream.join(group);
  const std::string out = pattern<std::string>(8000, 3);
  std::string in(out.size(), '\0');
  result r;
  net::async_read(p.peer, net::buffer(in), store(r));
  auto took = timed_write(ctx, p.stream, out, 8s);
  BOOST_REQUIRE(took);
  BOOST_REQUIRE(run_until(ctx, [&] { return r.done; }));
  BOOST_TEST((in == out));
  BOOST_TEST_MESSAGE("own 5 KB/s in a 50 KB/s group: 8 KB took " << seconds(*took) << " s");
  BOOST_TEST(seconds(*took) >= 1.45); // (8000 - 500) / 5000
  BOOST_TEST(seconds(*took) <= 2.3);
  BOOST_TEST(group.totals().written == out.size());
}

BOOST_AUTO_TEST_CASE(group_limit_below_own_limit_wins) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(500, 500, 100ms)); // 5 KB/s
  pipe_fixture p(ctx);
  p.stream.set_rate_limit(write_limit(5000, 5000, 100ms)); // 50 KB/s
  p.stream.join(group);
  const std::string out = pattern<std::string>(8000, 4);
  std::string in(out.size(), '\0');
  result r;
  net::async_read(p.peer, net::buffer(in), store(r));
  auto took = timed_write(ctx, p.stream, out, 8s);
  BOOST_REQUIRE(took);
  BOOST_REQUIRE(run_until(ctx, [&] { return r.done; }));
  BOOST_TEST((in == out));
  BOOST_TEST_MESSAGE("own 50 KB/s in a 5 KB/s group: 8 KB took " << seconds(*took) << " s");
  BOOST_TEST(seconds(*took) >= 1.45);
  BOOST_TEST(seconds(*took) <= 2.3);
  BOOST_TEST(group.totals().written == out.size());
}

BOOST_AUTO_TEST_SUITE_END()
