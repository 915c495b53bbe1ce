// What the rate-limit suites share: a limited writer end with its plain peer, a pipe end
// that counts writes, and timed completions.
#ifndef SLUICE_TEST_RATE_LIMIT_HPP
#define SLUICE_TEST_RATE_LIMIT_HPP

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <sluice_test/support.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

namespace sluice_test {

inline constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

using limited_pipe = sluice::rate_limited_stream<sluice::pipe>;

/// A rate-limited writer end and the plain reader end of one pipe.
struct pipe_fixture {
  explicit pipe_fixture(boost::asio::io_context& ctx) : pipe_fixture(sluice::make_pipe(ctx)) {}

  limited_pipe stream;
  sluice::pipe peer;

  /// Reads exactly `n` bytes from the peer and returns them; "" on timeout.
  std::string read_exactly(boost::asio::io_context& ctx, std::size_t n) {
    std::string in(n, '\0');
    bool done = false;
    boost::asio::async_read(peer, boost::asio::buffer(in),
                            [&](boost::system::error_code ec, std::size_t got) {
                              BOOST_TEST(!ec);
                              BOOST_TEST(got == n);
                              done = true;
                            });
    if (!run_until(ctx, [&] { return done; }))
      return {};
    return in;
  }

private:
  explicit pipe_fixture(std::pair<sluice::pipe, sluice::pipe> ends)
      : stream(std::move(ends.first)), peer(std::move(ends.second)) {}
};

/// A pipe end that counts the writes it is asked for.
struct counting_pipe {
  using executor_type = sluice::pipe::executor_type;
  executor_type get_executor() { return pipe.get_executor(); }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    ++writes;
    return pipe.async_write_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return pipe.async_read_some(buffers, std::forward<Token>(token));
  }

  sluice::pipe pipe;
  std::size_t writes = 0;
};

/// What a completion handler was called with, and when.
struct result {
  bool done = false;
  boost::system::error_code ec;
  std::size_t n = 0;
  std::chrono::steady_clock::time_point at;
};

inline auto store(result& r) {
  return [&r](boost::system::error_code ec, std::size_t n) {
    r = {true, ec, n, std::chrono::steady_clock::now()};
  };
}

/// Moves `data` through `s` with async_write and returns how long it took, or nullopt.
template <class Stream>
std::optional<std::chrono::steady_clock::duration>
timed_write(boost::asio::io_context& ctx, Stream& s, const std::string& data,
            std::chrono::steady_clock::duration bound) {
  result r;
  auto t0 = std::chrono::steady_clock::now();
  boost::asio::async_write(s, boost::asio::buffer(data), store(r));
  if (!run_until(
          ctx, [&] { return r.done; }, bound))
    return std::nullopt;
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.n == data.size());
  return r.at - t0;
}

} // namespace sluice_test

#endif
