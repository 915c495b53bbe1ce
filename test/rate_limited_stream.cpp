// rate_limited_stream: admission, waits, re-timing, cancellation, groups as seen by a stream,
// and the blocking forms. Real time where the limiter's timing is the point, with bounds
// that hold on a noisy machine: the limiter may be late, never early, so lower bounds are
// tight and upper bounds loose.
#define BOOST_TEST_MODULE rate_limited_stream
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "support.hpp"

#include <chrono>
#include <cstdint>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using limited_pipe = sluice::rate_limited_stream<sluice::pipe>;

using namespace sluice_test;

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (seed + i * 7 + i / 251) % 26);
  return s;
}

/// A rate-limited writer end and the plain reader end of one pipe.
struct pipe_fixture {
  explicit pipe_fixture(net::io_context& ctx) : pipe_fixture(sluice::make_pipe(ctx)) {}

  limited_pipe stream;
  sluice::pipe peer;

  /// Reads exactly `n` bytes from the peer and returns them; "" on timeout.
  std::string read_exactly(net::io_context& ctx, std::size_t n) {
    std::string in(n, '\0');
    bool done = false;
    net::async_read(peer, net::buffer(in), [&](error_code ec, std::size_t got) {
      BOOST_TEST(!ec);
      BOOST_TEST(got == n);
      done = true;
    });
    if (!run_until(ctx, [&] { return done; }))
      return {};
    return in;
  }

private:
  explicit pipe_fixture(std::pair<sluice::pipe, sluice::pipe> ends)
      : stream(std::move(ends.first)), peer(std::move(ends.second)) {}
};

/// A pipe end that counts the writes it is asked for.
struct counting_pipe {
  using executor_type = sluice::pipe::executor_type;
  executor_type get_executor() { return pipe.get_executor(); }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    ++writes;
    return pipe.async_write_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return pipe.async_read_some(buffers, std::forward<Token>(token));
  }

  sluice::pipe pipe;
  std::size_t writes = 0;
};

struct result {
  bool done = false;
  error_code ec;
  std::size_t n = 0;
  clock_type::time_point at;
};

auto store(result& r) {
  return [&r](error_code ec, std::size_t n) { r = {true, ec, n, clock_type::now()}; };
}

/// Moves `data` through `s` with async_write and returns how long it took, or nullopt.
template <class Stream>
std::optional<clock_type::duration>
timed_write(net::io_context& ctx, Stream& s, const std::string& data, clock_type::duration bound) {
  result r;
  auto t0 = clock_type::now();
  net::async_write(s, net::buffer(data), store(r));
  if (!run_until(
          ctx, [&] { return r.done; }, bound))
    return std::nullopt;
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.n == data.size());
  return r.at - t0;
}

const net::cancellation_type cancellation_types[] = {net::cancellation_type::terminal,
                                                     net::cancellation_type::partial,
                                                     net::cancellation_type::total};

} // namespace

// --- Timing ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(write_limit_10kBps_moves_30KB_in_2_9s) {
  net::io_context ctx;
  auto ends = sluice::make_pipe(ctx);
  sluice::rate_limited_stream<counting_pipe> writer(counting_pipe{std::move(ends.first)});
  sluice::pipe peer(std::move(ends.second));
  writer.set_rate_limit(write_limit(1000, 1000, 100ms)); // 10 KB/s, burst one tick
  const std::string out = pattern(30000, 1);
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
  const std::string out = pattern(20000, 2);
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
  const std::string out = pattern(8000, 3);
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
  const std::string out = pattern(8000, 4);
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

