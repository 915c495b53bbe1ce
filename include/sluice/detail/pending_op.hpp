#ifndef SLUICE_DETAIL_PENDING_OP_HPP
#define SLUICE_DETAIL_PENDING_OP_HPP

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

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

/// What a handler's memory comes from when it names no allocator: Asio's per-thread cache,
/// as for Asio's own operations, so that an operation costs no malloc.
template <class Handler>
using op_allocator_t = net::associated_allocator_t<Handler, net::recycling_allocator<void>>;

template <class Handler>
op_allocator_t<Handler> get_op_allocator(const Handler& handler) {
  return net::get_associated_allocator(handler, net::recycling_allocator<void>());
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
    using plain = net::io_context::executor_type;
    using tracked = std::decay_t<decltype(net::prefer(std::declval<plain>(),
                                                      net::execution::outstanding_work.tracked))>;
    if (auto* io = ex.template target<plain>())
      return deliver(*io, std::forward<Handler>(handler), ec, n);
    if (auto* io = ex.template target<tracked>())
      return deliver(*io, std::forward<Handler>(handler), ec, n);
  }
  net::defer(ex, net::append(std::forward<Handler>(handler), ec, n));
}

/// A pending operation with its handler, allocated with the handler's allocator. It keeps
/// the handler's executor busy (outstanding work) until it completes. `Base` is pending_op
/// or a type derived from it whose constructor takes (complete_fn*, args...).
template <class Base, class Handler, class IoExecutor>
class pending_op_impl final : public Base {
  using work_type = std::decay_t<decltype(net::prefer(
      std::declval<net::associated_executor_t<Handler, IoExecutor>>(),
      net::execution::outstanding_work.tracked))>;

public:
  using allocator_type = typename std::allocator_traits<
      op_allocator_t<Handler>>::template rebind_alloc<pending_op_impl>;

  template <class... Args>
  pending_op_impl(Handler&& handler, const IoExecutor& io_ex, Args&&... args)
      : Base(&do_complete, std::forward<Args>(args)...), handler_(std::move(handler)),
        work_(net::prefer(net::get_associated_executor(handler_, io_ex),
                          net::execution::outstanding_work.tracked)) {}

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
    deliver(work, std::move(handler), ec, n);
  }

  Handler handler_;
  work_type work_;
};

} // namespace sluice::detail

#endif
