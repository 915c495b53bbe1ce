// The pipe benchmark's cases and the peers it measures in each: every peer builds, for a
// case, a workload that owns its io_context or event_base, its streams and its buffers.
#ifndef SLUICE_BENCH_PIPE_PEERS_HPP
#define SLUICE_BENCH_PIPE_PEERS_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>

namespace sluice::bench::pipe_bench {

struct config {
  std::uint64_t bytes = 1ull << 30;   // per bulk case and timed run
  std::uint64_t roundtrips = 200'000; // per round-trip case and timed run
  int reps = 5;
  std::size_t offset = 0; // of each reader's buffer from a page boundary
  bool verbose = false;
  std::set<std::string> peers; // empty: all
  std::set<std::string> cases; // empty: all (keys: 4k, 64k, rt)
};

enum bench_case { bulk_4k, bulk_64k, round_trip, case_count };
constexpr std::array<std::size_t, 2> chunk_of = {4 * 1024, 64 * 1024};

/// One peer set up for one case: `run(n)` moves n units (bytes, round trips), checks them,
/// and returns n. Empty when the peer has no such case.
using workload = std::function<std::uint64_t(std::uint64_t)>;

/// Asio streams (asio_peers.cpp): the same handlers on each, one io_context per workload
/// with the default concurrency hint.
workload sluice_workload(bench_case c, const config& cfg);
workload beast_workload(bench_case c, const config& cfg);
workload socketpair_workload(bench_case c, const config& cfg);

/// libevent's bufferevent_pair (libevent_peer.cpp).
workload libevent_workload(bench_case c, const config& cfg);

/// memcpy of the same chunks, the limit (memcpy_peer.cpp); no round trips.
workload memcpy_workload(bench_case c, const config& cfg);

} // namespace sluice::bench::pipe_bench

#endif
