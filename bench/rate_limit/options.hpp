// The rate-limiting benchmark's command-line options, shared by its parts.
#ifndef SLUICE_BENCH_RATE_LIMIT_OPTIONS_HPP
#define SLUICE_BENCH_RATE_LIMIT_OPTIONS_HPP

#include <set>
#include <string>

namespace sluice::bench::ratelim_bench {

struct options {
  bool quick = false;
  double duration = 8;        // measured seconds per TCP scenario and implementation
  double warm_up = 1.5;       // seconds before measuring
  int tick_ms = 0;            // 0: each scenario's own
  int burst_ticks = 1;        // burst = rate x this
  std::set<std::string> only; // scenario keys; empty: all
};

} // namespace sluice::bench::ratelim_bench

#endif
