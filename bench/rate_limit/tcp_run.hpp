// One measured run of a TCP scenario: loopback connections, one server, the clients, and
// the figures over the measured span.
//
// Bursty delivery (a tick's worth at once) makes a count taken at one instant depend on where
// it falls between two refills: up to one tick's worth of error. So each end of the measured
// span is the average of 20 samples spread over one tick, which cancels the sawtooth.
#ifndef SLUICE_BENCH_RATE_LIMIT_TCP_RUN_HPP
#define SLUICE_BENCH_RATE_LIMIT_TCP_RUN_HPP

#include "rate_limit/options.hpp"
#include "rate_limit/server.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace sluice::bench::ratelim_bench {

struct run_result {
  std::vector<double> rates; // B/s per connection
  double total = 0, mean = 0, sd = 0, cv = 0, jain = 0, min = 0, max = 0;
  double cpu = 0, cpu_server = 0, cpu_client = 0; // seconds, scaled to the nominal duration
  double writes_per_s = 0;                        // the server's, all connections
  double seconds = 0;                             // the measured span
  std::string failure;

  /// Fills in the statistics from `rates`.
  void summarize();
};

enum class impl { sluice, libevent };

/// Runs `which` over `n` fresh connections with `lim`: warm-up, then the measured span.
run_result run_tcp(impl which, std::size_t n, const limits& lim, const options& opt);

} // namespace sluice::bench::ratelim_bench

#endif
