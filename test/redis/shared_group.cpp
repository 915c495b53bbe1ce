// sluice::redis::shared_group in one process: grants applied to the local group, shares
// split between two groups, a release, the startup share, a frozen or missing store and the
// failure policies, and the learning mode after the store loses its state.
#include <boost/test/unit_test.hpp>

#include <sluice/rate_limit.hpp>
#include <sluice/redis/client.hpp>
#include <sluice/redis/shared_group.hpp>

#include <boost/asio.hpp>

#include <sluice_test/flat_out.hpp>
#include <sluice_test/redis_server.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace net = boost::asio;
using namespace std::chrono_literals;
using sluice::redis::shared_group;
using sluice_test::run_until;

namespace {

struct require_redis {
  require_redis() { sluice_test::redis_server::require(); }
};

constexpr std::uint64_t R = 4'000'000; // bytes per second

sluice::redis::shared_group_options options(const std::string& store) {
  sluice::redis::shared_group_options o;
  o.store = store;
  o.name = "test";
  o.write_rate = R;
  return o;
}

bool near(std::uint64_t value, double expected, double tolerance) {
  return std::abs(static_cast<double>(value) - expected) <= tolerance * expected;
}

/// Virtual time for the loop: moves `clock` in steps of 5 ms (half a tick of the local
/// buckets, so that a step missed by a waiter loses nothing), running what each step makes due
/// (waiters on a manual clock look at it every millisecond of real time), until `done()` holds
/// or `most` has passed. Returns whether `done()` held.
template <class Pred>
bool pass_until(net::io_context& ctx, sluice::manual_rate_clock& clock,
                std::chrono::nanoseconds most, Pred done) {
  for (std::chrono::nanoseconds t{0}; t < most && !done(); t += 5ms) {
    clock.advance(5ms);
    ctx.restart();
    ctx.run_for(2ms);
  }
  return done();
}

void pass(net::io_context& ctx, sluice::manual_rate_clock& clock, std::chrono::nanoseconds d) {
  pass_until(ctx, clock, d, [] { return false; });
}

void flush_all(net::io_context& ctx, const std::string& store) {
  sluice::redis::client c(ctx.get_executor(), store);
  bool done = false;
  c.async_exec({{"FLUSHALL"}}, [&](auto ec, auto) {
    BOOST_TEST(!ec);
    done = true;
  });
  BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
}

/// A member on virtual time: the loop and the buckets read a manual clock, the store answers
/// in real time. Lease 2 s: a call every second, a look at the demand half a second after each
/// call. Its writer is not started.
struct virtual_time_member {
  static sluice::redis::shared_group_options slow_lease(sluice::redis::shared_group_options o) {
    o.lease = 2s;
    o.ttl = 20s;
    o.hold = 60s;
    return o;
  }
  virtual_time_member() { writer.set_clock(clock); }

