// rate_limited_stream, timing: own limits, and the lower of own and group limits winning, on
// virtual time (exact: what moved at each virtual instant); and one check in real time, over
// TCP, that the waits really wait on the machine's clock.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>
#include <sluice_test/virtual_time.hpp>

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
  sluice::manual_rate_clock clock;
  auto ends = sluice::make_pipe(ctx);
  sluice::rate_limited_stream<counting_pipe> writer(counting_pipe{std::move(ends.first)});
  sluice::pipe peer(std::move(ends.second));
  writer.set_clock(clock);
  writer.set_rate_limit(write_limit(1000, 1000, 100ms)); // 10 KB/s, burst one tick
  const std::string out = pattern<std::string>(30000, 1);
  result w;
  net::async_write(writer, net::buffer(out), store(w));
  // Nobody reads: what was written is what the peer has available.
  auto moved = [&] { return peer.available(); };
  // A fresh bucket holds one tick's worth; then a waiting writer wakes for half a tick's
  // worth (500 bytes every 50 ms), not for a few bytes, and never a moment early.
  BOOST_TEST(settle(ctx, moved, 1000) == 1000u);
  clock.advance(49ms);
  BOOST_TEST(settle(ctx, moved, 1000) == 1000u);
  clock.advance(1ms);
  BOOST_TEST(settle(ctx, moved, 1500) == 1500u);
  BOOST_TEST(step_and_settle(ctx, clock, 50ms, 56, moved, 500) == 29500u); // at 2.85 s
  BOOST_TEST(!w.done);
  clock.advance(50ms); // 2.9 s: the last 500
  BOOST_REQUIRE(run_until(ctx, [&] { return w.done; }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == out.size());
  BOOST_TEST(writer.next_layer().writes == 59u); // the burst, then 58 half-tick chunks
  std::string in(out.size(), '\0');
  result r;
  net::async_read(peer, net::buffer(in), store(r));
  BOOST_REQUIRE(run_until(ctx, [&] { return r.done; }));
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_CASE(own_limit_below_group_limit_wins) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(ctx, write_limit(5000, 5000, 100ms), clock); // 50 KB/s
  pipe_fixture p(ctx);
  p.stream.set_clock(clock);
  p.stream.set_rate_limit(write_limit(500, 500, 100ms)); // 5 KB/s
  p.stream.join(group);
  const std::string out = pattern<std::string>(8000, 3);
  result w;
  net::async_write(p.stream, net::buffer(out), store(w));
  auto moved = [&] { return p.peer.available(); };
  BOOST_TEST(settle(ctx, moved, 500) == 500u);
  // 250 bytes (half the own tick's worth) every 50 ms: 7500 more in 1.5 s.
  BOOST_TEST(step_and_settle(ctx, clock, 50ms, 29, moved, 250) == 7750u);
  BOOST_TEST(!w.done);
  clock.advance(50ms);
  BOOST_REQUIRE(run_until(ctx, [&] { return w.done; }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(p.read_exactly(ctx, out.size()) == out);
  BOOST_TEST(group.totals().written == out.size());
}

BOOST_AUTO_TEST_CASE(group_limit_below_own_limit_wins) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(ctx, write_limit(500, 500, 100ms), clock); // 5 KB/s
  pipe_fixture p(ctx);
  p.stream.set_clock(clock);
  p.stream.set_rate_limit(write_limit(5000, 5000, 100ms)); // 50 KB/s
  p.stream.join(group);
  const std::string out = pattern<std::string>(8000, 4);
  result w;
  net::async_write(p.stream, net::buffer(out), store(w));
  auto moved = [&] { return p.peer.available(); };
  BOOST_TEST(settle(ctx, moved, 500) == 500u); // the group's first tick's worth
  // A group refill is half its burst, 250 bytes, every 50 ms.
  BOOST_TEST(step_and_settle(ctx, clock, 50ms, 29, moved, 250) == 7750u);
  BOOST_TEST(!w.done);
  clock.advance(50ms);
  BOOST_REQUIRE(run_until(ctx, [&] { return w.done; }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(p.read_exactly(ctx, out.size()) == out);
  BOOST_TEST(group.totals().written == out.size());
}

BOOST_AUTO_TEST_CASE(real_time_read_limit_over_loopback_tcp) {
  // Real time: the one check that a stream on the default clock waits on the machine's
  // clock. The limiter may be late, never early: the lower bound is tight, the upper loose.
  net::io_context ctx;
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> reader(std::move(server));
  reader.set_rate_limit(read_limit(1000, 1000, 100ms)); // 10 KB/s
  const std::string out = pattern<std::string>(10000, 2);
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
  BOOST_TEST_MESSAGE("10 KB read at 10 KB/s took " << took << " s");
  BOOST_TEST(took >= 0.85); // (10,000 - 1000) / 10,000
  BOOST_TEST(took <= 2.5);
}

BOOST_AUTO_TEST_SUITE_END()