// --- Limits as numbers ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(max_to_is_the_lowest_of_own_group_and_max_single) {
  // A tick of a day: the levels do not move while the test runs.
  net::io_context ctx;
  pipe_fixture p(ctx);
  BOOST_TEST(p.stream.read_limit() == int64_max);
  BOOST_TEST(p.stream.write_limit() == int64_max);
  BOOST_TEST(p.stream.max_to_write() == int64_max);
  BOOST_TEST(p.stream.max_single_write() == int64_max);
  p.stream.set_max_single_write(700);
  BOOST_TEST(p.stream.max_single_write() == 700);
  BOOST_TEST(p.stream.max_to_write() == 700);
  BOOST_TEST(p.stream.max_to_read() == int64_max);
  p.stream.set_max_single_read(300);
  BOOST_TEST(p.stream.max_to_read() == 300);
  p.stream.set_max_single_write(std::numeric_limits<std::size_t>::max());
  p.stream.set_max_single_read(std::numeric_limits<std::size_t>::max());
  BOOST_TEST(p.stream.max_single_read() == int64_max);

  sluice::token_bucket_config own;
  own.read_rate = own.read_burst = 400;
  own.write_rate = own.write_burst = 500;
  own.tick = 24h;
  p.stream.set_rate_limit(own);
  BOOST_TEST(p.stream.write_limit() == 500);
  BOOST_TEST(p.stream.read_limit() == 400);
  BOOST_TEST(p.stream.max_to_write() == 500);
  BOOST_TEST(p.stream.max_to_read() == 400);

  sluice::token_bucket_config shared;
  shared.read_rate = shared.read_burst = 5000;
  shared.write_rate = shared.write_burst = 300;
  shared.tick = 24h;
  sluice::rate_limit_group group(ctx.get_executor(), shared);
  p.stream.join(group);
  BOOST_TEST(p.stream.group() == &group);
  BOOST_TEST(p.stream.max_to_write() == 300); // the group's, it is lower
  BOOST_TEST(p.stream.max_to_read() == 400);  // the own bucket's
  BOOST_TEST(p.stream.write_limit() == 500);  // own bucket only

  // A second member halves the share: tokens / members, at least the min share.
  pipe_fixture q(ctx);
  q.stream.join(group);
  BOOST_TEST(p.stream.max_to_write() == 150);
  BOOST_TEST(p.stream.max_to_read() == 400);
  group.set_min_share(200);
  BOOST_TEST(p.stream.max_to_write() == 200);
  group.set_min_share(64);
  p.stream.set_max_single_write(100);
  BOOST_TEST(p.stream.max_to_write() == 100);
  p.stream.set_max_single_read(50);
  BOOST_TEST(p.stream.max_to_read() == 50);

  // An overdrawn own bucket reads negative; what a write may move is 0, never negative
  // (as libevent clamps it), however deep the debt.
  p.stream.set_max_single_write(std::numeric_limits<std::size_t>::max());
  p.stream.decrement_write_limit(800);
  BOOST_TEST(p.stream.write_limit() == -300);
  BOOST_TEST(p.stream.max_to_write() == 0);
  p.stream.decrement_write_limit(int64_max);
  BOOST_TEST(p.stream.write_limit() == -int64_max);
  BOOST_TEST(p.stream.max_to_write() == 0);
  p.stream.clear_rate_limit();
  BOOST_TEST(p.stream.write_limit() == int64_max);
  BOOST_TEST(p.stream.max_to_write() == 150);
}

BOOST_AUTO_TEST_CASE(decrement_own_limit_is_signed_and_capped_at_burst) {
  net::io_context ctx;
  pipe_fixture p(ctx);
  sluice::token_bucket_config cfg;
  cfg.read_rate = 1000;
  cfg.read_burst = 3000;
  cfg.write_rate = 2000;
  cfg.write_burst = 2500;
  cfg.tick = 24h;
  p.stream.set_rate_limit(cfg);
  BOOST_TEST(p.stream.read_limit() == 1000); // starts with one tick's worth
  BOOST_TEST(p.stream.write_limit() == 2000);
  p.stream.decrement_read_limit(400);
  BOOST_TEST(p.stream.read_limit() == 600);
  p.stream.decrement_read_limit(-1000);
  BOOST_TEST(p.stream.read_limit() == 1600);
  p.stream.decrement_read_limit(-100000); // never past the burst
  BOOST_TEST(p.stream.read_limit() == 3000);
  p.stream.decrement_read_limit(5000);
  BOOST_TEST(p.stream.read_limit() == -2000);
  p.stream.decrement_write_limit(-1000);
  BOOST_TEST(p.stream.write_limit() == 2500);
  p.stream.decrement_write_limit(2500);
  BOOST_TEST(p.stream.write_limit() == 0);
  BOOST_TEST(p.stream.read_limit() == -2000); // the directions are separate

  // Reconfiguring keeps the tokens held, capped at the new burst.
  cfg.read_burst = cfg.read_rate = 10;
  p.stream.set_rate_limit(cfg);
  BOOST_TEST(p.stream.read_limit() == -2000);
  p.stream.decrement_read_limit(-3000);
  BOOST_TEST(p.stream.read_limit() == 10);
}

BOOST_AUTO_TEST_CASE(set_rate_limit_validates) {
  net::io_context ctx;
  pipe_fixture p(ctx);
  BOOST_TEST(!p.stream.rate_limit());
  p.stream.set_rate_limit(write_limit(100, 100, 24h));
  auto bad = write_limit(200, 100, 1s); // burst below rate
  BOOST_CHECK_THROW(p.stream.set_rate_limit(bad), std::invalid_argument);
  BOOST_CHECK_THROW(p.stream.set_rate_limit(write_limit(0, 100, 1s)), std::invalid_argument);
  BOOST_CHECK_THROW(p.stream.set_rate_limit(write_limit(10, 10, 0s)), std::invalid_argument);
  BOOST_TEST(p.stream.write_limit() == 100); // unchanged
  BOOST_REQUIRE(p.stream.rate_limit());
  BOOST_TEST(p.stream.rate_limit()->write_rate == 100u);
  BOOST_TEST(p.stream.rate_limit()->read_rate == sluice::unlimited);
  p.stream.clear_rate_limit();
  BOOST_TEST(!p.stream.rate_limit());
}

