// rate_limited_stream, cancelling operations that wait for tokens: per operation, by
// cancel(), by awaitable operators, racing a wake-up, by destroying the stream; and a move
// that keeps its waits.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <sluice_test/completion.hpp>
#include <sluice_test/pattern.hpp>
#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace net = boost::asio;
using namespace std::chrono_literals;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(cancellation)

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
        const std::string cancelled = pattern<std::string>(500, 11),
                          next = pattern<std::string>(800, 12);
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
      const std::string cancelled = pattern<std::string>(500, 13),
                        next = pattern<std::string>(900, 14);
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
      const std::string cancelled = pattern<std::string>(500, 15),
                        next = pattern<std::string>(300, 16);
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
      const std::string out = pattern<std::string>(700, 22);
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
    const std::string out = pattern<std::string>(100, 17);
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
    const std::string out = pattern<std::string>(200, 22);
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

BOOST_AUTO_TEST_SUITE_END()
