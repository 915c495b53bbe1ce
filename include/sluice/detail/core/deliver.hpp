#ifndef SLUICE_DETAIL_CORE_DELIVER_HPP
#define SLUICE_DETAIL_CORE_DELIVER_HPP

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>
#include <variant>

namespace sluice::detail {

namespace net = boost::asio;

/// A handler bound to its result, showing Asio only the handler's allocator. Used once we
/// have found the io_context the handler's executor runs on: defer() then queues it there
/// directly, instead of through a dispatcher back to the handler's (type-erased) executor.
template <class Handler>
struct bound_result {
  Handler handler;
  boost::system::error_code ec;
  std::size_t n;

  using allocator_type = net::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept { return net::get_associated_allocator(handler); }
  void operator()() { std::move(handler)(ec, n); }
};

using io_executor = net::io_context::executor_type;
using tracked_io_executor = std::decay_t<decltype(net::prefer(
    std::declval<io_executor>(), net::execution::outstanding_work.tracked))>;

/// The io_context whose executor an any_io_executor holds (plain, or tracking work as
/// Asio's composed operations make it), or nullptr.
inline net::io_context* io_context_of(const net::any_io_executor& ex) {
  if (auto* io = ex.target<io_executor>())
    return &io->context();
  if (auto* io = ex.target<tracked_io_executor>())
    return &io->context();
  return nullptr;
}

/// ...and of any other executor: an io_context's own executors are known by their type.
template <class Executor>
net::io_context* io_context_of(const Executor& ex) {
  if constexpr (std::is_same_v<Executor, io_executor> ||
                std::is_same_v<Executor, tracked_io_executor>)
    return &ex.context();
  else
    return nullptr;
}

/// Delivers a result to a handler, never inline. Deferred rather than posted: when the
/// caller runs on the handler's io_context, Asio queues it on the thread's private queue
/// without taking the scheduler's lock, as it does for its own completions.
template <class Executor, class Handler>
void deliver(const Executor& ex, Handler&& handler, const boost::system::error_code& ec,
             std::size_t n) {
  if constexpr (std::is_same_v<Executor, net::any_io_executor>) {
    // An any_io_executor wraps the handler twice (two type erasures, two allocations).
    // It nearly always holds an io_context's executor: then go to that directly (untracked:
    // the queued handler counts as work itself).
    if (auto* io = io_context_of(ex))
      return deliver(io->get_executor(), std::forward<Handler>(handler), ec, n);
  } else if constexpr (std::is_same_v<net::associated_executor_t<std::decay_t<Handler>>,
                                      net::any_io_executor> &&
                       requires { ex.context(); }) {
    // The handler's own executor runs on this very io_context: queue it here directly,
    // rather than through a dispatcher back to its type-erased executor.
    if (io_context_of(net::get_associated_executor(handler)) == &ex.context())
      return net::defer(ex,
                        bound_result<std::decay_t<Handler>>{std::forward<Handler>(handler), ec, n});
  }
  net::defer(ex, net::append(std::forward<Handler>(handler), ec, n));
}

/// A unit of outstanding work handed on from the completion that this thread runs to the
/// next operation its handler parks on the same io_context; null outside such a handler.
inline thread_local tracked_io_executor* handed_on_work = nullptr;

/// A unit of `io`'s outstanding work: the one handed on to this thread, if it is `io`'s,
/// else a new one.
inline tracked_io_executor take_work(net::io_context& io) {
  if (tracked_io_executor* work = handed_on_work; work && &work->context() == &io) {
    handed_on_work = nullptr;
    return std::move(*work);
  }
  return net::prefer(io.get_executor(), net::execution::outstanding_work.tracked);
}

/// A parked operation's result on its way to a handler that runs on the io_context, with
/// the operation's unit of work. Counting work is an atomic operation on the io_context,
/// and a reader or writer that ping-pongs parks again from nearly every handler: so while
/// the handler runs, the next operation it parks on this io_context takes the unit over
/// (take_work); else the unit is released when the handler returns.
template <class Handler>
struct result_with_work {
  Handler handler;
  boost::system::error_code ec;
  std::size_t n;
  tracked_io_executor work;

  using allocator_type = net::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept { return net::get_associated_allocator(handler); }
  void operator()() {
    struct restore { // a handler may run others (poll() inside a handler): stack discipline
      tracked_io_executor* outer;
      ~restore() { handed_on_work = outer; }
    } guard{std::exchange(handed_on_work, &work)};
    std::move(handler)(ec, n);
  }
};

/// Keeps an executor busy (outstanding work) while an operation waits, then delivers the
/// result to it. An any_io_executor holding an io_context's executor (the usual case) is
/// unwrapped once, here, rather than by every call through it.
template <class Executor>
class work_tracker {
  template <class E>
  using tracked_t = std::decay_t<decltype(net::prefer(std::declval<E>(),
                                                      net::execution::outstanding_work.tracked))>;
  static constexpr bool erased = std::is_same_v<Executor, net::any_io_executor>;

public:
  /// Whether the work may be an io_context's own (then the handler runs on it directly).
  static constexpr bool may_run_on_io_context =
      erased || std::is_same_v<tracked_t<Executor>, tracked_io_executor>;

  explicit work_tracker(const Executor& ex) : work_(track(ex)) {}
  /// Work on `io`, which `Executor` is known to run on.
  explicit work_tracker(net::io_context& io) requires may_run_on_io_context
      : work_(std::in_place_index<0>, take_work(io)) {}

  template <class Handler>
  void deliver(Handler&& handler, const boost::system::error_code& ec, std::size_t n) && {
    std::visit(
        [&](auto& work) {
          if constexpr (std::is_same_v<std::decay_t<decltype(work)>, tracked_io_executor>) {
            auto io = work.context().get_executor(); // untracked: the unit goes along
            net::defer(io, result_with_work<std::decay_t<Handler>>{std::forward<Handler>(handler),
                                                                   ec, n, std::move(work)});
          } else {
            // Queued through an untracked copy: a tracked one would count the work again
            // for as long as the copy lives, two more atomic operations for nothing. The
            // queued result counts as work itself, so it is safe to release ours after.
            auto tracked = std::move(work);
            detail::deliver(net::prefer(tracked, net::execution::outstanding_work.untracked),
                            std::forward<Handler>(handler), ec, n);
          }
        },
        work_);
  }

private:
  using work_type =
      std::conditional_t<erased, std::variant<tracked_io_executor, tracked_t<Executor>>,
                         std::variant<tracked_t<Executor>>>;

  static work_type track(const Executor& ex) {
    if constexpr (may_run_on_io_context)
      if (auto* io = io_context_of(ex))
        return work_type(std::in_place_index<0>, take_work(*io));
    return work_type(net::prefer(ex, net::execution::outstanding_work.tracked));
  }

  work_type work_;
};

} // namespace sluice::detail

#endif
