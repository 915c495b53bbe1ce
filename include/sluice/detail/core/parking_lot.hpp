#ifndef SLUICE_DETAIL_CORE_PARKING_LOT_HPP
#define SLUICE_DETAIL_CORE_PARKING_LOT_HPP

#include <sluice/detail/core/parked_op.hpp>

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution_context.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace sluice::detail {

/// A core where operations park: a pipe pair's state, a stream's limiter. It cancels one of
/// its operations on request, and gives up those of an execution context that shuts down,
/// for the caller to destroy.
class parking_lot {
public:
  /// Completes the operation parked in `slot` with operation_aborted, if it is still the
  /// one numbered `serial`.
  virtual void cancel(std::size_t slot, std::uint64_t serial) = 0;
  /// Takes out every operation parked for `ctx` and appends it to `out`, under the core's
  /// lock; the caller destroys them once the lock is released.
  virtual void withdraw(net::execution_context& ctx, std::vector<parked_op*>& out) = 0;

protected:
  ~parking_lot() = default;
};

/// Makes `ctx`'s shutdown withdraw and destroy what `lot` parks for it, like Asio's
/// services do with their operations. Call it once per lot and context, before the first
/// operation of `ctx` parks there; the lot may go first (it is held weakly).
void watch_shutdown(net::execution_context& ctx, std::weak_ptr<parking_lot> lot);

/// Lives in a handler's cancellation slot while its operation is parked. A late signal,
/// after the operation completed, finds another serial (or none) and does nothing.
class parked_canceller {
public:
  parked_canceller(std::shared_ptr<parking_lot> lot, std::size_t slot, std::uint64_t serial)
      : lot_(std::move(lot)), slot_(slot), serial_(serial) {}

  void operator()(net::cancellation_type type) const {
    using ct = net::cancellation_type;
    // A parked operation has moved nothing, so every kind of cancellation is safe.
    if ((type & (ct::terminal | ct::partial | ct::total)) != ct::none)
      lot_->cancel(slot_, serial_);
  }

private:
  std::shared_ptr<parking_lot> lot_;
  std::size_t slot_;
  std::uint64_t serial_;
};

} // namespace sluice::detail

#endif
