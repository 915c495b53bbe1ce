// rate_limited_stream, operations waiting for tokens: re-timed when limits or tokens change,
// and moved along when their group is destroyed, or when the stream joins another group or
// leaves.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace net = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(waits)

// --- Re-timing of waits -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(raising_own_limit_wakes_a_waiting_write) {
  net::io_context ctx;
  sluice::manual_rate_clock clock; // stands still: only the change can wake a wait
  pipe_fixture p(ctx);
  p.stream.set_clock(clock);
  p.stream.set_rate_limit(write_limit(1, 1, 10s)); // one byte per 10 s
  const std::string first = "a", second = pattern<std::string>(1000, 5);
  BOOST_REQUIRE(timed_write(ctx, p.stream, first, 5s));
  result w;
  p.stream.async_write_some(net::buffer(second), store(w));
  ctx.poll();
  BOOST_TEST(!w.done); // waits: its clock will not bring the next token
  // The tokens held (none) carry over; 10 ms at the new rate bring 1000, at the old none.
  p.stream.set_rate_limit(write_limit(100000, 100000, 1s));
  clock.advance(10ms);
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == 1000u);
  BOOST_TEST(p.read_exactly(ctx, 1 + w.n) == first + second.substr(0, w.n));
}

BOOST_AUTO_TEST_CASE(clearing_or_adding_tokens_wakes_a_waiting_write) {
  for (int variant = 0; variant < 2; ++variant) {
    net::io_context ctx;
    sluice::manual_rate_clock clock; // stands still: only the change can wake a wait
    pipe_fixture p(ctx);
    p.stream.set_clock(clock);
    p.stream.set_rate_limit(write_limit(1000, 1000, 24h));
    p.stream.decrement_write_limit(1000);
    const std::string out = pattern<std::string>(600, 6);
    result w;
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
    BOOST_TEST(p.read_exactly(ctx, w.n) == out.substr(0, w.n));
    if (variant == 1)
      BOOST_TEST(p.stream.write_limit() == 0);
  }
}

BOOST_AUTO_TEST_CASE(raising_group_limit_wakes_a_waiting_write) {
  net::io_context ctx;
  sluice::manual_rate_clock clock; // stands still: only the change can wake a wait
  sluice::rate_limit_group group(ctx, write_limit(1, 1, 10s), clock);
  pipe_fixture p(ctx);
  p.stream.set_clock(clock);
  p.stream.join(group);
  const std::string first = "a", second = pattern<std::string>(1000, 7);
  BOOST_REQUIRE(timed_write(ctx, p.stream, first, 5s));
  result w;
  p.stream.async_write_some(net::buffer(second), store(w));
  ctx.poll();
  BOOST_TEST(!w.done); // queued in the group: its clock will not bring the next token
  BOOST_TEST(p.stream.max_to_write() <= 0);
  group.set_config(write_limit(100000, 100000, 1s));
  clock.advance(10ms); // 1000 tokens at the new rate, none at the old
  BOOST_REQUIRE(run_until(
      ctx, [&] { return w.done; }, 5s));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == 1000u);
  BOOST_TEST(p.read_exactly(ctx, 1 + w.n) == first + second.substr(0, w.n));
  BOOST_TEST(group.totals().written == 1 + w.n);
}

BOOST_AUTO_TEST_CASE(adding_group_tokens_wakes_a_waiting_write) {
  net::io_context ctx;
  sluice::manual_rate_clock clock; // stands still: only the change can wake a wait
  sluice::rate_limit_group group(ctx, write_limit(1000, 1000, 24h), clock);
  group.decrement_write_limit(1000);
  pipe_fixture p(ctx);
  p.stream.set_clock(clock);
  p.stream.join(group);
  const std::string out = pattern<std::string>(1000, 8);
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
    sluice::manual_rate_clock clock; // stands still: only the change can wake a wait
    auto group = std::make_unique<sluice::rate_limit_group>(ctx, write_limit(1, 1, 10s), clock);
    pipe_fixture p(ctx);
    p.stream.set_clock(clock);
    if (own_limit)
      p.stream.set_rate_limit(write_limit(300, 300, 24h));
    p.stream.join(*group);
    const std::string first = "a", second = pattern<std::string>(1000, 9);
    BOOST_REQUIRE(timed_write(ctx, p.stream, first, 5s));
    result w;
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
    sluice::manual_rate_clock clock; // stands still: only the change can wake a wait
    sluice::rate_limit_group slow(ctx, write_limit(1, 1, 10s), clock);
    sluice::rate_limit_group fast(ctx.get_executor(), sluice::token_bucket_config{});
    pipe_fixture p(ctx);
    p.stream.set_clock(clock);
    p.stream.join(slow);
    const std::string first = "a", second = pattern<std::string>(700, 10);
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

BOOST_AUTO_TEST_SUITE_END()
