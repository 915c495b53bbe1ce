// What the micro-benchmarks over pipes shape: rate_limited_stream<pipe>, with limits that
// are checked and charged but never bind.
#ifndef SLUICE_BENCH_RATE_LIMIT_LIMITED_PIPE_HPP
#define SLUICE_BENCH_RATE_LIMIT_LIMITED_PIPE_HPP

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <chrono>
#include <cstdint>

namespace sluice::bench::ratelim_bench {

using limited_pipe = sluice::rate_limited_stream<sluice::pipe>;

/// Limits far above anything a pipe can move: they are checked and charged, never bind.
inline sluice::token_bucket_config loose_limits() {
  constexpr std::uint64_t huge = 1ull << 50; // 1 PiB per second
  sluice::token_bucket_config cfg;
  cfg.read_rate = cfg.read_burst = cfg.write_rate = cfg.write_burst = huge;
  cfg.tick = std::chrono::seconds(1);
  return cfg;
}

} // namespace sluice::bench::ratelim_bench

#endif
