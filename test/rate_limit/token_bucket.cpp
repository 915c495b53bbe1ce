// Exact tests of the token-bucket arithmetic, on a virtual clock.
#include <boost/test/unit_test.hpp>

#include <sluice/detail/rate_limit/token_bucket.hpp>
#include <sluice/rate_limit.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

using sluice::detail::int128;
using sluice::detail::token_bucket;
using namespace std::chrono_literals;
using time_point = token_bucket::clock::time_point;

namespace {
const time_point t0 = time_point{} + 1000h; // any origin: the bucket only sees differences

bool rejects(const sluice::token_bucket_config& cfg, const std::string& field) {
  try {
    cfg.validate();
  } catch (const std::invalid_argument& e) {
    BOOST_TEST_MESSAGE(e.what());
    return std::string(e.what()).find(field) != std::string::npos;
  }
  return false;
}
} // namespace

BOOST_AUTO_TEST_CASE(starts_with_one_tick_and_refills_continuously) {
  token_bucket b(1000, 5000, 100ms, t0); // 10,000 tokens/s
  BOOST_TEST(b.tokens(t0) == 1000);
  b.take(1000, t0);
  BOOST_TEST(b.tokens(t0) == 0);
  BOOST_TEST(b.tokens(t0 + 1ms) == 10);
  BOOST_TEST(b.tokens(t0 + 1ms + 99us) == 10); // 10.99 -> 10
  BOOST_TEST(b.tokens(t0 + 1ms + 100us) == 11);
  BOOST_TEST(b.tokens(t0 + 10s) == 5000); // capped at burst
}

BOOST_AUTO_TEST_CASE(burst_caps_also_after_negative_take) {
  token_bucket b(100, 300, 1s, t0);
  b.take(-10000, t0); // adds tokens: libevent lets this pass burst
  BOOST_TEST(b.tokens(t0) == 300);
  b.take(-1, t0 + 1h);
  BOOST_TEST(b.tokens(t0 + 1h) == 300);
}

BOOST_AUTO_TEST_CASE(give_back_returns_unused_tokens_up_to_the_burst) {
  token_bucket b(100, 300, 1s, t0);
  b.take(100, t0);
  b.give_back(40); // 40 of the 100 were not used
  BOOST_TEST(b.tokens(t0) == 40);
  // The refill since the take counts as it would have without the take: 40 + 150.
  b.take(40, t0);
  b.give_back(0);
  BOOST_TEST(b.tokens(t0 + 1500ms) == 150);
  b.give_back(1000); // never past the burst
  BOOST_TEST(b.tokens(t0 + 1500ms) == 300);
  token_bucket unlimited;
  unlimited.give_back(5);
  BOOST_TEST(unlimited.tokens(t0) == token_bucket::no_limit);
}

BOOST_AUTO_TEST_CASE(overdrawn_bucket_reads_negative_until_repaid) {
  token_bucket b(100, 100, 1s, t0);
  b.take(350, t0);
  BOOST_TEST(b.tokens(t0) == -250);
  BOOST_TEST(b.tokens(t0 + 2s) == -50);
  BOOST_TEST(b.tokens(t0 + 2s + 5ms) == -50); // -49.5 floors to -50, never rounds up to a token
  BOOST_TEST(b.time_until(1, t0 + 2s + 5ms) == 505ms);
  BOOST_TEST(b.tokens(t0 + 2510ms) == 1);
}

BOOST_AUTO_TEST_CASE(time_until_is_exact_and_rounds_up) {
  token_bucket b(3, 3, 1s, t0); // a token every 333,333,333.3 ns
  b.take(3, t0);
  BOOST_TEST(b.time_until(1, t0).count() == 333333334);
  BOOST_TEST(b.tokens(t0 + 333333333ns) == 0);
  BOOST_TEST(b.tokens(t0 + 333333334ns) == 1);
  BOOST_TEST(b.time_until(1, t0 + 333333334ns).count() == 0);
  BOOST_TEST(b.time_until(3, t0 + 333333334ns).count() == 666666666);
}