// --- Zero-length operations -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(zero_length_operations_pass_straight_through) {
  net::io_context ctx;
  pipe_fixture p(ctx);
  sluice::token_bucket_config cfg;
  cfg.read_rate = cfg.read_burst = cfg.write_rate = cfg.write_burst = 1000;
  cfg.tick = 24h;
  p.stream.set_rate_limit(cfg);
  p.stream.decrement_write_limit(1000);   // at 0
  p.stream.decrement_read_limit(1000000); // negative: a refill would take days
  BOOST_TEST(p.stream.write_limit() == 0);
  BOOST_TEST(p.stream.read_limit() == -999000);

  sluice::rate_limit_group group(ctx.get_executor(), cfg);
  group.decrement_write_limit(5000);
  p.stream.join(group);

  char byte = 'x';
  result w, r, w2;
  p.stream.async_write_some(net::buffer(&byte, 0), store(w));
  p.stream.async_read_some(net::buffer(&byte, 0), store(r));
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done && r.done; }, 5s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == 0u);
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.n == 0u);
  // An empty sequence of buffers is zero-length too.
  std::array<net::const_buffer, 2> empties{net::buffer(&byte, 0), net::buffer(&byte, 0)};
  p.stream.async_write_some(empties, store(w2));
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w2.done; }, 5s));
  BOOST_TEST(!w2.ec);
  BOOST_TEST(w2.n == 0u);
  // Nothing charged, nothing moved.
  BOOST_TEST(p.stream.write_limit() == 0);
  BOOST_TEST(p.stream.read_limit() == -999000);
  BOOST_TEST(group.write_limit() == -4000);
  BOOST_TEST(p.peer.available() == 0u);
  BOOST_TEST(group.totals().written == 0u);
}

// --- Re-timing of waits -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(raising_own_limit_wakes_a_waiting_write) {
  net::io_context ctx;
  pipe_fixture p(ctx);
  p.stream.set_rate_limit(write_limit(1, 1, 10s)); // one byte per 10 s
  const std::string first = "a", second = pattern(1000, 5);
  BOOST_REQUIRE(timed_write(ctx, p.stream, first, 5s));
  result w;
  auto t0 = clock_type::now();
  p.stream.async_write_some(net::buffer(second), store(w));
  ctx.poll();
  BOOST_TEST(!w.done); // waits ~10 s for the next token
  p.stream.set_rate_limit(write_limit(100000, 100000, 1s));
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n >= 1u);
  BOOST_TEST(seconds(w.at - t0) < 2.0);
  BOOST_TEST(p.read_exactly(ctx, 1 + w.n) == first + second.substr(0, w.n));
}

BOOST_AUTO_TEST_CASE(clearing_or_adding_tokens_wakes_a_waiting_write) {
  for (int variant = 0; variant < 2; ++variant) {
    net::io_context ctx;
    pipe_fixture p(ctx);
    p.stream.set_rate_limit(write_limit(1000, 1000, 24h));
    p.stream.decrement_write_limit(1000);
    const std::string out = pattern(600, 6);
    result w;
    auto t0 = clock_type::now();
    p.stream.async_write_some(net::buffer(out), store(w));
    ctx.poll();
    BOOST_TEST(!w.done);
    if (variant == 0)
      p.stream.clear_rate_limit();
    else
      p.stream.decrement_write_limit(-250); // adds 250 tokens
    BOOST_REQUIRE(run_until(
        ctx, [&] { return w.done; }, 5s));
    BOOST_TEST(!w.ec);
    BOOST_TEST(w.n == (variant == 0 ? 600u : 250u));
    BOOST_TEST(seconds(w.at - t0) < 2.0);
    BOOST_TEST(p.read_exactly(ctx, w.n) == out.substr(0, w.n));
    if (variant == 1)
      BOOST_TEST(p.stream.write_limit() == 0);
  }
}

