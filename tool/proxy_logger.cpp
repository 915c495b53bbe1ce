#include "proxy_logger.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>

namespace sluice::proxy {

std::ptrdiff_t write_now(int fd, const char* data, std::size_t size) {
  pollfd p{fd, POLLOUT, 0};
  int ready = ::poll(&p, 1, 0);
  if (ready < 0)
    return errno == EINTR ? log_queue::would_block : log_queue::gone;
  if (ready == 0)
    return log_queue::would_block;
  if (!(p.revents & POLLOUT))
    return log_queue::gone; // POLLERR, POLLHUP, POLLNVAL: no reader, or no file
  ssize_t n = ::write(fd, data, std::min<std::size_t>(size, PIPE_BUF));
  if (n > 0)
    return n;
  // A full disk may be freed; a pipe without a reader (EPIPE: SIGPIPE is ignored) is gone.
  if (n < 0 && (errno == EAGAIN || errno == EINTR || errno == ENOSPC))
    return log_queue::would_block;
  return log_queue::gone;
}

logger::logger(boost::asio::io_context& ctx, log_format format)
    : format_(format), queue_(capacity), retry_timer_(ctx) {}

void logger::write(std::string_view event, std::string_view message,
                   std::initializer_list<log_field> fields) {
  queue_.push(format_line(format_, std::chrono::system_clock::now(), event, message, fields));
  flush();
}

void logger::stop() {
  stopped_ = true;
  retry_timer_.cancel();
}

void logger::finish(std::chrono::milliseconds patience) {
  stop();
  auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    flush();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (queue_.empty() || queue_.output_gone() || left.count() <= 0)
      break;
    pollfd p{STDOUT_FILENO, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
  std::uint64_t lost = queue_.dropped() - reported_ + queue_.lines();
  if (lost > 0) {
    std::string line = "sluice-proxy: " + std::to_string(lost) + " log lines dropped: stdout " +
                       (queue_.output_gone() ? "was closed" : "was not read") + "\n";
    write_now(STDERR_FILENO, line.data(), line.size());
  }
}

void logger::flush() {
  queue_.flush(
      [](const char* data, std::size_t size) { return write_now(STDOUT_FILENO, data, size); });
  if (queue_.empty() && !queue_.output_gone() && queue_.dropped() > reported_) {
    std::uint64_t n = queue_.dropped() - reported_;
    reported_ = queue_.dropped();
    queue_.push(
        format_line(format_, std::chrono::system_clock::now(), "log_dropped",
                    std::to_string(n) + " log lines dropped: stdout was not read fast enough",
                    {{"dropped", n}}));
    return flush();
  }
  if (!queue_.empty() && !queue_.output_gone() && !stopped_ && !retry_armed_) {
    retry_armed_ = true;
    retry_timer_.expires_after(retry);
    retry_timer_.async_wait([this](const boost::system::error_code& ec) {
      retry_armed_ = false;
      if (!ec)
        flush();
    });
  }
}

} // namespace sluice::proxy