  sluice_test::redis_server server;
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  shared_group fleet{ctx, slow_lease(options(server.address())), clock};
  sluice_test::flat_out_writer writer{ctx, fleet.group()};
};

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(require_redis);

BOOST_AUTO_TEST_SUITE(shared_group_suite)

BOOST_AUTO_TEST_CASE(options_are_validated_with_the_field_named) {
  net::io_context ctx;
  auto refused = [&](sluice::redis::shared_group_options o, const std::string& field) {
    try {
      shared_group g(ctx, o);
      BOOST_ERROR("accepted; expected a complaint about " << field);
    } catch (const std::invalid_argument& e) {
      BOOST_TEST(std::string(e.what()).find(field) != std::string::npos, e.what());
    }
  };
  auto o = options("unix:/tmp/x.sock");
  refused(
      [&] {
        auto b = o;
        b.store = "tcp://h:1";
        return b;
      }(),
      "tcp://h:1");
  refused(
      [&] {
        auto b = o;
        b.name = "a{b}";
        return b;
      }(),
      "a{b}");
  refused(
      [&] {
        auto b = o;
        b.write_rate = sluice::unlimited;
        return b;
      }(),
      "nothing to share");
  refused(
      [&] {
        auto b = o;
        b.lease = 5ms;
        return b;
      }(),
      "lease");
  refused(
      [&] {
        auto b = o;
        b.ttl = 300ms;
        return b;
      }(),
      "ttl");
  refused(
      [&] {
        auto b = o;
        b.write_burst = 1000;
        return b;
      }(),
      "write_burst");
  refused(
      [&] {
        auto b = o;
        b.weight = -1;
        return b;
      }(),
      "weight");
}

BOOST_AUTO_TEST_CASE(a_lone_process_is_granted_the_fleet_rate) {
  sluice_test::redis_server server;
  net::io_context ctx;
  shared_group fleet(ctx, options(server.address()));
  sluice_test::flat_out_writer writer(ctx, fleet.group());
  writer.start();
  BOOST_TEST(fleet.status().write_rate == 0u); // no startup share unless asked for
  BOOST_TEST(fleet.status().read_rate == sluice::unlimited);
  BOOST_TEST(run_until(ctx, [&] { return fleet.status().renewals >= 5; }));
  auto s = fleet.status();
  BOOST_TEST(near(s.write_rate, R, 0.05), s.write_rate);
  BOOST_TEST((s.state == shared_group::mode::leased));
  BOOST_TEST(s.connected);
  BOOST_TEST(s.members == 1u);
  BOOST_TEST(s.epoch > 0);
  BOOST_TEST(near(fleet.group().config().write_rate * 1'000'000'000.0 /
                      static_cast<double>(fleet.group().config().tick.count()),
                  static_cast<double>(s.write_rate), 0.01));
  BOOST_TEST(fleet.member().find(std::to_string(::getpid())) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(two_processes_split_the_rate_and_a_release_returns_it_at_once) {
  sluice_test::redis_server server;
  net::io_context ctx;
  auto o = options(server.address());
  o.ttl = 10s; // a share that comes back sooner came back by the release
  shared_group a(ctx, o);
  auto b = std::make_unique<shared_group>(ctx, o);
  sluice_test::flat_out_writer wa(ctx, a.group());
  auto wb = std::make_unique<sluice_test::flat_out_writer>(ctx, b->group());
  wa.start();
  wb->start();
  BOOST_TEST(run_until(ctx, [&] {
    return near(a.status().write_rate, R / 2.0, 0.1) &&
           near(b->status().write_rate, R / 2.0, 0.1) && a.status().members == 2;
  }));
  wb.reset();
  b.reset();
  const auto left = std::chrono::steady_clock::now();
  BOOST_TEST(run_until(
      ctx, [&] { return a.status().members == 1 && near(a.status().write_rate, R, 0.1); }));
  BOOST_TEST(sluice_test::seconds(std::chrono::steady_clock::now() - left) < 5.0);
}

BOOST_AUTO_TEST_CASE(status_may_be_read_while_the_loop_runs_on_another_thread) {
  sluice_test::redis_server server;
  net::io_context ctx;
  auto guard = net::make_work_guard(ctx);
  std::thread runner([&] { ctx.run(); });
  {
    shared_group fleet(ctx, options(server.address()));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (fleet.status().renewals < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield(); // polling a condition, bounded
    BOOST_TEST(fleet.status().renewals >= 3u);
    BOOST_TEST(fleet.group().config().write_rate < sluice::unlimited);
  }
  guard.reset();
  runner.join();
}

BOOST_AUTO_TEST_CASE(a_missing_store_leaves_the_startup_share_then_the_policy) {
  net::io_context ctx;
  auto o = options("unix:/nonexistent/sluice-redis.sock");
  o.startup_write_rate = 1'000'000;
  o.hold = 300ms;
  o.on_failure = sluice::redis::failure_policy::closed;
  shared_group closed(ctx, o);
  o.name = "other";
  o.on_failure = sluice::redis::failure_policy::open;
  shared_group open(ctx, o);
  BOOST_TEST(closed.status().write_rate == 1'000'000u);
  BOOST_TEST((closed.status().state == shared_group::mode::starting));
  BOOST_TEST(run_until(ctx, [&] { return closed.status().failures >= 1; }));
  BOOST_TEST(!closed.status().last_error.empty());
  BOOST_TEST(!closed.status().connected);
  BOOST_TEST(closed.status().write_rate == 1'000'000u); // held until `hold` has passed
  BOOST_TEST(run_until(ctx, [&] {
    return closed.status().state == shared_group::mode::fallback &&
           open.status().state == shared_group::mode::fallback;
  }));
  BOOST_TEST(closed.status().write_rate == 0u);
  BOOST_TEST(closed.group().config().write_rate * 1'000'000'000.0 /
                 static_cast<double>(closed.group().config().tick.count()) <=
             101.0); // the trickle
  BOOST_TEST(open.status().write_rate == sluice::unlimited);
  BOOST_TEST(open.group().config().write_rate == sluice::unlimited);
}

BOOST_AUTO_TEST_CASE(a_frozen_store_holds_the_share_then_falls_back_to_the_safe_share) {
  sluice_test::redis_server server;
  net::io_context ctx;
  auto o = options(server.address());
  o.hold = 600ms;
  o.weight = 3; // safe share: 3 / 4 of R
  shared_group big(ctx, o);
  o.weight = 1;
  o.startup_write_rate = 0;
  std::optional<shared_group> idle(std::in_place, ctx, o); // wants nothing: big gets most
  sluice_test::flat_out_writer writer(ctx, big.group());
  writer.start();
  BOOST_TEST_REQUIRE(run_until(
      ctx, [&] { return big.status().members == 2 && big.status().write_rate > 0.8 * R; }));
  const auto held = big.status().write_rate;
  server.freeze();
  BOOST_TEST(run_until(ctx, [&] { return big.status().state == shared_group::mode::holding; }));
  BOOST_TEST(big.status().write_rate == held);
  BOOST_TEST(run_until(ctx, [&] { return big.status().state == shared_group::mode::fallback; }));
  BOOST_TEST(big.status().write_rate == 3 * R / 4);
  server.thaw();
  BOOST_TEST(run_until(ctx, [&] { return big.status().state == shared_group::mode::leased; }));
  BOOST_TEST(big.status().connected);
  idle.reset();
}

BOOST_AUTO_TEST_CASE(a_store_that_lost_its_state_is_seen_and_shares_are_capped_while_learning) {
  sluice_test::redis_server server;
  net::io_context ctx;
  auto o = options(server.address());
  shared_group a(ctx, o), b(ctx, o);
  sluice_test::flat_out_writer wa(ctx, a.group()), wb(ctx, b.group());
  wa.start();
  wb.start();
  BOOST_TEST_REQUIRE(
      run_until(ctx, [&] { return a.status().members == 2 && b.status().members == 2; }));
  const auto epoch = a.status().epoch;
  flush_all(ctx, server.address());
  bool learned = false;
  std::uint64_t most = 0;
  BOOST_TEST(run_until(ctx, [&] {
    for (shared_group* g : {&a, &b})
      if (auto s = g->status(); s.state == shared_group::mode::learning)
        most = std::max(most, s.write_rate);
    learned = learned || a.status().state == shared_group::mode::learning;
    return learned && a.status().state == shared_group::mode::leased;
  }));
  BOOST_TEST(learned);
  BOOST_TEST(a.status().epoch != epoch);
  BOOST_TEST(most <= R / 2); // the safe share: never the whole rate to whoever came back first
}

BOOST_FIXTURE_TEST_CASE(a_demand_that_moves_by_more_than_a_quarter_is_reported_early,
                        virtual_time_member) {
  writer.set_own_rate(400'000); // a tenth of the budget: a finite demand
  writer.start();
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return fleet.status().renewals >= 1; }));
  pass(ctx, clock, 3s); // the first report (unbounded) corrected, the demand steady
  BOOST_TEST_REQUIRE((fleet.status().state == shared_group::mode::leased));
  BOOST_TEST(writer.written() > 1'000'000u);

  // Just after a call, so that the look a quarter lease later sees the new demand alone.
  auto after_a_call = [&] {
    const auto renewals = fleet.status().renewals;
    BOOST_TEST_REQUIRE(
        pass_until(ctx, clock, 2s, [&] { return fleet.status().renewals > renewals; }));
  };
  const auto steady_early = fleet.status().early_renewals;
  after_a_call();
  writer.set_own_rate(440'000); // +10 %
  pass(ctx, clock, 1200ms);     // a look, then the due call
  BOOST_TEST(fleet.status().early_renewals == steady_early);

  after_a_call();
  const auto renewals = fleet.status().renewals;
  writer.set_own_rate(1'600'000); // almost four times as much
  BOOST_TEST(pass_until(ctx, clock, 700ms, [&] {
    return fleet.status().early_renewals > steady_early && fleet.status().renewals > renewals;
  })); // answered before the half lease
  BOOST_TEST(fleet.status().early_renewals == steady_early + 1);
  BOOST_TEST(fleet.status().failures == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_demand_that_swings_all_the_time_costs_at_most_a_call_per_quarter_lease,
                        virtual_time_member) {
  writer.start();
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return fleet.status().renewals >= 1; }));
  pass(ctx, clock, 1s);
  const auto before = fleet.status();
  // The worst case: flat out (waiting for the group: unbounded) and nearly idle by turns, the
  // demand turned over right after every call, 8 s long.
  bool flat_out = true;
  std::chrono::nanoseconds elapsed{0};
  while (elapsed < 8s) {
    flat_out = !flat_out;
    writer.set_own_rate(flat_out ? sluice::unlimited : 10'000);
    const auto renewals = fleet.status().renewals;
    for (auto step = 0ms; step < 2s && fleet.status().renewals == renewals; step += 5ms) {
      pass(ctx, clock, 5ms);
      elapsed += 5ms;
    }
  }
  const auto after = fleet.status();
  const auto calls = after.renewals + after.failures - before.renewals - before.failures;
  const auto early = after.early_renewals - before.early_renewals;
  BOOST_TEST_MESSAGE("a demand turned over after every call, lease 2 s: "
                     << calls << " calls in 8 s, " << early << " of them early");
  // 8 calls on the half-lease schedule; no more than one per quarter lease: 16 (one more for
  // a call in flight at either end).
  BOOST_TEST(early >= 8u);
  BOOST_TEST(calls <= 17u);
}

BOOST_AUTO_TEST_SUITE_END()
