// rate_limit_group: its numbers (limits, totals, size), membership, and fair sharing among
// members, on virtual time: the group and its members read a manual clock, and the tests
// check what each member moved at each virtual instant. The allocator itself has exact
// tests in fair_queue.cpp.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>
#include <sluice_test/virtual_time.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace net = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using namespace sluice_test;

namespace {

/// Two rate-limited ends of one pipe.
struct limited_pair {
  explicit limited_pair(net::io_context& ctx) : limited_pair(sluice::make_pipe(ctx)) {}
  limited_pipe a, b;

private:
  explicit limited_pair(std::pair<sluice::pipe, sluice::pipe> ends)
      : a(std::move(ends.first)), b(std::move(ends.second)) {}
};

/// A member that writes as fast as it is let, and its reader, which keeps up.
struct flat_out_writer {
  flat_out_writer(net::io_context& ctx, const sluice::rate_clock& clock) : ends(ctx) {
    ends.a.set_clock(clock);
  }

  void start() {
    write();
    read();
  }
  void write() {
    ends.a.async_write_some(net::buffer(out), [this](error_code ec, std::size_t n) {
      if (ec)
        return;
      written += n;
      write();
    });
  }
  void read() {
    ends.b.next_layer().async_read_some(net::buffer(in), [this](error_code ec, std::size_t n) {
      if (ec)
        return;
      received += n;
      read();
    });
  }

  limited_pair ends;
  std::vector<char> out = std::vector<char>(64 * 1024, 'x');
  std::vector<char> in = std::vector<char>(64 * 1024);
  std::uint64_t written = 0, received = 0;
};

/// Runs `writers` flat out for `steps` moves of `clock` by `step` (each a group refill);
/// returns what they wrote in all.
std::uint64_t run_flat_out(net::io_context& ctx, sluice::manual_rate_clock& clock,
                           sluice::rate_limit_group& group,
                           std::vector<std::unique_ptr<flat_out_writer>>& writers,
                           std::chrono::nanoseconds step, int steps) {
  for (auto& w : writers)
    w->start();
  ctx.poll();
  const std::int64_t refill = static_cast<std::int64_t>(group.config().write_burst / 2);
  step_until_served(ctx, clock, step, steps, [&] { return group.write_limit() < refill; });
  std::uint64_t total = 0;
  for (auto& w : writers)
    total += w->written;
  return total;
}

} // namespace

// --- Numbers ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(config_is_validated) {
  net::io_context ctx;
  BOOST_CHECK_THROW(sluice::rate_limit_group(ctx.get_executor(), write_limit(0, 10, 1s)),
                    std::invalid_argument);
  BOOST_CHECK_THROW(sluice::rate_limit_group(ctx.get_executor(), write_limit(20, 10, 1s)),
                    std::invalid_argument);
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(100, 100, 24h));
  BOOST_CHECK_THROW(group.set_config(write_limit(10, sluice::unlimited, 1s)),
                    std::invalid_argument);
  BOOST_CHECK_THROW(group.set_config(write_limit(10, 10, 25h)), std::invalid_argument);
  BOOST_TEST(group.write_limit() == 100); // unchanged
  BOOST_TEST(group.config().write_burst == 100u);
  BOOST_TEST((group.config().tick == 24h));
  BOOST_TEST(group.read_limit() == int64_max);
  group.set_config(write_limit(50, 200, 1s));
  BOOST_TEST(group.config().write_rate == 50u);
}

BOOST_AUTO_TEST_CASE(limits_and_signed_decrements) {
  net::io_context ctx;
  sluice::token_bucket_config cfg;
  cfg.read_rate = 1000;
  cfg.read_burst = 4000;
  cfg.write_rate = 2000;
  cfg.write_burst = 2000;
  cfg.tick = 24h; // the levels do not move while the test runs
  sluice::rate_limit_group group(ctx.get_executor(), cfg);
  BOOST_TEST(group.read_limit() == 1000); // one tick's worth to start
  BOOST_TEST(group.write_limit() == 2000);
  group.decrement_read_limit(300);
  BOOST_TEST(group.read_limit() == 700);
  group.decrement_read_limit(-2000);
  BOOST_TEST(group.read_limit() == 2700);
  group.decrement_read_limit(-100000); // capped at the burst
  BOOST_TEST(group.read_limit() == 4000);
  group.decrement_write_limit(5000);
  BOOST_TEST(group.write_limit() == -3000);
  BOOST_TEST(group.read_limit() == 4000);
  group.decrement_write_limit(-1000);
  BOOST_TEST(group.write_limit() == -2000);

  // Reconfiguring keeps the tokens held, capped at the new burst.
  cfg.read_rate = cfg.read_burst = 500;
  group.set_config(cfg);
  BOOST_TEST(group.read_limit() == 500);
  BOOST_TEST(group.write_limit() == -2000);
  group.set_config(sluice::token_bucket_config{});
  BOOST_TEST(group.read_limit() == int64_max);
  BOOST_TEST(group.write_limit() == int64_max);
  group.decrement_write_limit(100); // no effect on an unlimited bucket
  BOOST_TEST(group.write_limit() == int64_max);
}

