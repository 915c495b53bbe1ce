// Connected loopback TCP pairs for the TCP scenarios, set up before either implementation
// is measured.
#ifndef SLUICE_BENCH_RATE_LIMIT_LOOPBACK_HPP
#define SLUICE_BENCH_RATE_LIMIT_LOOPBACK_HPP

#include <cstddef>
#include <vector>

namespace sluice::bench::ratelim_bench {

struct connection_fds {
  int server = -1;
  int client = -1;
};

/// `n` connected loopback TCP pairs, both ends non-blocking.
std::vector<connection_fds> connect_loopback(std::size_t n);

/// Closes the descriptors still held (>= 0) and resets them.
void close_all(std::vector<connection_fds>& conns);

} // namespace sluice::bench::ratelim_bench

#endif