BOOST_AUTO_TEST_CASE(interval_bound_holds_for_a_greedy_taker) {
  // Take everything whenever at least a token is there, at random instants; in every window
  // the bytes taken stay within initial (or burst) + rate * window / tick.
  const std::int64_t rate = 7, burst = 50;
  const auto tick = 10ms;
  token_bucket b(rate, burst, tick, t0);
  std::mt19937_64 rng(42);
  std::vector<std::pair<time_point, std::int64_t>> taken;
  time_point now = t0;
  for (int i = 0; i < 5000; ++i) {
    now += std::chrono::microseconds(rng() % 30000);
    if (auto n = b.tokens(now); n > 0) {
      b.take(n, now);
      taken.emplace_back(now, n);
    }
  }
  BOOST_REQUIRE(taken.size() > 100);
  for (std::size_t i = 0; i < taken.size(); i += 37) {
    std::int64_t sum = 0;
    for (std::size_t j = i; j < taken.size(); ++j) {
      sum += taken[j].second;
      auto window = std::chrono::duration_cast<std::chrono::nanoseconds>(
          taken[j].first - (i == 0 ? t0 : taken[i].first));
      std::int64_t start = i == 0 ? std::min(rate, burst) : burst;
      BOOST_TEST_REQUIRE(sum <= start + rate * window.count() / tick.count() * 1);
    }
  }
}

BOOST_AUTO_TEST_CASE(unlimited_bucket_is_never_lowered) {
  token_bucket b;
  BOOST_TEST(!b.limited());
  b.take(1'000'000, t0);
  BOOST_TEST(b.tokens(t0) == token_bucket::no_limit);
  BOOST_TEST(b.time_until(1, t0).count() == 0);
}

BOOST_AUTO_TEST_CASE(extremes_do_not_overflow) {
  const std::uint64_t max = std::numeric_limits<std::int64_t>::max();
  token_bucket b(max, max, 24h, t0);
  BOOST_TEST(b.tokens(t0) == static_cast<std::int64_t>(max));
  b.take(std::numeric_limits<std::int64_t>::max(), t0);
  b.take(std::numeric_limits<std::int64_t>::max(), t0); // floors at -INT64_MAX
  BOOST_TEST(b.tokens(t0) == -static_cast<std::int64_t>(max));
  BOOST_TEST(b.tokens(t0 + 24h * 1000) == static_cast<std::int64_t>(max));
  token_bucket slow(1, 1, 24h, t0);
  slow.take(std::numeric_limits<std::int64_t>::max(), t0);
  BOOST_TEST(slow.time_until(1, t0) == std::chrono::nanoseconds::max()); // saturates
}

BOOST_AUTO_TEST_CASE(reconfigure_keeps_whole_tokens) {
  token_bucket b(100, 1000, 1s, t0);
  BOOST_TEST(b.tokens(t0) == 100);
  b.reconfigure(10, 50, 100ms, t0);
  BOOST_TEST(b.tokens(t0) == 50); // capped at the new burst
  BOOST_TEST(b.tokens(t0 + 100ms) == 50);
  b.take(60, t0 + 100ms);
  BOOST_TEST(b.time_until(1, t0 + 100ms) == 110ms); // from -10 to 1 at 10 per 100 ms
}

BOOST_AUTO_TEST_CASE(config_validation_names_the_field) {
  using cfg = sluice::token_bucket_config;
  BOOST_TEST(!rejects(cfg{}, "x")); // all unlimited: valid
  cfg{}.validate();
  cfg::per_second(1000, sluice::unlimited).validate();
  BOOST_TEST(rejects(cfg{.read_rate = 0, .read_burst = 10}, "read_rate"));
  BOOST_TEST(rejects(cfg{.write_rate = 0, .write_burst = 10}, "write_rate"));
  BOOST_TEST(rejects(cfg{.read_rate = 100, .read_burst = 99}, "read_burst"));
  BOOST_TEST(rejects(cfg{.write_rate = 100, .write_burst = 10}, "write_burst"));
  BOOST_TEST(rejects(cfg{.read_rate = 100}, "read_burst"));  // burst left unlimited
  BOOST_TEST(rejects(cfg{.read_burst = 100}, "read_burst")); // burst without a rate
  BOOST_TEST(rejects(cfg{.tick = 0ns}, "tick"));
  BOOST_TEST(rejects(cfg{.tick = -1ms}, "tick"));
  BOOST_TEST(rejects(cfg{.tick = 25h}, "tick"));
  // libevent's ratelimit_overflow: values past the signed 64-bit levels.
  const std::uint64_t big = std::uint64_t(1) << 63;
  BOOST_TEST(rejects(cfg{.read_rate = big, .read_burst = big}, "read_rate"));
  BOOST_TEST(rejects(cfg{.write_rate = 1, .write_burst = big}, "write_burst"));
}

