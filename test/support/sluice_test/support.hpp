// What the test suites share: driving an io_context until a condition holds (never a
// sleep), connected loopback sockets, and token-bucket configurations.
#ifndef SLUICE_TEST_SUPPORT_HPP
#define SLUICE_TEST_SUPPORT_HPP

#include <sluice/rate_limit.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <utility>

namespace sluice_test {

/// Runs handlers of `ctx` until `done()` holds, or `bound` has passed; returns done().
/// Works whether the handlers run here or `done` is set by other threads.
template <class Pred>
bool run_until(boost::asio::io_context& ctx, Pred done,
               std::chrono::steady_clock::duration bound = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    ctx.restart();
    ctx.run_one_for(std::chrono::milliseconds(10));
  }
  return done();
}

inline double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

/// A connected loopback TCP pair: {client, server}.
inline std::pair<boost::asio::ip::tcp::socket, boost::asio::ip::tcp::socket>
tcp_pair(boost::asio::io_context& ctx) {
  using boost::asio::ip::tcp;
  tcp::acceptor acceptor(ctx, tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
  tcp::socket client(ctx), server(ctx);
  client.connect(acceptor.local_endpoint());
  acceptor.accept(server);
  return {std::move(client), std::move(server)};
}

/// A write limit only: `rate` bytes per `tick`, bucket `burst`.
inline sluice::token_bucket_config write_limit(std::uint64_t rate, std::uint64_t burst,
                                               std::chrono::nanoseconds tick) {
  sluice::token_bucket_config cfg;
  cfg.write_rate = rate;
  cfg.write_burst = burst;
  cfg.tick = tick;
  return cfg;
}

/// A read limit only: `rate` bytes per `tick`, bucket `burst`.
inline sluice::token_bucket_config read_limit(std::uint64_t rate, std::uint64_t burst,
                                              std::chrono::nanoseconds tick) {
  sluice::token_bucket_config cfg;
  cfg.read_rate = rate;
  cfg.read_burst = burst;
  cfg.tick = tick;
  return cfg;
}

} // namespace sluice_test

#endif
