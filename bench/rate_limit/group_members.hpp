// Micro-benchmark (b): M pipes whose writing ends are rate_limited_stream<pipe> members of
// one group (M = 10, 1000, 10000), all writing 64-byte chunks at once, one thread: CPU ns per
// write+read, with a group that does not bind, and with one that binds (6.4 MB/s, 10 ms
// ticks); against the same streams in no group. The bytes per write show how finely the
// binding group grants.
#ifndef SLUICE_BENCH_RATE_LIMIT_GROUP_MEMBERS_HPP
#define SLUICE_BENCH_RATE_LIMIT_GROUP_MEMBERS_HPP

#include "rate_limit/options.hpp"

namespace sluice::bench::ratelim_bench {

/// Measures (b) and prints its table and targets.
void run_group_members(const options& opt);

} // namespace sluice::bench::ratelim_bench

#endif
