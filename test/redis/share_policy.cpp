// What the fleet group's loop decides without the store: demand estimates, give-back, the
// fallback rates, and when a moved demand is worth a call before the half lease. Pure
// functions, no clock, no I/O.
#include <boost/test/unit_test.hpp>

#include <sluice/detail/redis/share_policy.hpp>

#include <cstdint>

using sluice::redis::detail::demand_changed;
using sluice::redis::detail::estimate_demand;

namespace {
constexpr double unbounded = -1;
constexpr std::uint64_t safe = 1'000'000; // a fair share: bytes per second
} // namespace

BOOST_AUTO_TEST_SUITE(share_policy)

BOOST_AUTO_TEST_CASE(demand_is_unbounded_after_a_wait_and_else_a_tenth_above_consumption) {
  double smoothed = 0;
  BOOST_TEST(estimate_demand(smoothed, true, 1000, false) == 1100);
  BOOST_TEST(estimate_demand(smoothed, false, 3000, false) == 2200); // half on the last interval
  BOOST_TEST(estimate_demand(smoothed, false, 3000, true) < 0);
  BOOST_TEST(estimate_demand(smoothed, true, 0, false) == 0); // a fresh start forgets
}

BOOST_AUTO_TEST_CASE(a_process_is_held_back_when_it_waited_and_used_half_its_grant) {
  using sluice::redis::detail::held_back;
  BOOST_TEST(held_back(10, 0.9 * safe, safe));
  BOOST_TEST(held_back(1, 0.5 * safe, safe));
  BOOST_TEST(!held_back(0, 1.0 * safe, safe));       // no wait
  BOOST_TEST(!held_back(1, 0.1 * safe, safe));       // the last writes before it went idle
  BOOST_TEST(held_back(3, 100, 0));                  // granted nothing: the trickle, then waits
  BOOST_TEST(!held_back(3, 1e9, sluice::unlimited)); // an unlimited group holds nobody back
}

BOOST_AUTO_TEST_CASE(a_steady_demand_has_not_changed) {
  // Finite: the same consumption, or a tenth more.
  BOOST_TEST(!demand_changed(1.1 * 400'000, 400'000, false, 4 * safe, safe));
  BOOST_TEST(!demand_changed(1.1 * 400'000, 440'000, false, 4 * safe, safe));
  // Unbounded, still waiting; or not waiting in this interval but using the whole grant.
  BOOST_TEST(!demand_changed(unbounded, 2 * safe, true, 2 * safe, safe));
  BOOST_TEST(!demand_changed(unbounded, 2 * safe, false, 2 * safe, safe));
  BOOST_TEST(!demand_changed(unbounded, 0.8 * 2 * safe, false, 2 * safe, safe));
}

BOOST_AUTO_TEST_CASE(a_demand_that_moves_by_more_than_a_quarter_has_changed) {
  BOOST_TEST(demand_changed(1.1 * 400'000, 1'200'000, false, 4 * safe, safe)); // threefold
  BOOST_TEST(demand_changed(1.1 * 1'200'000, 400'000, false, 4 * safe, safe)); // a third
  BOOST_TEST(demand_changed(1.1 * 400'000, 520'000, false, 4 * safe, safe));   // +30 %
}

BOOST_AUTO_TEST_CASE(a_process_that_stops_using_its_grant_has_changed) {
  BOOST_TEST(demand_changed(unbounded, 0, false, 2 * safe, safe));
  BOOST_TEST(demand_changed(unbounded, 0.5 * 2 * safe, false, 2 * safe, safe));
}

BOOST_AUTO_TEST_CASE(a_process_held_below_its_safe_share_that_waits_has_changed) {
  // Idle, so granted nearly nothing while the others are busy; then its streams wait.
  BOOST_TEST(demand_changed(0, 100, true, 100, safe));
  // Granted its finite demand, which it now uses in full and waits: unbounded would not
  // get it more than it has (the grant is above the safe share): not worth a call.
  BOOST_TEST(!demand_changed(2.0 * safe, 2.0 * safe, true, 2 * safe, safe));
}

BOOST_AUTO_TEST_CASE(a_demand_above_the_grant_counts_as_the_grant) {
  // Reported 10 MB/s, granted 2: consuming the 2 (and waiting or not) is no change.
  BOOST_TEST(!demand_changed(10.0 * safe, 2.0 * safe, false, 2 * safe, safe));
  BOOST_TEST(!demand_changed(10.0 * safe, 2.0 * safe, true, 2 * safe, safe));
}

BOOST_AUTO_TEST_CASE(changes_under_an_eighth_of_the_safe_share_do_not_count) {
  BOOST_TEST(!demand_changed(0, 100'000, false, safe, safe)); // 110 kB/s < safe / 8
  BOOST_TEST(demand_changed(0, 200'000, false, safe, safe));  // 220 kB/s > safe / 8
}

BOOST_AUTO_TEST_CASE(nothing_has_changed_before_a_share_is_known) {
  BOOST_TEST(!demand_changed(unbounded, 0, false, 0, 0));
  BOOST_TEST(!demand_changed(0, 1e9, true, 1000, 0));
}

BOOST_AUTO_TEST_SUITE_END()