BOOST_AUTO_TEST_CASE(totals_count_bytes_moved_by_members) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), sluice::token_bucket_config{});
  limited_pair p(ctx);
  p.a.join(group);
  p.b.join(group);
  const std::string out(1500, 'q');
  std::string in(out.size(), '\0');
  bool wrote = false, read = false;
  net::async_write(p.a, net::buffer(out), [&](error_code ec, std::size_t) {
    BOOST_TEST(!ec);
    wrote = true;
  });
  net::async_read(p.b, net::buffer(in), [&](error_code ec, std::size_t) {
    BOOST_TEST(!ec);
    read = true;
  });
  BOOST_REQUIRE(run_until(ctx, [&] { return wrote && read; }));
  BOOST_TEST(group.totals().written == 1500u);
  BOOST_TEST(group.totals().read == 1500u);
  group.reset_totals();
  BOOST_TEST(group.totals().written == 0u);
  BOOST_TEST(group.totals().read == 0u);

  // Only members count, and only what moved.
  p.b.leave_group();
  wrote = read = false;
  net::async_write(p.a, net::buffer(out.data(), 100),
                   [&](error_code, std::size_t) { wrote = true; });
  net::async_read(p.b, net::buffer(in.data(), 100), [&](error_code, std::size_t) { read = true; });
  BOOST_REQUIRE(run_until(ctx, [&] { return wrote && read; }));
  BOOST_TEST(group.totals().written == 100u);
  BOOST_TEST(group.totals().read == 0u);
}

BOOST_AUTO_TEST_CASE(activity_counts_waits_and_askers_per_interval) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(ctx, write_limit(1000, 1000, 1s), clock);
  limited_pair p(ctx), q(ctx);
  p.a.join(group);
  q.a.join(group);
  q.b.join(group); // a member that never asks
  auto none = group.take_activity();
  BOOST_TEST(none.writers == 0u);
  BOOST_TEST(none.write_waits == 0u);

  const std::string out(100, 'w');
  int done = 0;
  auto write = [&](limited_pipe& s) {
    s.async_write_some(net::buffer(out), [&](error_code ec, std::size_t) {
      BOOST_TEST(!ec);
      ++done;
    });
  };
  write(p.a); // served at once from the tick's worth at hand
  BOOST_REQUIRE(run_until(ctx, [&] { return done == 1; }));
  group.decrement_write_limit(1000); // none left: the next ones wait
  write(p.a);
  write(q.a);
  ctx.poll();
  BOOST_TEST(done == 1);
  auto busy = group.take_activity();
  BOOST_TEST(busy.writers == 2u); // p.a once, though it asked twice
  BOOST_TEST(busy.write_waits == 2u);
  BOOST_TEST(busy.readers == 0u);
  BOOST_TEST(busy.read_waits == 0u);
  // A new interval: the waiters asked in the last one.
  auto next = group.take_activity();
  BOOST_TEST(next.writers == 0u);
  BOOST_TEST(next.write_waits == 0u);
  clock.advance(2s);
  BOOST_TEST(run_until(ctx, [&] { return done == 3; }));
}

BOOST_AUTO_TEST_CASE(size_follows_membership) {
  net::io_context ctx;
  sluice::rate_limit_group g1(ctx.get_executor(), write_limit(100, 100, 1s));
  sluice::rate_limit_group g2(ctx.get_executor(), write_limit(100, 100, 1s));
  BOOST_TEST(g1.size() == 0u);
  limited_pair p(ctx);
  auto q = std::make_unique<limited_pair>(ctx);
  BOOST_TEST(p.a.group() == nullptr);
  p.a.join(g1);
  p.b.join(g1);
  q->a.join(g1);
  BOOST_TEST(g1.size() == 3u);
  BOOST_TEST(p.a.group() == &g1);
  p.a.join(g1); // already a member
  BOOST_TEST(g1.size() == 3u);
  p.b.join(g2); // leaves g1
  BOOST_TEST(g1.size() == 2u);
  BOOST_TEST(g2.size() == 1u);
  BOOST_TEST(p.b.group() == &g2);
  p.a.leave_group();
  BOOST_TEST(g1.size() == 1u);
  BOOST_TEST(p.a.group() == nullptr);
  p.a.leave_group(); // not a member: nothing
  BOOST_TEST(g1.size() == 1u);
  q.reset(); // a member's destruction leaves
  BOOST_TEST(g1.size() == 0u);
  p.a.join(g1);
  BOOST_TEST(g1.size() == 1u);
  {
    sluice::rate_limit_group g3(ctx.get_executor(), write_limit(100, 100, 1s));
    p.a.join(g3);
    p.b.join(g3);
    BOOST_TEST(g1.size() == 0u);
    BOOST_TEST(g2.size() == 0u);
    BOOST_TEST(g3.size() == 2u);
  }
  BOOST_TEST(p.a.group() == nullptr); // g3 is gone
  BOOST_TEST(p.b.group() == nullptr);
  p.a.join(g2);
  BOOST_TEST(g2.size() == 1u);
  BOOST_TEST(p.a.group() == &g2);
}

