// A fleet on one machine (fleet_harness.hpp): 4 and 8 processes that saturate, processes
// with mixed demands, processes with 1, 2 and 5 streams, a join, a leave and a change of
// demand.
#include "fleet_harness.hpp"

#include <boost/test/unit_test.hpp>

#include <sluice_test/redis_server.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace fleet_test;

namespace {

/// `n` flat-out processes: the fleet's aggregate within 3 % of the budget, no second above
/// 110 %, and even shares (cv within 2 %).
void saturate(int n) {
  sluice_test::redis_server server;
  std::vector<child_spec> specs(static_cast<std::size_t>(n),
                                child_spec{server.address(), group_name(), 0, 1, 5});
  auto reports = run_fleet(specs);
  auto [from, to] = span(reports, 1000);
  BOOST_REQUIRE(to - from >= 3000);
  const double aggregate = fleet_rate(reports, from, to);
  const double worst = worst_second(reports, from, to);
  auto rates = child_rates(reports, from, to);
  double mean = 0, var = 0;
  for (double r : rates)
    mean += r / static_cast<double>(rates.size());
  for (double r : rates)
    var += (r - mean) * (r - mean) / static_cast<double>(rates.size());
  const double cv = std::sqrt(var) / mean;
  BOOST_TEST_MESSAGE(n << " saturating: aggregate " << aggregate * 100
                       << " % of the budget, worst 1 s " << worst * 100 << " %, cv " << cv * 100
                       << " %");
  BOOST_TEST(std::abs(aggregate - 1) <= 0.03, aggregate);
  BOOST_TEST(worst <= 1.10, worst);
  BOOST_TEST(cv <= 0.02, cv);
}

} // namespace

BOOST_AUTO_TEST_SUITE(fleet)

BOOST_AUTO_TEST_CASE(four_saturating_processes_share_the_budget_evenly) {
  saturate(4);
}

BOOST_AUTO_TEST_CASE(eight_saturating_processes_share_the_budget_evenly) {
  saturate(8);
}

BOOST_AUTO_TEST_CASE(mixed_demands_get_max_min_shares) {
  sluice_test::redis_server server;
  const std::string name = group_name();
  std::vector<child_spec> specs{{server.address(), name, 2'000'000, 1, 5},
                                {server.address(), name, 4'000'000, 1, 5},
                                {server.address(), name, 0, 1, 5},
                                {server.address(), name, 0, 1, 5}};
  auto reports = run_fleet(specs);
  auto [from, to] = span(reports, 1500);
  BOOST_REQUIRE(to - from >= 2500);
  auto rates = child_rates(reports, from, to);
  BOOST_TEST_MESSAGE("2, 4, inf, inf of 20 MB/s: "
                     << rates[0] / 1e6 << ", " << rates[1] / 1e6 << ", " << rates[2] / 1e6 << ", "
                     << rates[3] / 1e6 << " MB/s; aggregate " << fleet_rate(reports, from, to) * 100
                     << " %; granted " << mean_granted(reports[0], from, to) / 1e6 << ", "
                     << mean_granted(reports[1], from, to) / 1e6 << ", "
                     << mean_granted(reports[2], from, to) / 1e6 << ", "
                     << mean_granted(reports[3], from, to) / 1e6);
  BOOST_TEST(std::abs(rates[0] / 2e6 - 1) <= 0.05, rates[0]);
  BOOST_TEST(std::abs(rates[1] / 4e6 - 1) <= 0.05, rates[1]);
  const double big = (rates[2] + rates[3]) / 2;
  BOOST_TEST(std::abs(rates[2] - rates[3]) <= 0.05 * big, rates[2] << " vs " << rates[3]);
  BOOST_TEST(fleet_rate(reports, from, to) <= 1.03);
  BOOST_TEST(big >= 0.93 * 7e6, big); // the rest of the budget, less what headroom holds back
}

