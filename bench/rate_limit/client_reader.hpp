// The clients of the TCP scenarios: one plain epoll loop on a thread of its own that reads
// every client socket, 64 KiB at a time, and counts the bytes of each connection. The same
// code serves sluice and libevent.
#ifndef SLUICE_BENCH_RATE_LIMIT_CLIENT_READER_HPP
#define SLUICE_BENCH_RATE_LIMIT_CLIENT_READER_HPP

#include "rate_limit/loopback.hpp"

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace sluice::bench::ratelim_bench {

/// Reads every client socket as data comes, counting the bytes of each connection; starts
/// its thread on construction.
class client_reader {
public:
  explicit client_reader(const std::vector<connection_fds>& conns);
  client_reader(const client_reader&) = delete;
  client_reader& operator=(const client_reader&) = delete;
  ~client_reader();

  /// Stops the loop and joins its thread.
  void stop();

  std::size_t size() const { return received_.size(); }
  std::uint64_t received(std::size_t i) const {
    return received_[i].load(std::memory_order_relaxed);
  }
  pthread_t native_thread() { return thread_.native_handle(); }
  /// Connections that ended early (EOF or an error) while reading.
  int closed() const { return closed_.load(); }

private:
  static constexpr std::uint64_t stop_key = ~std::uint64_t(0);

  void loop();

  std::vector<std::atomic<std::uint64_t>> received_;
  std::vector<int> fds_;
  std::atomic<int> closed_{0};
  int epoll_ = -1;
  int wake_ = -1;
  std::thread thread_;
};

} // namespace sluice::bench::ratelim_bench

#endif
