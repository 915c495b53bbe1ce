// Micro-benchmark (a): rate_limited_stream<pipe> at both ends of a pipe, with limits that
// never bind (own, and own + a group), against a bare pipe: 64 KiB writes, one write and one
// read in flight, one thread. What checking and charging the limits costs where nothing else
// does.
#ifndef SLUICE_BENCH_RATE_LIMIT_PIPE_THROUGHPUT_HPP
#define SLUICE_BENCH_RATE_LIMIT_PIPE_THROUGHPUT_HPP

#include "rate_limit/options.hpp"

namespace sluice::bench::ratelim_bench {

/// Measures (a) and prints its table and targets.
void run_pipe_throughput(const options& opt);

} // namespace sluice::bench::ratelim_bench

#endif
