// sluice::redis::shared_group in one process: grants applied to the local group, shares
// split between two groups, a release, the startup share, a frozen or missing store and the
// failure policies, and the learning mode after the store loses its state.
#include <boost/test/unit_test.hpp>

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

void flush_all(net::io_context& ctx, const std::string& store) {
  sluice::redis::client c(ctx.get_executor(), store);
  bool done = false;
  c.async_exec({{"FLUSHALL"}}, [&](auto ec, auto) {
    BOOST_TEST(!ec);
    done = true;
  });
  BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
}

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

BOOST_AUTO_TEST_SUITE_END()
