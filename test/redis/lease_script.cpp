// The lease script's arithmetic, through a real redis-server: max-min water levels (and how
// often they are computed), weights, the debt bound, expiry, idempotent replays, epochs and
// config versions.
#include <boost/test/unit_test.hpp>

#include <sluice/detail/redis/lease_store.hpp>

#include <boost/asio.hpp>

#include <sluice_test/redis_server.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace net = boost::asio;
using namespace std::chrono_literals;
using sluice::redis::detail::lease_grant;
using sluice::redis::detail::lease_request;
using sluice::redis::detail::lease_store;
using sluice_test::run_until;

namespace {

struct require_redis {
  require_redis() { sluice_test::redis_server::require(); }
};

constexpr std::uint64_t R = 20'000'000; // bytes per second
constexpr double unbounded = -1;

/// The name of member `i` (built up, not concatenated: GCC 12 warns falsely on "m" + string).
std::string member(std::size_t i) {
  std::string name = std::to_string(i);
  name.insert(name.begin(), 'm');
  return name;
}

/// A store on a fresh server, and members that renew through it.
struct store_fixture {
  sluice_test::redis_server server;
  net::io_context ctx;
  sluice::redis::client client{ctx.get_executor(), server.address()};
  lease_store store{client};
  std::uint64_t seq = 0;

  lease_request request(const std::string& member, double demand, double weight = 1) {
    lease_request q;
    q.member = member;
    q.seq = ++seq;
    q.demand = demand;
    q.weight = weight;
    q.rate = R;
    q.burst = R / 5;
    q.lease_us = 200'000;
    q.ttl_us = 1'000'000;
    q.version = 1;
    return q;
  }

  lease_store::outcome run(const lease_request& q, const std::string& group = "g") {
    std::optional<lease_store::outcome> out;
    store.async_lease({sluice::redis::detail::lease_keys(group, "write")}, {q},
                      [&](lease_store::outcome o) { out = std::move(o); });
    BOOST_REQUIRE(run_until(ctx, [&] { return out.has_value(); }));
    BOOST_REQUIRE_MESSAGE(!out->ec, out->ec.message());
    return *out;
  }

  lease_grant renew(const lease_request& q, const std::string& group = "g") {
    auto out = run(q, group);
    BOOST_REQUIRE_MESSAGE(out.error.empty(), out.error);
    BOOST_REQUIRE(out.grants.size() == 1u);
    return out.grants[0];
  }

  /// Every member renews twice (the first round only registers their demands); returns
  /// the second round's grants.
  std::vector<lease_grant> settle(const std::vector<double>& demands,
                                  const std::vector<double>& weights = {}) {
    std::vector<lease_grant> grants;
    for (int round = 0; round < 2; ++round) {
      grants.clear();
      for (std::size_t i = 0; i < demands.size(); ++i)
        grants.push_back(renew(request(member(i), demands[i], weights.empty() ? 1 : weights[i])));
    }
    return grants;
  }

