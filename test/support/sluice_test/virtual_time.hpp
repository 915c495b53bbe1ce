// Virtual time for the rate-limit suites: buckets and groups read a manual_rate_clock, which
// stands still until the test moves it. Between two moves nothing that waits for tokens can
// complete, so a test can run the io_context for as long as it likes and check exactly what
// moved at each virtual instant.
#ifndef SLUICE_TEST_VIRTUAL_TIME_HPP
#define SLUICE_TEST_VIRTUAL_TIME_HPP

#include <sluice/rate_limit.hpp>

#include <sluice_test/support.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>

namespace sluice_test {

/// Runs `ctx` until `value()` reaches `expected` (bounded in real time), then a little longer:
/// time stands still, so a correct limiter moves nothing more. Returns the final value.
template <class Value>
auto settle(boost::asio::io_context& ctx, Value value, decltype(value()) expected) {
  run_until(ctx, [&] { return value() >= expected; });
  ctx.restart();
  ctx.run_for(std::chrono::milliseconds(5)); // waiters poll the clock every millisecond
  return value();
}

/// Runs `ctx` for a while and says whether `happened()` still does not hold. While time
/// stands still, a wait for tokens cannot end, however long this runs.
template <class Pred>
bool still_not(boost::asio::io_context& ctx, Pred happened) {
  ctx.restart();
  ctx.run_for(std::chrono::milliseconds(20));
  return !happened();
}

/// Moves `clock` by `step`, `steps` times, letting what is due settle after each move at
/// `first + k * per_step`; returns the value after the last (equal to
/// first + steps * per_step when the limiter hands out exactly per_step each step).
template <class Value>
auto step_and_settle(boost::asio::io_context& ctx, sluice::manual_rate_clock& clock,
                     std::chrono::nanoseconds step, int steps, Value value,
                     decltype(value()) per_step) {
  auto expected = value();
  for (int k = 0; k < steps; ++k) {
    clock.advance(step);
    expected += per_step;
    run_until(ctx, [&] { return value() >= expected; });
  }
  return settle(ctx, value, expected);
}

/// Moves `clock` by `step`, `steps` times; after each move, runs `ctx` until `served()` says
/// what was due has been handed out, then runs what that made ready, so that every waiter
/// is waiting again before the next move.
template <class Pred>
void step_until_served(boost::asio::io_context& ctx, sluice::manual_rate_clock& clock,
                       std::chrono::nanoseconds step, int steps, Pred served) {
  for (int k = 0; k < steps; ++k) {
    clock.advance(step);
    run_until(ctx, served);
    ctx.restart();
    ctx.poll();
  }
}

} // namespace sluice_test

#endif