BOOST_AUTO_TEST_CASE(raising_group_limit_wakes_a_waiting_write) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(1, 1, 10s));
  pipe_fixture p(ctx);
  p.stream.join(group);
  const std::string first = "a", second = pattern(1000, 7);
  BOOST_REQUIRE(timed_write(ctx, p.stream, first, 5s));
  result w;
  auto t0 = clock_type::now();
  p.stream.async_write_some(net::buffer(second), store(w));
  ctx.poll();
  BOOST_TEST(!w.done); // queued in the group for ~10 s
  BOOST_TEST(p.stream.max_to_write() <= 0);
  group.set_config(write_limit(100000, 100000, 1s));
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n >= 1u);
  BOOST_TEST(seconds(w.at - t0) < 2.0);
  BOOST_TEST(p.read_exactly(ctx, 1 + w.n) == first + second.substr(0, w.n));
  BOOST_TEST(group.totals().written == 1 + w.n);
}

BOOST_AUTO_TEST_CASE(adding_group_tokens_wakes_a_waiting_write) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(1000, 1000, 24h));
  group.decrement_write_limit(1000);
  pipe_fixture p(ctx);
  p.stream.join(group);
  const std::string out = pattern(1000, 8);
  result w;
  p.stream.async_write_some(net::buffer(out), store(w));
  ctx.poll();
  BOOST_TEST(!w.done);
  group.decrement_write_limit(-300);
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == 300u);
  BOOST_TEST(p.read_exactly(ctx, 300) == out.substr(0, 300));
  BOOST_TEST(group.write_limit() == 0);
}

// --- Groups seen from a stream ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(destroying_the_group_frees_a_waiting_member) {
  for (bool own_limit : {false, true}) {
    net::io_context ctx;
    auto group =
        std::make_unique<sluice::rate_limit_group>(ctx.get_executor(), write_limit(1, 1, 10s));
    pipe_fixture p(ctx);
    if (own_limit)
      p.stream.set_rate_limit(write_limit(300, 300, 24h));
    p.stream.join(*group);
    const std::string first = "a", second = pattern(1000, 9);
    BOOST_REQUIRE(timed_write(ctx, p.stream, first, 5s));
    result w;
    auto t0 = clock_type::now();
    p.stream.async_write_some(net::buffer(second), store(w));
    ctx.poll();
    BOOST_TEST(!w.done);
    BOOST_TEST(group->size() == 1u);
    group.reset();
    BOOST_TEST(p.stream.group() == nullptr);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return w.done; }, 5s));
    BOOST_TEST(!w.ec);
    BOOST_TEST(w.n == (own_limit ? 299u : 1000u)); // the own bucket had 299 left
    BOOST_TEST(seconds(w.at - t0) < 2.0);
    BOOST_TEST(p.read_exactly(ctx, 1 + w.n) == first + second.substr(0, w.n));
    // And it goes on without the group.
    result w2;
    p.stream.async_write_some(net::buffer(second), store(w2));
    if (own_limit) {
      ctx.poll();
      BOOST_TEST(!w2.done); // own bucket empty for a day
      p.stream.cancel();
    }
    BOOST_REQUIRE(run_until(
        ctx, [&] { return w2.done; }, 5s));
    BOOST_TEST((w2.ec == (own_limit ? error_code(net::error::operation_aborted) : error_code())));
  }
}

BOOST_AUTO_TEST_CASE(joining_another_group_or_leaving_moves_a_waiting_write) {
  for (bool leave : {false, true}) {
    net::io_context ctx;
    sluice::rate_limit_group slow(ctx.get_executor(), write_limit(1, 1, 10s));
    sluice::rate_limit_group fast(ctx.get_executor(), sluice::token_bucket_config{});
    pipe_fixture p(ctx);
    p.stream.join(slow);
    const std::string first = "a", second = pattern(700, 10);
    BOOST_REQUIRE(timed_write(ctx, p.stream, first, 5s));
    result w;
    p.stream.async_write_some(net::buffer(second), store(w));
    ctx.poll();
    BOOST_TEST(!w.done);
    if (leave)
      p.stream.leave_group();
    else
      p.stream.join(fast);
    BOOST_TEST(slow.size() == 0u);
    BOOST_TEST(fast.size() == (leave ? 0u : 1u));
    BOOST_TEST(p.stream.group() == (leave ? nullptr : &fast));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return w.done; }, 5s));
    BOOST_TEST(!w.ec);
    BOOST_TEST(w.n == 700u);
    BOOST_TEST(p.read_exactly(ctx, 701) == first + second);
    BOOST_TEST(fast.totals().written == (leave ? 0u : 700u));
    BOOST_TEST(slow.totals().written == 1u);
  }
}

// --- Cancellation -----------------------------------------------------------------------

