#ifndef SLUICE_DETAIL_CORE_PARKED_OP_HPP
#define SLUICE_DETAIL_CORE_PARKED_OP_HPP

#include <sluice/detail/core/deliver.hpp>

#include <boost/asio/detail/recycling_allocator.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace sluice::detail {

/// An operation waiting in a non-template core (a pipe, a stream's limiter) until the core
/// completes it with (error_code, std::size_t), or destroys it without a call because the
/// execution context it belongs to shuts down, as Asio's own operations are. The handler
/// lives in the derived parked_op_impl; the core sees only this.
class parked_op {
public:
  /// Completes with the result, or destroys when `ec` is null.
  using action = void(parked_op*, const boost::system::error_code* ec, std::size_t n);

  parked_op(action* act, net::execution_context* ctx) : act_(act), context_(ctx) {}

  /// Delivers the result to the handler and frees the operation. Call it without holding
  /// the core's lock.
  void complete(const boost::system::error_code& ec, std::size_t n) { act_(this, &ec, n); }
  /// Frees the operation and its handler without calling it (the context shuts down).
  void destroy() { act_(this, nullptr, 0); }

  /// The context whose shutdown destroys the operation; null for none (a blocking wait).
  net::execution_context* context() const { return context_; }

  std::uint64_t serial = 0; // tells a stale cancellation from one meant for this operation

protected:
  ~parked_op() = default;

private:
  action* act_;
  net::execution_context* context_;
};

/// Builds a parked operation when a core must park one (called with the core's lock held,
/// so only when needed: most operations complete at once and never allocate).
template <class Op>
class op_factory {
public:
  virtual Op* make(std::uint64_t serial) = 0;

protected:
  ~op_factory() = default;
};

/// What a handler's memory comes from when it names no allocator: a per-thread cache of
/// Asio's, as for Asio's own operations, so that an operation costs no malloc. Not the
/// default cache (two blocks, which the completions we queue already take in a ping-pong):
/// the one kept for type-erased functions, which our completions never use.
using op_recycler =
    net::detail::recycling_allocator<void, net::detail::thread_info_base::executor_function_tag>;

/// A handler's own allocator, or the cache when it names none. A composed operation
/// (async_compose, a coroutine) names std::allocator<void> when its own handler names none:
/// that is no choice either, as Asio's operations take it.
template <class Handler>
using op_allocator_t = std::conditional_t<
    std::is_same_v<net::associated_allocator_t<Handler, op_recycler>, std::allocator<void>>,
    op_recycler, net::associated_allocator_t<Handler, op_recycler>>;

template <class Handler>
op_allocator_t<Handler> get_op_allocator(const Handler& handler) {
  if constexpr (std::is_same_v<op_allocator_t<Handler>, op_recycler>)
    return op_recycler();
  else
    return net::get_associated_allocator(handler, op_recycler());
}

/// The execution context of an I/O executor: the one whose shutdown destroys the
/// operations parked for an I/O object on that executor.
template <class Executor>
net::execution_context& context_of(const Executor& ex) {
  return net::query(ex, net::execution::context);
}

/// An I/O object's executor, with what its operations need to know of it found once, not
/// per operation (an any_io_executor answers each question through a call): the io_context
/// it runs on, if any, and the execution context whose shutdown destroys what it parks.
template <class Executor>
struct resolved_executor {
  explicit resolved_executor(const Executor& ex)
      : executor(ex), io(io_context_of(ex)), context(&context_of(ex)) {}

  Executor executor;
  net::io_context* io;
  net::execution_context* context;
};

/// Delivers a result to a handler on an I/O object's executor, never inline.
template <class Executor, class Handler>
void deliver(const resolved_executor<Executor>& ex, Handler&& handler,
             const boost::system::error_code& ec, std::size_t n) {
  if (ex.io)
    deliver(ex.io->get_executor(), std::forward<Handler>(handler), ec, n);
  else
    deliver(ex.executor, std::forward<Handler>(handler), ec, n);
}

/// A marker: associated_executor_t gives it back for a handler without an executor.
struct no_own_executor {};

/// Whether a handler has an executor of its own; without one, it runs on the I/O object's.
template <class Handler>
inline constexpr bool has_own_executor =
    !std::is_same_v<net::associated_executor_t<Handler, no_own_executor>, no_own_executor>;

/// A parked operation with its handler, allocated with the handler's allocator. It keeps
/// the handler's executor busy (outstanding work) until it completes. `Base` is parked_op
/// or a type derived from it whose constructor takes (action*, execution_context*, args...).
template <class Base, class Handler, class IoExecutor>
class parked_op_impl final : public Base {
  using work_type = work_tracker<net::associated_executor_t<Handler, IoExecutor>>;

public:
  using allocator_type = typename std::allocator_traits<
      op_allocator_t<Handler>>::template rebind_alloc<parked_op_impl>;

  template <class... Args>
  parked_op_impl(Handler&& handler, const resolved_executor<IoExecutor>& io_ex, Args&&... args)
      : Base(&act, io_ex.context, std::forward<Args>(args)...), handler_(std::move(handler)),
        work_(track(handler_, io_ex)) {}

  /// Allocates one with the handler's allocator, moving the handler in.
  template <class... Args>
  static Base* make(Handler& handler, const resolved_executor<IoExecutor>& io_ex, Args&&... args) {
    using traits = std::allocator_traits<allocator_type>;
    allocator_type alloc(get_op_allocator(handler));
    parked_op_impl* op = traits::allocate(alloc, 1);
    try {
      traits::construct(alloc, op, std::move(handler), io_ex, std::forward<Args>(args)...);
    } catch (...) {
      traits::deallocate(alloc, op, 1);
      throw;
    }
    return op;
  }

private:
  static work_type track(const Handler& handler, const resolved_executor<IoExecutor>& io_ex) {
    if constexpr (!has_own_executor<Handler> && work_type::may_run_on_io_context)
      if (io_ex.io)
        return work_type(*io_ex.io);
    return work_type(net::get_associated_executor(handler, io_ex.executor));
  }

  static void act(parked_op* base, const boost::system::error_code* ec, std::size_t n) {
    auto* self = static_cast<parked_op_impl*>(base);
    allocator_type alloc(get_op_allocator(self->handler_));
    Handler handler(std::move(self->handler_));
    work_type work(std::move(self->work_));
    // Free the operation before the upcall so that the handler can reuse its memory.
    std::allocator_traits<allocator_type>::destroy(alloc, self);
    std::allocator_traits<allocator_type>::deallocate(alloc, self, 1);
    if (ec)
      std::move(work).deliver(std::move(handler), *ec, n);
    // else the handler and the work go here, uncalled
  }

  Handler handler_;
  work_type work_;
};

} // namespace sluice::detail

#endif
