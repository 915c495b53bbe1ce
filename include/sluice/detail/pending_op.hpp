#ifndef SLUICE_DETAIL_PENDING_OP_HPP
#define SLUICE_DETAIL_PENDING_OP_HPP

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/detail/recycling_allocator.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <variant>

namespace sluice::detail {

namespace net = boost::asio;

/// An operation waiting in a non-template core (a pipe, a rate-limit group) until something
/// there completes it with (error_code, std::size_t). The handler lives in the derived
/// pending_op_impl; the core sees only this.
struct pending_op {
  using complete_fn = void(pending_op*, const boost::system::error_code&, std::size_t);

  pending_op(complete_fn* fn, std::uint64_t serial) : complete_(fn), serial(serial) {}

  /// Delivers the result to the handler and frees the operation. Call it without holding
  /// the core's lock.
  void complete(const boost::system::error_code& ec, std::size_t n) { complete_(this, ec, n); }

  complete_fn* complete_;
  std::uint64_t serial; // tells a stale cancellation from one meant for this operation
};

/// Builds a pending operation when a core must park one (called with the core's lock held,
/// so only when needed: most operations complete at once and never allocate).
template <class Op>
struct pending_op_factory {
  virtual Op* make(std::uint64_t serial) = 0;

protected:
  ~pending_op_factory() = default;
};

/// What a handler's memory comes from when it names no allocator: a per-thread cache of
/// Asio's, as for Asio's own operations, so that an operation costs no malloc. Not the
/// default cache (two blocks, which the completions we queue already take in a ping-pong):
/// the one kept for type-erased functions, which our completions never use.
using op_recycler =
    net::detail::recycling_allocator<void, net::detail::thread_info_base::executor_function_tag>;

template <class Handler>
using op_allocator_t = net::associated_allocator_t<Handler, op_recycler>;

template <class Handler>
op_allocator_t<Handler> get_op_allocator(const Handler& handler) {
  return net::get_associated_allocator(handler, op_recycler());
}

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

/// Delivers a result to a handler, never inline. Deferred rather than posted: when the
/// caller runs on the handler's io_context, Asio queues it on the thread's private queue
/// without taking the scheduler's lock, as it does for its own completions.
template <class Executor, class Handler>
void deliver(const Executor& ex, Handler&& handler, const boost::system::error_code& ec,
             std::size_t n) {
  if constexpr (std::is_same_v<Executor, net::any_io_executor>) {
    // An any_io_executor wraps the handler twice (two type erasures, two allocations).
    // It nearly always holds an io_context's executor: then go to that directly.
    if (auto* io = ex.template target<io_executor>())
      return deliver(*io, std::forward<Handler>(handler), ec, n);
    if (auto* io = ex.template target<tracked_io_executor>())
      return deliver(*io, std::forward<Handler>(handler), ec, n);
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
  explicit work_tracker(const Executor& ex) : work_(track(ex)) {}

  template <class Handler>
  void deliver(Handler&& handler, const boost::system::error_code& ec, std::size_t n) && {
    std::visit(
        [&](auto& work) {
          auto tracked = std::move(work); // released once the result is queued
          detail::deliver(tracked, std::forward<Handler>(handler), ec, n);
        },
        work_);
  }

private:
  using work_type =
      std::conditional_t<erased, std::variant<tracked_t<io_executor>, tracked_t<Executor>>,
                         std::variant<tracked_t<Executor>>>;

  static work_type track(const Executor& ex) {
    if constexpr (erased)
      if (auto* io = io_context_of(ex))
        return work_type(std::in_place_index<0>,
                         net::prefer(io->get_executor(), net::execution::outstanding_work.tracked));
    return net::prefer(ex, net::execution::outstanding_work.tracked);
  }

  work_type work_;
};

/// A pending operation with its handler, allocated with the handler's allocator. It keeps
/// the handler's executor busy (outstanding work) until it completes. `Base` is pending_op
/// or a type derived from it whose constructor takes (complete_fn*, args...).
template <class Base, class Handler, class IoExecutor>
class pending_op_impl final : public Base {
  using work_type = work_tracker<net::associated_executor_t<Handler, IoExecutor>>;

public:
  using allocator_type = typename std::allocator_traits<
      op_allocator_t<Handler>>::template rebind_alloc<pending_op_impl>;

  template <class... Args>
  pending_op_impl(Handler&& handler, const IoExecutor& io_ex, Args&&... args)
      : Base(&do_complete, std::forward<Args>(args)...), handler_(std::move(handler)),
        work_(net::get_associated_executor(handler_, io_ex)) {}

  /// Allocates one with the handler's allocator, moving the handler in.
  template <class... Args>
  static Base* make(Handler& handler, const IoExecutor& io_ex, Args&&... args) {
    using traits = std::allocator_traits<allocator_type>;
    allocator_type alloc(get_op_allocator(handler));
    pending_op_impl* op = traits::allocate(alloc, 1);
    try {
      traits::construct(alloc, op, std::move(handler), io_ex, std::forward<Args>(args)...);
    } catch (...) {
      traits::deallocate(alloc, op, 1);
      throw;
    }
    return op;
  }

private:
  static void do_complete(pending_op* base, const boost::system::error_code& ec, std::size_t n) {
    auto* self = static_cast<pending_op_impl*>(base);
    allocator_type alloc(get_op_allocator(self->handler_));
    Handler handler(std::move(self->handler_));
    work_type work(std::move(self->work_));
    // Free the operation before the upcall so that the handler can reuse its memory.
    std::allocator_traits<allocator_type>::destroy(alloc, self);
    std::allocator_traits<allocator_type>::deallocate(alloc, self, 1);
    std::move(work).deliver(std::move(handler), ec, n);
  }

  Handler handler_;
  work_type work_;
};

} // namespace sluice::detail

#endif