namespace {

/// A stream whose next write waits: for its own bucket (`in_group` false) or in a group's
/// queue (true). One byte, "a", has gone through to drain the bucket.
struct waiting_fixture {
  explicit waiting_fixture(bool in_group)
      : group(ctx.get_executor(),
              in_group ? write_limit(1, 1, 10s) : sluice::token_bucket_config{}),
        p(ctx) {
    if (in_group)
      p.stream.join(group);
    else
      p.stream.set_rate_limit(write_limit(1, 1, 10s));
    BOOST_REQUIRE(timed_write(ctx, p.stream, "a", 5s));
  }

  /// Lifts the limits and checks that exactly "a" + `next` arrives, once.
  void check_next_write_exact(const std::string& next) {
    p.stream.clear_rate_limit();
    group.set_config(sluice::token_bucket_config{});
    BOOST_REQUIRE(timed_write(ctx, p.stream, next, 5s));
    BOOST_TEST(p.read_exactly(ctx, 1 + next.size()) == "a" + next);
    BOOST_TEST(p.peer.available() == 0u);
  }

  net::io_context ctx;
  sluice::rate_limit_group group;
  pipe_fixture p;
};

} // namespace

BOOST_AUTO_TEST_CASE(per_operation_cancellation_of_a_wait_loses_nothing) {
  for (bool in_group : {false, true}) {
    for (auto type : cancellation_types) {
      BOOST_TEST_CONTEXT("in_group " << in_group << ", type " << static_cast<int>(type)) {
        waiting_fixture f(in_group);
        const std::string cancelled = pattern(500, 11), next = pattern(800, 12);
        net::cancellation_signal signal;
        result w;
        f.p.stream.async_write_some(net::buffer(cancelled),
                                    net::bind_cancellation_slot(signal.slot(), store(w)));
        f.ctx.poll();
        BOOST_TEST(!w.done);
        signal.emit(type);
        BOOST_REQUIRE(run_until(
            f.ctx, [&] { return w.done; }, 5s));
        BOOST_TEST((w.ec == net::error::operation_aborted));
        BOOST_TEST(w.n == 0u);
        BOOST_TEST(f.p.peer.available() == 1u); // only the "a"
        signal.emit(type);                      // a late signal does nothing
        f.check_next_write_exact(next);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(stream_cancel_ends_waits_for_tokens) {
  for (bool in_group : {false, true}) {
    BOOST_TEST_CONTEXT("in_group " << in_group) {
      waiting_fixture f(in_group);
      const std::string cancelled = pattern(500, 13), next = pattern(900, 14);
      result w, r;
      char buf[16];
      f.p.stream.async_write_some(net::buffer(cancelled), store(w));
      f.p.stream.async_read_some(net::buffer(buf), store(r)); // waits in the pipe
      f.ctx.poll();
      BOOST_TEST(!w.done);
      BOOST_TEST(!r.done);
      f.p.stream.cancel();
      BOOST_REQUIRE(run_until(
          f.ctx, [&] { return w.done && r.done; }, 5s));
      BOOST_TEST((w.ec == net::error::operation_aborted));
      BOOST_TEST(w.n == 0u);
      BOOST_TEST((r.ec == net::error::operation_aborted));
      f.check_next_write_exact(next);
    }
  }
}

BOOST_AUTO_TEST_CASE(awaitable_or_timer_cancels_the_write) {
  using namespace net::experimental::awaitable_operators;
  for (bool in_group : {false, true}) {
    BOOST_TEST_CONTEXT("in_group " << in_group) {
      waiting_fixture f(in_group);
      const std::string cancelled = pattern(500, 15), next = pattern(300, 16);
      std::optional<std::size_t> winner;
      net::co_spawn(
          f.ctx,
          [&]() -> net::awaitable<void> {
            net::steady_timer timer(f.ctx, 50ms);
            auto r =
                co_await (f.p.stream.async_write_some(net::buffer(cancelled), net::use_awaitable) ||
                          timer.async_wait(net::use_awaitable));
            winner = r.index();
          },
          net::detached);
      BOOST_REQUIRE(run_until(
          f.ctx, [&] { return winner.has_value(); }, 5s));
      BOOST_TEST(*winner == 1u); // the timer
      BOOST_TEST(f.p.peer.available() == 1u);
      f.check_next_write_exact(next);
    }
  }
}

BOOST_AUTO_TEST_CASE(cancellation_racing_a_wake_up_still_cancels) {
  // Each time the wait has already ended (its wake-up is queued, not yet run) when the
  // cancellation comes; the operation must neither wait again nor move bytes.
  for (int race = 0; race < 6; ++race) {
    BOOST_TEST_CONTEXT("race " << race) {
      net::io_context ctx;
      sluice::rate_limit_group slow(ctx.get_executor(), write_limit(1000, 1000, 24h));
      sluice::rate_limit_group slower(ctx.get_executor(), write_limit(1, 1, 24h));
      slow.decrement_write_limit(1000);
      slower.decrement_write_limit(1);
      pipe_fixture p(ctx);
      const bool in_group = race >= 2;
      if (in_group)
        p.stream.join(slow);
      else
        p.stream.set_rate_limit(write_limit(1000, 1000, 24h));
      p.stream.decrement_write_limit(in_group ? 0 : 1000);
      const std::string out = pattern(700, 22);
      net::cancellation_signal signal;
      result w;
      p.stream.async_write_some(net::buffer(out),
                                net::bind_cancellation_slot(signal.slot(), store(w)));
      ctx.poll();
      BOOST_TEST(!w.done);
      switch (race) {
      case 0: // own limit re-timed (to one still slow), then a signal
        p.stream.set_rate_limit(write_limit(2000, 2000, 24h));
        p.stream.decrement_write_limit(2000);
        signal.emit(net::cancellation_type::terminal);
        break;
      case 1: // the same, with stream.cancel()
        p.stream.set_rate_limit(write_limit(2000, 2000, 24h));
        p.stream.decrement_write_limit(2000);
        p.stream.cancel();
        break;
      case 2: // moved to another slow group, then a signal
        p.stream.join(slower);
        signal.emit(net::cancellation_type::partial);
        break;
      case 3: // the same, with stream.cancel()
        p.stream.join(slower);
        p.stream.cancel();
        break;
      case 4: // granted by the group, then a signal: the grant goes back
        slow.decrement_write_limit(-400);
        BOOST_TEST(slow.write_limit() == 0);
        signal.emit(net::cancellation_type::total);
        break;
      default: // the same, with stream.cancel()
        slow.decrement_write_limit(-400);
        p.stream.cancel();
        break;
      }
      BOOST_REQUIRE(run_until(
          ctx, [&] { return w.done; }, 3s));
      BOOST_TEST((w.ec == net::error::operation_aborted));
      BOOST_TEST(w.n == 0u);
      BOOST_TEST(p.peer.available() == 0u);
      if (race >= 4) {
        BOOST_TEST(slow.write_limit() == 400); // given back
        BOOST_TEST(slow.totals().written == 0u);
      }
      // The next operation is not affected by the earlier cancellation.
      p.stream.clear_rate_limit();
      p.stream.leave_group();
      BOOST_REQUIRE(timed_write(ctx, p.stream, out, 3s));
      BOOST_TEST(p.read_exactly(ctx, out.size()) == out);
    }
  }
}

BOOST_AUTO_TEST_CASE(destroying_the_stream_aborts_its_waits) {
  for (bool in_group : {false, true}) {
    net::io_context ctx;
    sluice::rate_limit_group group(ctx.get_executor(), write_limit(1, 1, 10s));
    auto p = std::make_unique<pipe_fixture>(ctx);
    if (in_group)
      p->stream.join(group);
    else
      p->stream.set_rate_limit(write_limit(1, 1, 10s));
    BOOST_REQUIRE(timed_write(ctx, p->stream, "a", 5s));
    const std::string out = pattern(100, 17);
    result w;
    p->stream.async_write_some(net::buffer(out), store(w));
    ctx.poll();
    BOOST_TEST(!w.done);
    BOOST_TEST(group.size() == (in_group ? 1u : 0u));
    p.reset();
    BOOST_TEST(group.size() == 0u);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return w.done; }, 5s));
    BOOST_TEST((w.ec == net::error::operation_aborted));
    BOOST_TEST(w.n == 0u);
  }
}

BOOST_AUTO_TEST_CASE(moving_the_stream_keeps_its_waits) {
  for (bool in_group : {false, true}) {
    net::io_context ctx;
    sluice::rate_limit_group group(ctx.get_executor(), write_limit(100, 100, 100ms));
    auto p = std::make_unique<pipe_fixture>(ctx);
    if (in_group)
      p->stream.join(group);
    else
      p->stream.set_rate_limit(write_limit(100, 100, 100ms));
    const std::string out = pattern(200, 22);
    result first, w;
    p->stream.async_write_some(net::buffer(out), store(first)); // takes the 100 tokens
    BOOST_REQUIRE(run_until(
        ctx, [&] { return first.done; }, 5s));
    BOOST_REQUIRE(first.n == 100u);
    // (A single operation: Asio's composed async_write holds the stream by reference.)
    p->stream.async_write_some(net::buffer(out.data() + 100, 100), store(w));
    ctx.poll();
    BOOST_TEST(!w.done);
    // The waiting write moves with the stream; the old object, and its pipe, are gone.
    auto moved = std::make_unique<limited_pipe>(std::move(p->stream));
    sluice::pipe peer = std::move(p->peer);
    p.reset();
    BOOST_TEST(group.size() == (in_group ? 1u : 0u));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return w.done; }, 5s));
    BOOST_TEST(!w.ec);
    BOOST_TEST(w.n > 0u); // what the limits allow (half a tick's worth)
    std::string in(100 + w.n, '\0');
    result r;
    net::async_read(peer, net::buffer(in), store(r));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return r.done; }, 5s));
    BOOST_TEST((in == out.substr(0, in.size())));
  }
}

