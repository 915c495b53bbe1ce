// Watching completions: what a handler was called with, running what is ready, an
// io_context on a thread of its own, and the kinds of per-operation cancellation.
#ifndef SLUICE_TEST_COMPLETION_HPP
#define SLUICE_TEST_COMPLETION_HPP

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <thread>

namespace sluice_test {

/// What a completion handler was called with, and how many times.
struct outcome {
  int calls = 0;
  boost::system::error_code ec;
  std::size_t n = 0;
  bool done() const { return calls > 0; }
};

/// A handler that stores its arguments in `o`: for `void(error_code, std::size_t)` and for
/// `void(error_code)`.
inline auto record(outcome& o) {
  return [&o](boost::system::error_code ec, std::size_t n = 0) {
    ++o.calls;
    o.ec = ec;
    o.n = n;
  };
}

/// Runs the handlers that are ready, and those they make ready, without waiting.
inline void settle(boost::asio::io_context& ctx) {
  ctx.restart();
  ctx.poll();
}

/// Runs `ctx` on a thread of its own until destroyed; the destructor stops and joins it.
class background {
public:
  explicit background(boost::asio::io_context& ctx)
      : ctx_(ctx), work_(boost::asio::make_work_guard(ctx)), thread_([this] { ctx_.run(); }) {}
  ~background() { stop(); }

  /// Stops the context and joins the thread; what the thread did happens-before the return.
  void stop() {
    if (!thread_.joinable())
      return;
    work_.reset();
    ctx_.stop();
    thread_.join();
  }

private:
  boost::asio::io_context& ctx_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

/// The kinds of per-operation cancellation an operation that moved nothing supports.
inline const boost::asio::cancellation_type cancellation_types[] = {
    boost::asio::cancellation_type::terminal, boost::asio::cancellation_type::partial,
    boost::asio::cancellation_type::total};

inline const char* name(boost::asio::cancellation_type type) {
  switch (type) {
  case boost::asio::cancellation_type::terminal:
    return "terminal";
  case boost::asio::cancellation_type::partial:
    return "partial";
  case boost::asio::cancellation_type::total:
    return "total";
  default:
    return "other";
  }
}

} // namespace sluice_test

#endif