BOOST_AUTO_TEST_CASE(min_share_sets_the_smallest_grant) {
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(100, 100, 24h));
  std::vector<std::unique_ptr<limited_pair>> members;
  for (int i = 0; i < 4; ++i) {
    members.push_back(std::make_unique<limited_pair>(ctx));
    members.back()->a.join(group);
  }
  auto& s = members.front()->a;
  BOOST_TEST(s.max_to_write() == 64); // 100 / 4 is below the default min share
  group.set_min_share(10);
  BOOST_TEST(s.max_to_write() == 25);
  group.set_min_share(1000);
  BOOST_TEST(s.max_to_write() == 100); // never more than the bucket holds
  group.set_min_share(20);
  std::string out(1000, 'm');
  bool done = false;
  std::size_t moved = 0;
  s.async_write_some(net::buffer(out), [&](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    moved = n;
    done = true;
  });
  BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
  BOOST_TEST(moved == 25u);
  BOOST_TEST(group.write_limit() == 75);
}

BOOST_AUTO_TEST_CASE(taking_at_once_never_beats_waiting_for_a_refill) {
  // A refill shares half the burst (here 500) among the waiters: 250 each of two. A member
  // that finds the queue empty takes no more than that, though 300 are there.
  net::io_context ctx;
  sluice::rate_limit_group group(ctx.get_executor(), write_limit(1000, 1000, 24h));
  limited_pair first(ctx), second(ctx);
  first.a.join(group);
  second.a.join(group);
  group.decrement_write_limit(700);
  BOOST_TEST(group.write_limit() == 300);
  BOOST_TEST(first.a.max_to_write() == 250);
  group.decrement_write_limit(-700); // full: a full bucket is shared out as it is
  BOOST_TEST(first.a.max_to_write() == 500);
}

BOOST_AUTO_TEST_CASE(overdrawn_group_holds_members_until_repaid) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(ctx, write_limit(1000, 1000, 100ms), clock); // 10 KB/s
  limited_pair p(ctx);
  p.a.join(group);
  group.decrement_write_limit(4000); // -3000
  std::string out(500, 'o'), in(500, '\0');
  bool wrote = false, read = false;
  net::async_write(p.a, net::buffer(out), [&](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 500u);
    wrote = true;
  });
  net::async_read(p.b, net::buffer(in), [&](error_code, std::size_t) { read = true; });
  // The write waits for the debt and its own 500 bytes: 3500 tokens at 10 a millisecond.
  clock.advance(349ms);
  BOOST_TEST(still_not(ctx, [&] { return wrote; }));
  clock.advance(1ms);
  BOOST_REQUIRE(run_until(ctx, [&] { return wrote && read; }));
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_CASE(idle_group_runs_no_timer_and_completes_on_the_members_executor) {
  net::io_context ctx, group_ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(group_ctx.get_executor(), write_limit(1000, 1000, 50ms), clock);
  limited_pair p(ctx);
  p.a.join(group);
  const std::string out(2500, 'i');
  std::string in(out.size(), '\0');
  bool wrote = false, read = false, on_member_ctx = false;
  net::async_write(p.a, net::buffer(out), [&](error_code ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == out.size());
    on_member_ctx = ctx.get_executor().running_in_this_thread() &&
                    !group_ctx.get_executor().running_in_this_thread();
    wrote = true;
  });
  net::async_read(p.b, net::buffer(in), [&](error_code, std::size_t) { read = true; });
  ctx.poll(); // the first 1000 go; the rest waits in the group's queue, on its timer
  group_ctx.poll();
  BOOST_TEST(!group_ctx.stopped()); // a timer is armed
  auto deadline = clock_type::now() + 5s;
  while (!(wrote && read) && clock_type::now() < deadline) {
    clock.advance(5ms);
    ctx.restart();
    group_ctx.restart();
    ctx.run_for(1ms);
    group_ctx.run_for(1ms);
  }
  BOOST_REQUIRE(wrote);
  BOOST_REQUIRE(read);
  BOOST_TEST(on_member_ctx);
  BOOST_TEST((in == out));
  group_ctx.restart();
  group_ctx.poll();
  BOOST_TEST(group_ctx.stopped()); // nobody waits: no timer, no work
  BOOST_TEST(group.totals().written == out.size());
}