// --- Blocking forms ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(blocking_write_some_sleeps_for_tokens) {
  net::io_context ctx;
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
  writer.set_rate_limit(write_limit(1000, 1000, 100ms)); // 10 KB/s
  const std::string out = pattern(5000, 18);
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
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> reader(std::move(server));
  reader.set_rate_limit(read_limit(1000, 1000, 100ms));
  const std::string out = pattern(4000, 19);
  net::write(client, net::buffer(out));
  std::string in(out.size(), '\0');
  auto t0 = clock_type::now();
  error_code ec;
  std::size_t n = net::read(reader, net::buffer(in), ec);
  double took = seconds(clock_type::now() - t0);
  BOOST_TEST(!ec);
  BOOST_TEST(n == out.size());
  BOOST_TEST((in == out));
  BOOST_TEST(took >= 0.28);
  BOOST_TEST(took <= 1.4);
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
    sluice::rate_limit_group group(group_ctx.get_executor(), write_limit(1000, 1000, 100ms));
    net::io_context ctx;
    auto [client, server] = tcp_pair(ctx);
    sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
    writer.join(group);
    const std::string out = pattern(3000, 20);
    auto t0 = clock_type::now();
    std::size_t n = net::write(writer, net::buffer(out));
    double took = seconds(clock_type::now() - t0);
    BOOST_TEST(n == out.size());
    BOOST_TEST(took >= 0.18);
    BOOST_TEST(took <= 1.3);
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
  sluice::rate_limit_group group(group_ctx.get_executor(), write_limit(1000, 1000, 100ms));
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
  writer.join(group);
  const std::string out = pattern(3000, 21);
  auto t0 = clock_type::now();
  auto written =
      std::async(std::launch::async, [&] { return net::write(writer, net::buffer(out)); });
  bool finished = written.wait_for(10s) == std::future_status::ready;
  BOOST_TEST(finished);
  if (!finished)
    group_ctx.run_for(1s); // its timer then frees the write, so that the test can end
  double took = seconds(clock_type::now() - t0);
  BOOST_TEST(written.get() == out.size());
  BOOST_TEST(took >= 0.18); // (3000 - 1000) / 10,000
  BOOST_TEST(group.totals().written == out.size());
  std::string in(out.size(), '\0');
  net::read(server, net::buffer(in));
  BOOST_TEST((in == out));
}

