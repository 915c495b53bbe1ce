// What the pipe suites share.
#ifndef SLUICE_TEST_PIPE_HPP
#define SLUICE_TEST_PIPE_HPP

#include <sluice/pipe.hpp>

#include <sluice_test/completion.hpp>
#include <sluice_test/pattern.hpp>
#include <sluice_test/support.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <string>

namespace sluice_test {

/// The most a pipe test waits for something to happen; reached only when a test fails. Wide:
/// the byte-at-a-time soaks take seconds under ThreadSanitizer on a loaded 2-core machine.
inline constexpr std::chrono::steady_clock::duration bound = std::chrono::seconds(60);

inline std::string as_string(const void* data, std::size_t n) {
  return std::string(static_cast<const char*>(data), n);
}

/// Writes `data` from `writer` and checks that it was all taken at once (fills a buffer).
inline void fill_pipe(boost::asio::io_context& ctx, sluice::pipe& writer, const bytes& data) {
  outcome w;
  writer.async_write_some(boost::asio::buffer(data), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));
  BOOST_TEST_REQUIRE(!w.ec);
  BOOST_TEST_REQUIRE(w.n == data.size());
}

} // namespace sluice_test

#endif
