// The servers of the TCP scenarios: one thread each, writing to every connection as fast as
// its write limits allow; one server per implementation (sluice_server.cpp,
// libevent_server.cpp).
#ifndef SLUICE_BENCH_RATE_LIMIT_SERVER_HPP
#define SLUICE_BENCH_RATE_LIMIT_SERVER_HPP

#include "rate_limit/loopback.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::bench::ratelim_bench {

/// Limits of one TCP scenario, in bytes per second (0: none) and the tick.
struct limits {
  std::uint64_t conn_rate = 0;
  std::uint64_t group_rate = 0;
  int tick_ms = 100;
  int burst_ticks = 1; // burst = rate per tick x this

  std::uint64_t per_tick(std::uint64_t per_second) const {
    return std::max<std::uint64_t>(1, per_second * static_cast<std::uint64_t>(tick_ms) / 1000);
  }
};

/// What a server writes: any bytes will do, the clients only count them.
constexpr std::size_t write_chunk = 16 * 1024; // as libevent's default max single write
inline const std::array<char, write_chunk>& payload() {
  static const auto bytes = [] {
    std::array<char, write_chunk> a{};
    for (std::size_t i = 0; i < a.size(); ++i)
      a[i] = static_cast<char>('a' + i % 26);
    return a;
  }();
  return bytes;
}

/// A server on its own thread, writing to each connection as fast as the limits allow.
class rate_limited_server {
public:
  virtual ~rate_limited_server() = default;
  virtual void start() = 0;
  virtual void stop() = 0; // and joins its thread
  virtual pthread_t native_thread() = 0;
  /// The first error seen, if any (read after stop()).
  virtual std::string failure() const = 0;
  /// Write operations (system calls) done so far, all connections together; any thread.
  std::uint64_t writes() const { return writes_.load(std::memory_order_relaxed); }

protected:
  void count_write() {
    writes_.store(writes_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

private:
  std::atomic<std::uint64_t> writes_{0}; // only the server's thread adds
};

/// sluice: each accepted socket wrapped as rate_limited_stream<tcp::socket>, one write of
/// 16 KiB always pending on each, one io_context run by one thread. Takes the server ends of
/// `conns`.
std::unique_ptr<rate_limited_server> make_sluice_server(const std::vector<connection_fds>& conns,
                                                        const limits& lim);

/// libevent: bufferevent_socket_new on each accepted socket, bufferevent_set_rate_limit and
/// a bufferevent_rate_limit_group; the output buffer is topped up to 32 KiB whenever it
/// drains below 16 KiB. One event_base run by one thread. Takes the server ends of `conns`.
std::unique_ptr<rate_limited_server> make_libevent_server(const std::vector<connection_fds>& conns,
                                                          const limits& lim);

} // namespace sluice::bench::ratelim_bench

#endif