// --- Composition ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(layers_stack_and_report_their_types) {
  net::io_context ctx;
  using inner = sluice::rate_limited_stream<sluice::pipe>;
  using outer = sluice::rate_limited_stream<inner>;
  static_assert(std::is_same_v<outer::next_layer_type, inner>);
  static_assert(std::is_same_v<outer::lowest_layer_type, sluice::pipe>);
  static_assert(std::is_same_v<sluice::rate_limited_stream<tcp::socket>::lowest_layer_type,
                               tcp::socket::lowest_layer_type>);
  auto ends = sluice::make_pipe(ctx);
  outer s(std::move(ends.first));
  sluice::pipe peer(std::move(ends.second));
  BOOST_TEST(&s.lowest_layer() == &s.next_layer().next_layer());
  s.set_rate_limit(write_limit(100, 100, 24h));
  s.next_layer().set_rate_limit(write_limit(50, 50, 24h));
  const std::string out = pattern(500, 21);
  result w;
  net::async_write(s, net::buffer(out), store(w));
  ctx.poll();
  BOOST_TEST(!w.done);
  BOOST_TEST(peer.available() == 50u); // the inner, lower limit
  s.next_layer().clear_rate_limit();
  ctx.poll();
  BOOST_TEST(!w.done);
  BOOST_TEST(peer.available() == 100u); // the inner write resumed, capped by the outer
  s.clear_rate_limit();
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(w.n == out.size());
  std::string in(out.size(), '\0');
  result r;
  net::async_read(peer, net::buffer(in), store(r));
  BOOST_REQUIRE(run_until(
      ctx, [&] { return r.done; }, 5s));
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_CASE(next_layer_held_by_reference) {
  net::io_context ctx;
  auto ends = sluice::make_pipe(ctx);
  sluice::rate_limited_stream<sluice::pipe&> s(ends.first);
  static_assert(std::is_same_v<decltype(s)::next_layer_type, sluice::pipe>);
  BOOST_TEST(&s.next_layer() == &ends.first);
  s.set_rate_limit(write_limit(100, 100, 24h));
  const std::string out = pattern(300, 23);
  result w;
  net::async_write(s, net::buffer(out), store(w));
  ctx.poll();
  BOOST_TEST(!w.done);
  BOOST_TEST(ends.second.available() == 100u);
  s.clear_rate_limit();
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(ends.second.available() == 300u);
}

