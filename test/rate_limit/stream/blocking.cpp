// rate_limited_stream, the blocking forms: read_some and write_some sleep for tokens, own or
// a group's, with no other thread needed to run the group's timer. On virtual time, but for
// one labelled real-time check.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <cstddef>
#include <future>
#include <string>
#include <thread>
#include <utility>

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(blocking)

namespace {

/// Moves `clock` to `at` (from where it was `from`) and says whether `blocked` finished by
/// then. While time stands still a blocked call cannot finish, so a short real wait
/// settles "not yet"; "done" gets a long one.
template <class T>
bool done_at(sluice::manual_rate_clock& clock, std::chrono::milliseconds& now,
             std::chrono::milliseconds at, std::future<T>& blocked, bool expect_done) {
  clock.advance(at - now);
  now = at;
  return blocked.wait_for(expect_done ? 10s : 30ms) == std::future_status::ready;
}

/// Ends a blocked call when the test does, passing or failing: a day of tokens.
struct release_at_exit {
  sluice::manual_rate_clock& clock;
  ~release_at_exit() { clock.advance(24h); }
};

} // namespace

BOOST_AUTO_TEST_CASE(real_time_blocking_write_some_sleeps_for_tokens) {
  // Real time: the blocking form on the default clock sleeps on the machine's clock. The
  // limiter may be late, never early: the lower bound is tight, the upper loose.
  net::io_context ctx;
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
  writer.set_rate_limit(write_limit(1000, 1000, 100ms)); // 10 KB/s
  const std::string out = pattern<std::string>(5000, 18);
  auto t0 = clock_type::now();
  std::size_t n = net::write(writer, net::buffer(out)); // fits in the socket buffers
  double took = seconds(clock_type::now() - t0);
  BOOST_TEST(n == out.size());
  BOOST_TEST_MESSAGE("blocking 5 KB at 10 KB/s took " << took << " s");
  BOOST_TEST(took >= 0.38); // (5000 - 1000) / 10,000
  BOOST_TEST(took <= 1.5);
  std::string in(out.size(), '\0');
  net::read(server, net::buffer(in));
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_CASE(blocking_read_some_sleeps_for_tokens) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> reader(std::move(server));
  reader.set_clock(clock);
  // 10 KB/s, with a burst that holds what a jump of the clock brings, so that when the
  // read ends does not depend on how the clock is stepped.
  reader.set_rate_limit(read_limit(1000, 4000, 100ms));
  const std::string out = pattern<std::string>(4000, 19);
  net::write(client, net::buffer(out));
  std::string in(out.size(), '\0');
  auto read = std::async(std::launch::async, [&] {
    error_code ec;
    std::size_t n = net::read(reader, net::buffer(in), ec);
    BOOST_TEST(!ec);
    return n;
  });
  release_at_exit release{clock};
  // A tick's worth at once, then 10 bytes a millisecond: done at 300 ms, not before.
  auto now = 0ms;
  BOOST_TEST(!done_at(clock, now, 0ms, read, false));
  BOOST_TEST(!done_at(clock, now, 299ms, read, false));
  BOOST_REQUIRE(done_at(clock, now, 300ms, read, true));
  BOOST_TEST(read.get() == out.size());
  BOOST_TEST((in == out));
  // Zero-length blocking operations need no tokens.
  reader.decrement_read_limit(100000);
  BOOST_TEST(reader.read_some(net::buffer(in.data(), 0)) == 0u);
}

BOOST_AUTO_TEST_CASE(blocking_write_some_waits_in_a_group) {
  // The group's timer runs on its own thread while this one blocks.
  net::io_context group_ctx;
  auto guard = net::make_work_guard(group_ctx);
  std::thread runner([&] { group_ctx.run(); });
  {
    sluice::manual_rate_clock clock;
    sluice::rate_limit_group group(group_ctx.get_executor(), write_limit(1000, 4000, 100ms), clock);
    net::io_context ctx;
    auto [client, server] = tcp_pair(ctx);
    sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
    writer.join(group);
    const std::string out = pattern<std::string>(3000, 20);
    auto written =
        std::async(std::launch::async, [&] { return net::write(writer, net::buffer(out)); });
    release_at_exit release{clock};
    // A tick's worth at once, then 10 bytes a millisecond: done at 200 ms, not before.
    auto now = 0ms;
    BOOST_TEST(!done_at(clock, now, 199ms, written, false));
    BOOST_REQUIRE(done_at(clock, now, 200ms, written, true));
    BOOST_TEST(written.get() == out.size());
    BOOST_TEST(group.totals().written == out.size());
    std::string in(out.size(), '\0');
    net::read(server, net::buffer(in));
    BOOST_TEST((in == out));
  }
  guard.reset();
  runner.join();
}

BOOST_AUTO_TEST_CASE(blocking_write_some_in_a_group_needs_no_thread_for_its_timer) {
  // Nobody runs the group's io_context: the blocked thread serves its refills itself.
  net::io_context group_ctx, ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(group_ctx.get_executor(), write_limit(1000, 4000, 100ms), clock);
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
  writer.join(group);
  const std::string out = pattern<std::string>(3000, 21);
  auto written =
      std::async(std::launch::async, [&] { return net::write(writer, net::buffer(out)); });
  release_at_exit release{clock};
  auto now = 0ms;
  BOOST_TEST(!done_at(clock, now, 199ms, written, false));
  bool finished = done_at(clock, now, 200ms, written, true);
  BOOST_TEST(finished);
  if (!finished)
    group_ctx.run_for(1s); // its timer then frees the write, so that the test can end
  BOOST_TEST(written.get() == out.size());
  BOOST_TEST(group.totals().written == out.size());
  std::string in(out.size(), '\0');
  net::read(server, net::buffer(in));
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_SUITE_END()
