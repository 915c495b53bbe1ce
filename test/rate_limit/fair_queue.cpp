// Exact tests of how a group's refill is shared among its waiting members.
#include <boost/test/unit_test.hpp>

#include <sluice/detail/rate_limit/fair_queue.hpp>
#include <sluice/detail/rate_limit/token_bucket.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <numeric>

using sluice::detail::fair_queue;
using sluice::detail::fair_waiter;

BOOST_AUTO_TEST_CASE(equal_demand_gets_equal_shares) {
  fair_queue q;
  std::array<fair_waiter, 4> w;
  for (auto& x : w)
    q.push(x, 1000);
  std::vector<fair_waiter*> served;
  BOOST_TEST(q.share(400, 1, served) == 400);
  BOOST_TEST(served.size() == 4u);
  for (auto& x : w)
    BOOST_TEST(x.granted == 100);
  BOOST_TEST(q.empty());
  BOOST_TEST(q.total_demand() == 0);
}

BOOST_AUTO_TEST_CASE(unequal_demand_is_max_min_fair) {
  // 10 tokens; demands 2, 8, 8: the small one gets all it wants, the others split the rest.
  fair_queue q;
  fair_waiter small, big1, big2;
  q.push(big1, 8);
  q.push(small, 2);
  q.push(big2, 8);
  std::vector<fair_waiter*> served;
  BOOST_TEST(q.share(10, 1, served) == 10);
  BOOST_TEST(small.granted == 2);
  BOOST_TEST(big1.granted == 4);
  BOOST_TEST(big2.granted == 4);
}

BOOST_AUTO_TEST_CASE(odd_bytes_rotate_over_rounds) {
  // 10 tokens among 3 equal waiters: 4, 3, 3. The one that got 4 re-queues last, so over
  // three rounds each gets the odd byte once.
  fair_queue q;
  std::array<fair_waiter, 3> w;
  for (auto& x : w)
    q.push(x, 100);
  std::array<std::int64_t, 3> total{};
  for (int round = 0; round < 3; ++round) {
    std::vector<fair_waiter*> served;
    BOOST_TEST(q.share(10, 1, served) == 10);
    BOOST_TEST(served.size() == 3u);
    for (std::size_t i = 0; i < 3; ++i)
      total[i] += w[i].granted;
    // Re-queue in the order a fair sharer would see them come back: as served.
    for (fair_waiter* x : served)
      q.push(*x, 100);
  }
  BOOST_TEST(total[0] == 10);
  BOOST_TEST(total[1] == 10);
  BOOST_TEST(total[2] == 10);
}

BOOST_AUTO_TEST_CASE(everything_granted_when_demand_is_covered) {
  fair_queue q;
  fair_waiter a, b;
  q.push(a, 30);
  q.push(b, 50);
  std::vector<fair_waiter*> served;
  BOOST_TEST(q.share(1000, 64, served) == 80);
  BOOST_TEST(a.granted == 30);
  BOOST_TEST(b.granted == 50);
}

BOOST_AUTO_TEST_CASE(min_share_serves_longest_waiting_first) {
  // 100 tokens, min share 64, five waiters: the first gets 64; the 36 left are too few for
  // the second, who keeps its place at the front with the rest.
  fair_queue q;
  std::array<fair_waiter, 5> w;
  for (auto& x : w)
    q.push(x, 1000);
  std::vector<fair_waiter*> served;
  BOOST_TEST(q.share(100, 64, served) == 64);
  BOOST_TEST(w[0].granted == 64);
  BOOST_TEST(served.size() == 1u);
  BOOST_TEST(q.size() == 4u);
  BOOST_TEST(q.total_demand() == 4000);
  served.clear();
  BOOST_TEST(q.share(36 + 192, 64, served) == 192); // the 36 left over, and a refill
  BOOST_TEST(served.size() == 3u);
  BOOST_TEST(w[1].granted == 64);
  BOOST_TEST(w[3].granted == 64);
  BOOST_TEST(w[4].granted == 0);
  // Fewer tokens than one min share in all: the first takes them, or nobody would move.
  served.clear();
  BOOST_TEST(q.share(10, 64, served) == 10);
  BOOST_TEST(w[4].granted == 10);
}

BOOST_AUTO_TEST_CASE(scarce_refills_rotate_fairly) {
  // 30 waiters, 1500 tokens a refill, min share 64: 23 are served a round, and the queue
  // turns by the same step each time. Over 600 rounds nobody may fall behind by more than
  // one min share.
  fair_queue q;
  std::array<fair_waiter, 30> w;
  std::array<std::int64_t, 30> total{};
  for (auto& x : w)
    q.push(x, 16384);
  std::vector<fair_waiter*> served;
  std::int64_t left = 0;
  for (int round = 0; round < 600; ++round) {
    served.clear();
    std::int64_t tokens = left + 1500;
    left = tokens - q.share(tokens, 64, served);
    BOOST_TEST(left < 64);
    for (fair_waiter* x : served) {
      total[static_cast<std::size_t>(x - w.data())] += x->granted;
      q.push(*x, 16384); // its write done, it asks again, behind the others
    }
  }
  auto [lo, hi] = std::minmax_element(total.begin(), total.end());
  BOOST_TEST(*hi - *lo <= 64);
  BOOST_TEST(std::accumulate(total.begin(), total.end(), std::int64_t{0}) == 600 * 1500 - left);
}