BOOST_AUTO_TEST_CASE(destroyed_stream_gives_back_a_grant_it_did_not_use) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(1000, 1000, 24h));
  group.decrement_write_limit(1000);
  auto p = std::make_unique<pipe_fixture>(ctx);
  p->stream.join(group);
  const std::string out = pattern(700, 24);
  result w;
  p->stream.async_write_some(net::buffer(out), store(w));
  ctx.poll();
  BOOST_TEST(!w.done);
  group.decrement_write_limit(-400); // granted to the waiting write, whose wake-up is queued
  BOOST_TEST(group.write_limit() == 0);
  p.reset();
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 3s));
  BOOST_TEST((w.ec == net::error::operation_aborted));
  BOOST_TEST(w.n == 0u);
  BOOST_TEST(group.write_limit() == 400);
  BOOST_TEST(group.totals().written == 0u);
}

// --- Operations admitted at once go straight to the next layer -------------------------

BOOST_AUTO_TEST_CASE(an_admitted_read_cancelled_in_the_next_layer_is_charged_nothing) {
  for (auto type : cancellation_types) {
    BOOST_TEST_CONTEXT("type " << static_cast<int>(type)) {
      net::io_context ctx;
      sluice::rate_limit_group group(ctx.get_executor(), read_limit(1000, 1000, 24h));
      pipe_fixture p(ctx);
      p.stream.set_rate_limit(read_limit(500, 500, 24h));
      p.stream.join(group);
      net::cancellation_signal signal;
      result r;
      char buf[300];
      p.stream.async_read_some(net::buffer(buf),
                               net::bind_cancellation_slot(signal.slot(), store(r)));
      ctx.poll();
      BOOST_TEST(!r.done);                   // admitted, and waiting in the pipe for bytes
      BOOST_TEST(group.read_limit() == 700); // the grant, held while the read is pending
      signal.emit(type);                     // reaches the pipe's own cancellation
      BOOST_REQUIRE(run_until(
          ctx, [&] { return r.done; }, 5s));
      BOOST_TEST((r.ec == net::error::operation_aborted));
      BOOST_TEST(r.n == 0u);
      BOOST_TEST(group.read_limit() == 1000); // given back whole
      BOOST_TEST(p.stream.read_limit() == 500);
      BOOST_TEST(group.totals().read == 0u);
    }
  }
}

/// Counts what is allocated through it.
template <class T>
struct counting_allocator {
  using value_type = T;
  std::size_t* count;
  explicit counting_allocator(std::size_t* c) : count(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) : count(other.count) {}
  T* allocate(std::size_t n) {
    ++*count;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const {
    return count == other.count;
  }
};

BOOST_AUTO_TEST_CASE(an_admitted_operation_keeps_the_handlers_executor_and_allocator) {
  net::io_context ctx;
  // A tick of a day: 12 bytes refill a second, so the level shows the 100 charged.
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(1 << 20, 1 << 20, 24h));
  pipe_fixture p(ctx);
  p.stream.set_rate_limit(write_limit(1 << 20, 1 << 20, 24h));
  p.stream.join(group);
  auto strand = net::make_strand(ctx);
  std::size_t allocations = 0;
  const std::string out = pattern(100, 25);
  bool on_strand = false, done = false;
  auto handler = [&](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == out.size());
    on_strand = strand.running_in_this_thread();
    done = true;
  };
  p.stream.async_write_some(
      net::buffer(out),
      net::bind_executor(strand,
                         net::bind_allocator(counting_allocator<void>(&allocations), handler)));
  BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
  BOOST_TEST(on_strand);
  BOOST_TEST(allocations > 0u);
  BOOST_TEST(p.read_exactly(ctx, out.size()) == out);
  BOOST_TEST(group.totals().written == out.size());
  // Charged the 100 bytes moved (less the few bytes a second that refill).
  BOOST_TEST(p.stream.write_limit() < (1 << 20) - 50);
  BOOST_TEST(p.stream.write_limit() >= (1 << 20) - 100);
  BOOST_TEST(group.write_limit() < (1 << 20) - 50);
}