// By default a process's weight is its number of streams that want bytes: 8 streams in all,
// each worth an eighth of the budget wherever it runs.
BOOST_AUTO_TEST_CASE(every_stream_counts_the_same_whichever_process_it_is_in) {
  sluice_test::redis_server server;
  const std::string name = group_name();
  std::vector<child_spec> specs{{server.address(), name, 0, 1, 5},
                                {server.address(), name, 0, 2, 5},
                                {server.address(), name, 0, 5, 5}};
  auto reports = run_fleet(specs);
  auto [from, to] = span(reports, 1500);
  BOOST_REQUIRE(to - from >= 2500);
  auto rates = child_rates(reports, from, to);
  const double eighth = static_cast<double>(R) / 8;
  BOOST_TEST_MESSAGE("1, 2 and 5 streams: " << rates[0] / 1e6 << ", " << rates[1] / 1e6 << ", "
                                            << rates[2] / 1e6 << " MB/s; per stream "
                                            << rates[0] / eighth << ", " << rates[1] / 2 / eighth
                                            << ", " << rates[2] / 5 / eighth << " of an eighth");
  // The streams of one process share its local group fairly (the group's own tests), so a
  // process within 10 % of its streams' eighths has each stream there too.
  BOOST_TEST(std::abs(rates[0] / eighth - 1) <= 0.10, rates[0]);
  BOOST_TEST(std::abs(rates[1] / (2 * eighth) - 1) <= 0.10, rates[1]);
  BOOST_TEST(std::abs(rates[2] / (5 * eighth) - 1) <= 0.10, rates[2]);
}

// A process joins at 1.5 s and another leaves (with a release) at 3.5 s: within a second
// of each, the shares are the new max-min ones.
BOOST_AUTO_TEST_CASE(shares_follow_a_join_and_a_leave_within_a_second) {
  sluice_test::redis_server server;
  const std::string name = group_name();
  std::vector<child_spec> specs{{server.address(), name, 0, 1, 6},
                                {server.address(), name, 0, 1, 3.5},
                                {server.address(), name, 0, 1, 4.5, 5000, 1.5}};
  auto reports = run_fleet(specs);
  const double start = origin(reports);
  const double joined = reports[2].t.front(), left = reports[1].t.back();
  BOOST_REQUIRE(joined - start >= 1400);
  BOOST_REQUIRE(left - joined >= 1500);
  auto three = child_rates(reports, joined + 1000, left - 100);
  auto two =
      child_rates(reports, left + 1000, std::min(reports[0].t.back(), reports[2].t.back()) - 100);
  BOOST_TEST_MESSAGE("join: " << three[0] / 1e6 << ", " << three[1] / 1e6 << ", " << three[2] / 1e6
                              << " MB/s from 1 s after; leave: " << two[0] / 1e6 << ", "
                              << two[2] / 1e6 << " MB/s from 1 s after");
  for (double r : three)
    BOOST_TEST(std::abs(r / (static_cast<double>(R) / 3) - 1) <= 0.10, r);
  for (std::size_t i : {0u, 2u})
    BOOST_TEST(std::abs(two[i] / (static_cast<double>(R) / 2) - 1) <= 0.10, two[i]);
}

// A process that wanted 2 MB/s wants all it can get from 2.5 s on: within a second the three
// share the budget evenly.
BOOST_AUTO_TEST_CASE(shares_follow_a_demand_change_within_a_second) {
  sluice_test::redis_server server;
  const std::string name = group_name();
  std::vector<child_spec> specs{{server.address(), name, 2'000'000, 1, 5, 5000, 0, 2.5},
                                {server.address(), name, 0, 1, 5},
                                {server.address(), name, 0, 1, 5}};
  auto reports = run_fleet(specs);
  const double changed = origin(reports) + 2500;
  auto [from, to] = span(reports, 1000);
  auto before = child_rates(reports, from, changed - 100);
  auto after = child_rates(reports, changed + 1000, to);
  BOOST_TEST_MESSAGE("demand change: " << before[0] / 1e6 << ", " << before[1] / 1e6 << ", "
                                       << before[2] / 1e6 << " MB/s before; " << after[0] / 1e6
                                       << ", " << after[1] / 1e6 << ", " << after[2] / 1e6
                                       << " MB/s from 1 s after");
  BOOST_TEST(std::abs(before[0] / 2e6 - 1) <= 0.10, before[0]);
  for (double r : after)
    BOOST_TEST(std::abs(r / (static_cast<double>(R) / 3) - 1) <= 0.10, r);
}

BOOST_AUTO_TEST_SUITE_END()