BOOST_AUTO_TEST_CASE(per_second_is_smooth_and_exact) {
  using cfg = sluice::token_bucket_config;
  // Round figures: a 10 ms tick or the nearest that holds whole bytes, a burst of two ticks.
  cfg c = cfg::per_second(100 * 1024, 1000000);
  BOOST_TEST(c.tick == 10ms);
  BOOST_TEST(c.read_rate == 1024u);
  BOOST_TEST(c.read_burst == 2048u);
  BOOST_TEST(c.write_rate == 10000u);
  BOOST_TEST(c.write_burst == 20000u);
  c = cfg::per_second(1 << 20, 100 * 1024); // 1 MiB/s: 10240 bytes per 9.765625 ms
  BOOST_TEST(c.tick == 9765625ns);
  BOOST_TEST(c.read_rate == 10240u);
  BOOST_TEST(c.write_rate == 1000u);
  c = cfg::per_second(sluice::unlimited, 3); // slow: one byte at a time
  BOOST_TEST(c.read_rate == sluice::unlimited);
  BOOST_TEST(c.read_burst == sluice::unlimited);
  BOOST_TEST(c.write_rate == 1u);
  BOOST_TEST(c.tick == 333333333ns);
  c = cfg::per_second(sluice::unlimited, sluice::unlimited);
  BOOST_TEST(c.read_rate == sluice::unlimited);
  BOOST_TEST(c.write_rate == sluice::unlimited);
  c.validate();

  // Any rate: a valid config, a tick near 10 ms (longer only below 100 B/s, for a byte of
  // the slower), the faster rate exact to a nanosecond of its tick, the slower within half a
  // byte per tick.
  std::mt19937_64 rng(7);
  for (int k = 0; k < 2000; ++k) {
    const int bits = 1 + static_cast<int>(rng() % 62);
    const std::uint64_t r = 1 + rng() % (std::uint64_t(1) << bits);
    const std::uint64_t w = 1 + rng() % (std::uint64_t(1) << bits);
    c = cfg::per_second(r, w);
    c.validate();
    BOOST_TEST_CONTEXT("per_second(" << r << ", " << w << "): tick " << c.tick.count() << "ns") {
      BOOST_TEST(c.read_burst == 2 * c.read_rate);
      BOOST_TEST(c.write_burst == 2 * c.write_rate);
      if (std::min(r, w) >= 100) {
        BOOST_TEST(c.tick >= 5ms);
        BOOST_TEST(c.tick <= 20ms);
      }
      // In byte-nanoseconds: what a tick should hold, against what it holds.
      const auto tick_ns = static_cast<std::uint64_t>(c.tick.count());
      for (auto [bps, per_tick] : {std::pair{r, c.read_rate}, std::pair{w, c.write_rate}}) {
        const int128 error = int128(per_tick) * 1'000'000'000 - int128(bps) * tick_ns;
        const int128 allowed = bps == std::max(r, w) ? int128(bps) / 2 + 1 : 500'000'000;
        BOOST_TEST((error <= allowed && -error <= allowed));
      }
    }
  }

  // Out of range: named.
  for (std::uint64_t bad : {std::uint64_t(0), std::uint64_t(1) << 63}) {
    try {
      cfg::per_second(bad, 1000);
      BOOST_FAIL("per_second accepted " << bad);
    } catch (const std::invalid_argument& e) {
      BOOST_TEST(std::string(e.what()).find("read_bytes_per_second") != std::string::npos);
    }
    BOOST_CHECK_THROW(cfg::per_second(1000, bad), std::invalid_argument);
  }
}

BOOST_AUTO_TEST_CASE(reconfigure_to_and_from_unlimited) {
  token_bucket b;
  b.reconfigure(100, 200, 1s, t0); // from unlimited: a fresh bucket, one tick's worth
  BOOST_TEST(b.limited());
  BOOST_TEST(b.tokens(t0) == 100);
  b.reconfigure(sluice::unlimited, sluice::unlimited, 1s, t0);
  BOOST_TEST(!b.limited());
  BOOST_TEST(b.tokens(t0) == token_bucket::no_limit);
}
