// The fleet tests' harness: the test executable re-runs itself as N child processes, each
// with a shared_group and flat-out writers over drained pipes, reporting its bytes every
// 100 ms on its stdout; the parent collects the reports and measures what the fleet moved.
#ifndef SLUICE_TEST_REDIS_FLEET_HARNESS_HPP
#define SLUICE_TEST_REDIS_FLEET_HARNESS_HPP

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace fleet_test {

/// The fleet's write budget, bytes per second.
inline constexpr std::uint64_t R = 20'000'000;

/// What a child is told to do.
struct child_spec {
  std::string store, name;
  std::uint64_t own_rate = 0; ///< bytes per second for all its streams; 0: flat out
  int streams = 1;
  double seconds = 5;
  int hold_ms = 5000;   ///< shared_group_options::hold
  double delay = 0;     ///< seconds before it joins (it reports from then on)
  double own_until = 0; ///< seconds after which own_rate no longer applies; 0: never
};

/// One child's reports: its cumulative bytes and granted rate at steady-clock times (ms).
struct series {
  std::vector<double> t, bytes, granted;
  std::string partial; // a line not yet complete

  /// Bytes written by `ms`, interpolated between reports.
  double at(double ms) const;
};

/// Starts a child per spec and collects their reports until all have exited. `during` is
/// called about every 50 ms with the ms since the start; `pids` (if given) receives the
/// children's ids first. Fails the test if a child fails or reports too little.
std::vector<series>
run_fleet(const std::vector<child_spec>& specs,
          const std::function<void(double, const std::vector<int>&)>& during = {});

/// The steady-clock time (ms) of the first report of all children.
double origin(const std::vector<series>& reports);
/// The span all children reported in, less `warmup` ms at the start and 100 ms at the end.
std::pair<double, double> span(const std::vector<series>& reports, double warmup);
/// The fleet's bytes per second between `from` and `to` (ms), as a fraction of R.
double fleet_rate(const std::vector<series>& reports, double from, double to);
/// The busiest second between `from` and `to`, as a fraction of R.
double worst_second(const std::vector<series>& reports, double from, double to);
/// Each child's bytes per second between `from` and `to`.
std::vector<double> child_rates(const std::vector<series>& reports, double from, double to);
/// The mean rate a child applied between `from` and `to`, for messages.
double mean_granted(const series& s, double from, double to);
/// A group name of this test case's own.
std::string group_name();

} // namespace fleet_test

#endif