// --- Fair sharing ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(equal_demand_gets_equal_shares) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  // 40 KB/s in ticks of 50 ms: a refill is half the burst, 1000 bytes every 25 ms.
  sluice::rate_limit_group group(ctx, write_limit(2000, 2000, 50ms), clock);
  std::vector<std::unique_ptr<flat_out_writer>> writers;
  for (int i = 0; i < 4; ++i) {
    writers.push_back(std::make_unique<flat_out_writer>(ctx, clock));
    writers.back()->ends.a.join(group);
  }
  // The first tick's worth, then 40 refills in one virtual second, each shared four ways.
  std::uint64_t total = run_flat_out(ctx, clock, group, writers, 25ms, 40);
  BOOST_TEST(total == 2000u + 40 * 1000u);
  BOOST_TEST(group.totals().written == total);
  // Each refill is shared equally; only the first tick's worth, taken at once by members
  // arriving one after another, was not (500, 375, ...).
  for (auto& w : writers) {
    BOOST_TEST_MESSAGE("  " << w->written);
    BOOST_TEST(w->written >= total / 4 - 500);
    BOOST_TEST(w->written <= total / 4 + 500);
  }
}

BOOST_AUTO_TEST_CASE(unequal_demand_is_max_min_fair) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(ctx, write_limit(2000, 2000, 50ms), clock); // 40 KB/s
  std::vector<std::unique_ptr<flat_out_writer>> writers;
  for (int i = 0; i < 4; ++i) {
    writers.push_back(std::make_unique<flat_out_writer>(ctx, clock));
    writers.back()->ends.a.join(group);
  }
  writers[0]->ends.a.set_rate_limit(write_limit(400, 400, 100ms)); // 4 KB/s of its own
  // Two virtual seconds: the group allows 2000 + 80,000, the slow member 400 + 8000 of it.
  std::uint64_t total = run_flat_out(ctx, clock, group, writers, 25ms, 80);
  const double slow = static_cast<double>(writers[0]->written);
  BOOST_TEST_MESSAGE("limited member " << slow << ", total " << total);
  BOOST_TEST(slow <= 8400);
  BOOST_TEST(slow >= 8400 - 200); // at most one half-tick chunk short
  BOOST_TEST(total <= 82000u);
  BOOST_TEST(total >= 82000u - 1000); // at most one refill short
  // The others share what the slow one leaves, equally.
  const double rest = (static_cast<double>(total) - slow) / 3;
  for (std::size_t i = 1; i < writers.size(); ++i) {
    double got = static_cast<double>(writers[i]->written);
    BOOST_TEST_MESSAGE("  member " << i << ": " << got);
    BOOST_TEST(got >= rest - 500);
    BOOST_TEST(got <= rest + 500);
  }
}

BOOST_AUTO_TEST_CASE(idle_members_do_not_dilute_the_waiting_ones) {
  // A refill is shared among the members that wait; a thousand idle ones change nothing.
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(ctx, write_limit(2000, 2000, 50ms), clock); // 40 KB/s
  std::vector<std::unique_ptr<limited_pair>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<limited_pair>(ctx));
    idle.back()->a.join(group);
  }
  std::vector<std::unique_ptr<flat_out_writer>> writers;
  for (int i = 0; i < 2; ++i) {
    writers.push_back(std::make_unique<flat_out_writer>(ctx, clock));
    writers.back()->ends.a.join(group);
  }
  BOOST_TEST(group.size() == 1002u);
  std::uint64_t total = run_flat_out(ctx, clock, group, writers, 25ms, 40);
  BOOST_TEST_MESSAGE("2 active of 1002: " << writers[0]->written << " + " << writers[1]->written);
  BOOST_TEST(total == 2000u + 40 * 1000u);
  BOOST_TEST(writers[0]->written >= total / 2 - 500); // the first tick's worth aside, equal
  BOOST_TEST(writers[0]->written <= total / 2 + 500);
  idle.clear();
  BOOST_TEST(group.size() == 2u);
}