  std::string hget(const std::string& key, const std::string& field) {
    std::optional<std::string> value;
    client.async_exec({{"HGET", key, field}},
                      [&](boost::system::error_code, std::vector<sluice::redis::reply> r) {
                        value = r.empty() ? "" : r[0].str;
                      });
    BOOST_REQUIRE(run_until(ctx, [&] { return value.has_value(); }));
    return *value;
  }
};

/// Within `tolerance` (relative) of `expected`.
bool near(double value, double expected, double tolerance) {
  return std::abs(value - expected) <= tolerance * expected;
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(require_redis);

BOOST_AUTO_TEST_SUITE(lease_script)

// Between two renewals the bucket refills by rate x (time between calls): on a loaded
// machine that is a few ms, which moves a share by well under 2 %.
BOOST_FIXTURE_TEST_CASE(a_lone_member_gets_the_rate_from_an_empty_bucket, store_fixture) {
  auto g = renew(request("a", unbounded));
  BOOST_TEST(near(static_cast<double>(g.rate), R, 0.02));
  BOOST_TEST(g.members == 1u);
  BOOST_TEST(g.safe_share == R);
  BOOST_TEST(g.lease_end_us == g.now_us + 200'000);
  BOOST_TEST(g.epoch > 0);
}

BOOST_FIXTURE_TEST_CASE(equal_demands_get_equal_shares, store_fixture) {
  auto grants = settle({unbounded, unbounded, unbounded, unbounded});
  for (const auto& g : grants) {
    BOOST_TEST(near(static_cast<double>(g.rate), R / 4.0, 0.02), g.rate);
    BOOST_TEST(g.members == 4u);
    BOOST_TEST(g.safe_share == R / 4);
  }
}

BOOST_FIXTURE_TEST_CASE(mixed_demands_get_max_min_shares, store_fixture) {
  auto grants = settle({2e6, 4e6, unbounded, unbounded});
  BOOST_TEST(grants[0].rate == 2'000'000u);
  BOOST_TEST(grants[1].rate == 4'000'000u);
  BOOST_TEST(near(static_cast<double>(grants[2].rate), 7e6, 0.02), grants[2].rate);
  BOOST_TEST(near(static_cast<double>(grants[3].rate), 7e6, 0.02), grants[3].rate);
}

BOOST_FIXTURE_TEST_CASE(weights_divide_the_rate, store_fixture) {
  auto grants = settle({unbounded, unbounded, unbounded}, {2, 1, 1});
  BOOST_TEST(near(static_cast<double>(grants[0].rate), 10e6, 0.02), grants[0].rate);
  BOOST_TEST(near(static_cast<double>(grants[1].rate), 5e6, 0.02), grants[1].rate);
  BOOST_TEST(near(static_cast<double>(grants[2].rate), 5e6, 0.02), grants[2].rate);
  BOOST_TEST(grants[0].safe_share == R / 2);
}

BOOST_FIXTURE_TEST_CASE(when_every_demand_is_met_the_rest_goes_by_weight, store_fixture) {
  auto grants = settle({2e6, 3e6});
  BOOST_TEST(near(static_cast<double>(grants[0].rate), 2e6 + 7.5e6, 0.02), grants[0].rate);
  BOOST_TEST(near(static_cast<double>(grants[1].rate), 3e6 + 7.5e6, 0.02), grants[1].rate);
}

// Latecomers find the bucket owing the first member's lease: the grant is cut so that it
// never owes more than one lease, and the shares even out as leases are renewed.
BOOST_FIXTURE_TEST_CASE(the_bucket_never_owes_more_than_one_lease, store_fixture) {
  const auto keys = sluice::redis::detail::lease_keys("g", "write");
  for (int round = 0; round < 5; ++round)
    for (int i = 0; i < 8; ++i) {
      auto g = renew(request(member(static_cast<std::size_t>(i)), unbounded));
      double tokens = std::stod(hget(keys[0], "tokens"));
      BOOST_TEST(tokens >= -(R * 0.2) - 1, "round " << round << ": " << tokens);
      if (round == 0 && i > 0)
        BOOST_TEST(g.rate < R / 8); // the first one holds the lease
    }
}

// After an outage the members ran on held shares: the bucket must not pay the silence out
// again as a burst. A silence of more than two leases refills it to empty at most.
BOOST_FIXTURE_TEST_CASE(a_silence_refills_the_bucket_no_further_than_empty, store_fixture) {
  const auto keys = sluice::redis::detail::lease_keys("g", "write");
  auto short_lease = [&](const std::string& m) {
    auto q = request(m, unbounded);
    q.lease_us = 20'000;
    return q;
  };
  renew(short_lease("a"));
  renew(short_lease("b"));
  net::steady_timer silence(ctx, 150ms); // the outage: longer than two leases
  silence.wait();
  auto g = renew(short_lease("a"));
  const double tokens = std::stod(hget(keys[0], "tokens"));
  // Before the grant took its lease the bucket held at most 0 (a refill of the 150 ms would
  // have left it at 3 MB).
  BOOST_TEST(tokens + static_cast<double>(g.rate) * 0.02 <= 1.0, tokens);
  BOOST_TEST(std::stod(hget(keys[0], "extra")) < 1.0);
}

// The walk over the members that computes the water level is done at most every quarter
// lease: a member's new demand sets its own share at once, the others' within a quarter lease.
BOOST_FIXTURE_TEST_CASE(a_demand_change_reaches_the_others_within_a_quarter_lease, store_fixture) {
  settle({unbounded, unbounded});
  const auto a = renew(request(member(0), 2e6));
  BOOST_TEST(a.rate == 2'000'000u);
  lease_grant b;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  do // back to back, as fast as the store answers: Redis's clock moves meanwhile
    b = renew(request(member(1), unbounded));
  while (b.rate < 0.9 * (R - 2e6) && std::chrono::steady_clock::now() < deadline);
  BOOST_TEST(b.rate >= 0.9 * (R - 2e6), b.rate);
  BOOST_TEST(b.now_us - a.now_us <= 50'000 + 25'000); // a quarter lease, and a slow call
}

// Members that come or go change every share: the level is computed again at once.
BOOST_FIXTURE_TEST_CASE(a_newcomer_and_a_release_are_counted_at_once, store_fixture) {
  settle({unbounded, unbounded});
  BOOST_TEST(renew(request(member(2), unbounded)).members == 3u);
  auto a = renew(request(member(0), unbounded));
  BOOST_TEST(a.members == 3u);
  BOOST_TEST(a.safe_share == R / 3);
  BOOST_TEST(static_cast<double>(a.rate) <= R / 3.0 * 1.05, a.rate);
  auto q = request(member(2), unbounded);
  q.release = true;
  renew(q);
  a = renew(request(member(0), unbounded));
  BOOST_TEST(a.members == 2u);
  BOOST_TEST(a.safe_share == R / 2);
}

BOOST_FIXTURE_TEST_CASE(a_repeated_seq_replays_the_stored_answer, store_fixture) {
  auto q = request("a", unbounded);
  auto first = renew(q);
  auto again = renew(q);
  BOOST_TEST(again.now_us == first.now_us);
  BOOST_TEST(again.rate == first.rate);
  q.seq = ++seq;
  BOOST_TEST(renew(q).now_us > first.now_us);
}

BOOST_FIXTURE_TEST_CASE(a_silent_member_expires_and_its_share_returns, store_fixture) {
  auto ttl_request = [&](const std::string& m) {
    auto q = request(m, unbounded);
    q.ttl_us = 300'000;
    return q;
  };
  renew(ttl_request("a"));
  renew(ttl_request("b"));
  BOOST_TEST(renew(ttl_request("a")).members == 2u);
  // Only a renews from here on; b expires once 300 ms of Redis time have passed.
  lease_grant g;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    g = renew(ttl_request("a"));
    net::steady_timer wait(ctx, 50ms);
    wait.wait(); // a renewal period, as a member would wait
  } while (g.members != 1 && std::chrono::steady_clock::now() < deadline);
  BOOST_TEST(g.members == 1u);
  BOOST_TEST(g.rate >= R * 0.98);
}

BOOST_FIXTURE_TEST_CASE(a_release_leaves_at_once, store_fixture) {
  settle({unbounded, unbounded});
  auto q = request("m1", unbounded);
  q.release = true;
  auto r = renew(q);
  BOOST_TEST(r.rate == 0u);
  BOOST_TEST(r.members == 1u);
  auto g = renew(request("m0", unbounded));
  BOOST_TEST(g.members == 1u);
  BOOST_TEST(g.rate >= R * 0.98); // m1's undelivered lease came back
}

BOOST_FIXTURE_TEST_CASE(the_epoch_changes_when_the_store_loses_its_state, store_fixture) {
  auto before = renew(request("a", unbounded));
  std::optional<bool> flushed;
  client.async_exec({{"FLUSHALL"}}, [&](auto ec, auto) { flushed = !ec; });
  BOOST_REQUIRE(run_until(ctx, [&] { return flushed.has_value(); }));
  auto after = renew(request("a", unbounded));
  BOOST_TEST(after.epoch != before.epoch);
  // A restart loses the scripts as well: NOSCRIPT, loaded again, transparently.
  server.kill();
  server.start();
  std::optional<lease_store::outcome> out;
  for (int attempt = 0; attempt < 3 && !(out && !out->ec); ++attempt) {
    out.reset();
    store.async_lease({sluice::redis::detail::lease_keys("g", "write")}, {request("a", unbounded)},
                      [&](lease_store::outcome o) { out = std::move(o); });
    BOOST_REQUIRE(run_until(ctx, [&] { return out.has_value(); }));
  }
  BOOST_TEST_REQUIRE(!out->ec);
  BOOST_TEST_REQUIRE(out->error.empty());
  BOOST_TEST(out->grants.at(0).epoch != after.epoch);
}

BOOST_FIXTURE_TEST_CASE(noscript_is_retried_with_the_script_loaded_again, store_fixture) {
  renew(request("a", unbounded));
  std::optional<bool> flushed;
  client.async_exec({{"SCRIPT", "FLUSH"}}, [&](auto ec, auto) { flushed = !ec; });
  BOOST_REQUIRE(run_until(ctx, [&] { return flushed.has_value(); }));
  BOOST_TEST(renew(request("a", unbounded)).members == 1u);
}

BOOST_FIXTURE_TEST_CASE(the_config_with_the_highest_version_wins, store_fixture) {
  auto q = request("a", unbounded);
  q.version = 2;
  q.rate = 2 * R;
  q.burst = 2 * R / 5;
  renew(q);
  auto old = request("b", unbounded);
  old.version = 1; // an older config: the stored one is used
  auto g = renew(old);
  BOOST_TEST(g.version == 2u);
  BOOST_TEST(g.safe_share == R); // 2R over two members
}

BOOST_FIXTURE_TEST_CASE(bad_arguments_and_group_names_are_refused, store_fixture) {
  auto q = request("a", unbounded);
  q.weight = 0;
  auto out = run(q);
  BOOST_TEST(out.grants.empty());
  BOOST_TEST(out.error.find("weight") != std::string::npos, out.error);
  BOOST_CHECK_THROW(sluice::redis::detail::lease_keys("a{b", "write"), std::invalid_argument);
  BOOST_CHECK_THROW(sluice::redis::detail::lease_keys("", "write"), std::invalid_argument);
  BOOST_TEST(sluice::redis::detail::lease_keys("t1", "read")[0] == "{sluice:t1}:read:bucket");
}

// Out of memory, Redis refuses what writes. The renewal fails, as any store failure does,
// and the process holds its last share; a grant then would let every member count only
// itself once the others expired, and take the whole rate.
BOOST_FIXTURE_TEST_CASE(a_store_out_of_memory_refuses_the_call_whole, store_fixture) {
  auto config = [&](const std::string& name, const std::string& value) {
    bool done = false;
    client.async_exec(
        {{"CONFIG", "SET", name, value}},
        [&](boost::system::error_code, std::vector<sluice::redis::reply>) { done = true; });
    BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
  };
  config("maxmemory-policy", "noeviction");
  config("maxmemory", "1");
  auto refused = run(request("a", unbounded)); // a new group: the script's first call is a DEL
  BOOST_TEST(refused.error.find("OOM") != std::string::npos, refused.error);
  BOOST_TEST(refused.grants.empty());
  BOOST_TEST(hget("{sluice:g}:write:bucket", "tokens").empty()); // nothing written
  config("maxmemory", "0");
  BOOST_TEST(near(static_cast<double>(renew(request("a", unbounded)).rate), R, 0.02));
}

BOOST_AUTO_TEST_SUITE_END()
