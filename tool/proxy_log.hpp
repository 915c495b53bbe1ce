// sluice-proxy's log lines, apart from where they go: their two forms (text and JSON, each
// with a UTC timestamp) and the bounded queue that keeps the proxy from ever waiting for
// its output. No I/O here: the queue writes through a function it is given.
#ifndef SLUICE_TOOL_PROXY_LOG_HPP
#define SLUICE_TOOL_PROXY_LOG_HPP

#include "proxy_options.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace sluice::proxy {

/// "2024-05-01T12:34:56.789Z": ISO 8601, UTC, to the millisecond.
std::string iso8601(std::chrono::system_clock::time_point t);

/// `s` as a JSON string: quoted, with quotes, backslashes and control characters escaped.
std::string json_quote(std::string_view s);

/// One named value of a log line, for its JSON form; the value is rendered as JSON here.
struct log_field {
  log_field(std::string_view key, std::string_view value) : key(key), json(json_quote(value)) {}
  log_field(std::string_view key, const char* value) : log_field(key, std::string_view(value)) {}
  log_field(std::string_view key, std::uint64_t value) : key(key), json(std::to_string(value)) {}
  log_field(std::string_view key, double value);
  /// A value that is JSON already (an array, an object).
  static log_field raw(std::string_view key, std::string json);

  std::string_view key;
  std::string json;

private:
  log_field() = default;
};

/// The line of one event, newline included. text: "TIME MESSAGE"; json: an object with
/// "time", "event", "message", then the fields in their order.
std::string format_line(log_format format, std::chrono::system_clock::time_point time,
                        std::string_view event, std::string_view message,
                        std::initializer_list<log_field> fields = {});

/// Lines on their way to an output that may not take them now (a pipe nobody reads, a
/// terminal on hold, a log shipper restarting). It holds at most `capacity` bytes; a line
/// that does not fit is dropped and counted, never waited for. Once the output is gone
/// (its reader closed the pipe), every line is dropped and counted.
class log_queue {
public:
  explicit log_queue(std::size_t capacity) : capacity_(capacity) {}

  /// Queues `line` (a whole line, newline included), or drops it.
  void push(std::string_view line);

  /// What a write to the output did: took some bytes, would have had to wait, or failed
  /// for good.
  static constexpr std::ptrdiff_t would_block = 0;
  static constexpr std::ptrdiff_t gone = -1;

  /// Hands what is queued to `write(const char* data, std::size_t size)`, which returns
  /// the bytes it took (at least one), would_block or gone, until all is written or the
  /// output takes no more.
  template <class Write>
  void flush(Write&& write) {
    while (!gone_ && head_ < buffer_.size()) {
      std::ptrdiff_t n = write(buffer_.data() + head_, buffer_.size() - head_);
      if (n == would_block)
        return;
      if (n < 0) {
        lose_all();
        return;
      }
      head_ += static_cast<std::size_t>(n);
    }
    buffer_.clear();
    head_ = 0;
  }

  bool empty() const { return head_ == buffer_.size(); }
  std::size_t size() const { return buffer_.size() - head_; } ///< bytes queued
  std::uint64_t lines() const; ///< lines queued (one partly written counts)
  bool output_gone() const { return gone_; }
  /// Lines dropped since the start.
  std::uint64_t dropped() const { return dropped_; }

private:
  void lose_all();

  std::size_t capacity_;
  std::string buffer_; // queued bytes from head_ on
  std::size_t head_ = 0;
  std::uint64_t dropped_ = 0;
  bool gone_ = false;
};

} // namespace sluice::proxy

#endif