BOOST_AUTO_TEST_CASE(leaving_mid_wait) {
  fair_queue q;
  std::array<fair_waiter, 3> w;
  for (auto& x : w)
    q.push(x, 100);
  q.remove(w[1]);
  q.remove(w[1]); // twice is harmless
  BOOST_TEST(q.size() == 2u);
  BOOST_TEST(q.total_demand() == 200);
  std::vector<fair_waiter*> served;
  BOOST_TEST(q.share(100, 1, served) == 100);
  BOOST_TEST(w[0].granted == 50);
  BOOST_TEST(w[2].granted == 50);
  BOOST_TEST(w[1].granted == 0);
  q.push(w[1], 10); // and joining again
  served.clear();
  BOOST_TEST(q.share(100, 1, served) == 10);
  BOOST_TEST(w[1].granted == 10);
}

BOOST_AUTO_TEST_CASE(many_waiters_share_within_one_byte) {
  fair_queue q;
  std::vector<fair_waiter> w(1000);
  for (std::size_t i = 0; i < w.size(); ++i)
    q.push(w[i], i % 2 ? 10'000 : 50); // half want little
  std::vector<fair_waiter*> served;
  BOOST_TEST(q.share(1'000'003, 1, served) == 1'000'003);
  // The 500 small ones take 25,000; the 500 big ones split 975,003: 1950 each, 3 get 1951.
  int odd = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (i % 2 == 0) {
      BOOST_TEST(w[i].granted == 50);
    } else {
      BOOST_TEST((w[i].granted == 1950 || w[i].granted == 1951));
      odd += w[i].granted == 1951;
    }
  }
  BOOST_TEST(odd == 3);
}

// The group's pure core over virtual time: a bucket refilled each tick and shared among
// the members waiting, who take their grant and queue again. Exact, tick by tick.
BOOST_AUTO_TEST_CASE(members_joining_and_leaving_mid_wait_over_virtual_time) {
  using namespace std::chrono_literals;
  using sluice::detail::token_bucket;
  const auto t0 = token_bucket::clock::time_point{} + 1000h;
  token_bucket bucket(900, 900, 10ms, t0); // 900 bytes a tick
  fair_queue q;
  struct member {
    fair_waiter w;
    std::int64_t wants = 0; // per wait: a member's own lower limit shows as a small demand
    std::int64_t got = 0;   // in the current phase
  };
  std::array<member, 4> m;
  m[0].wants = m[1].wants = m[3].wants = 1'000'000; // always hungry
  m[2].wants = 100;                                 // held down to 100 a tick
  for (int i : {0, 1, 2})
    q.push(m[i].w, m[i].wants);
  std::vector<fair_waiter*> served;
  auto run_ticks = [&](int ticks, int first_tick) {
    for (auto& x : m)
      x.got = 0;
    for (int t = first_tick; t < first_tick + ticks; ++t) {
      auto now = t0 + t * 10ms;
      served.clear();
      std::int64_t tokens = bucket.tokens(now);
      BOOST_REQUIRE(tokens == 900); // a tick's worth each tick: nothing lost, nothing extra
      bucket.take(q.share(tokens, 1, served), now);
      for (fair_waiter* w : served) {
        auto& x = *std::find_if(m.begin(), m.end(), [&](member& y) { return &y.w == w; });
        x.got += w->granted;
        q.push(*w, x.wants);
      }
    }
  };
  // 0, 1 hungry; 2 wants 100 a tick: 2 gets 100 and 0, 1 split the other 800.
  run_ticks(10, 1);
  BOOST_TEST(m[0].got == 4000);
  BOOST_TEST(m[1].got == 4000);
  BOOST_TEST(m[2].got == 1000);
  // 3 joins mid-wait: three hungry members split 800, the odd bytes rotating.
  q.push(m[3].w, m[3].wants);
  run_ticks(30, 11);
  for (int i : {0, 1, 3})
    BOOST_TEST(m[i].got == 8000); // 266 or 267 a tick, 800 / 3 over 30 ticks exactly
  BOOST_TEST(m[2].got == 3000);
  // 1 leaves mid-wait: the others take its share from the next tick on.
  q.remove(m[1].w);
  m[1].wants = 0;
  run_ticks(10, 41);
  BOOST_TEST(m[0].got == 4000);
  BOOST_TEST(m[1].got == 0);
  BOOST_TEST(m[3].got == 4000);
  BOOST_TEST(m[2].got == 1000);
}
