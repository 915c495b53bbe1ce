// The proxy's log on stdout, which never holds up the proxy (doc/proxy.md, Output).
#ifndef SLUICE_TOOL_PROXY_LOGGER_HPP
#define SLUICE_TOOL_PROXY_LOGGER_HPP

#include "proxy_log.hpp"
#include "proxy_options.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace sluice::proxy {

/// One write to `fd` that never waits: poll() says whether the output takes bytes now, and
/// at most PIPE_BUF are written, which a pipe that polls writable takes at once. The file
/// descriptor stays as it is (stdout may be shared with a shell; O_NONBLOCK would be too).
/// Returns the bytes written, log_queue::would_block or log_queue::gone.
std::ptrdiff_t write_now(int fd, const char* data, std::size_t size);

/// The log: each line to stdout at once when it takes it, else queued (up to a bound) and
/// retried; never a wait. A line that finds the queue full is dropped and counted; a line
/// says how many when the output takes lines again.
class logger {
public:
  static constexpr std::size_t capacity = 256 * 1024;
  static constexpr std::chrono::milliseconds retry{10};

  logger(boost::asio::io_context& ctx, log_format format);

  void write(std::string_view event, std::string_view message,
             std::initializer_list<log_field> fields = {});
  log_format format() const { return format_; }

  /// No more retries on the io_context (they would keep it running): finish() takes over.
  void stop();
  /// At exit: waits up to `patience` for the output to take what is queued. What could not
  /// be written is counted on stderr, if stderr takes it.
  void finish(std::chrono::milliseconds patience);

private:
  void flush();

  log_format format_;
  log_queue queue_;
  boost::asio::steady_timer retry_timer_;
  bool retry_armed_ = false;
  bool stopped_ = false;
  std::uint64_t reported_ = 0; // drops already reported
};

} // namespace sluice::proxy

#endif
