// rate_limited_stream, limits as numbers (max_to_*, signed decrements, validation), and
// zero-length operations passing straight through.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>

#include <array>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

namespace net = boost::asio;
using namespace std::chrono_literals;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(numbers)

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

// --- What an admitted operation did not move ---------------------------------------------

BOOST_AUTO_TEST_CASE(what_an_admitted_write_did_not_move_is_given_back) {
  // The tokens are taken when the write is admitted; a write that moves less (here: the
  // pipe has room for 100 bytes) gives the rest back, to its own bucket and to the group.
  net::io_context ctx;
  auto ends = sluice::make_pipe(ctx, sluice::pipe_options{100});
  limited_pipe stream(std::move(ends.first));
  sluice::token_bucket_config cfg;
  cfg.read_rate = cfg.read_burst = cfg.write_rate = cfg.write_burst = 1000;
  cfg.tick = 24h;
  stream.set_rate_limit(cfg);
  sluice::rate_limit_group group(ctx.get_executor(), cfg);
  stream.join(group);

  std::string out(400, 'x');
  result w;
  stream.async_write_some(net::buffer(out), store(w));
  BOOST_REQUIRE(run_until(ctx, [&] { return w.done; }));
  BOOST_TEST(!w.ec);
  BOOST_TEST(w.n == 100u);
  BOOST_TEST(stream.write_limit() == 900);
  BOOST_TEST(group.write_limit() == 900);
  BOOST_TEST(group.totals().written == 100u);
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

BOOST_AUTO_TEST_SUITE_END()
