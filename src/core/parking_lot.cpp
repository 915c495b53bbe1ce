#include <sluice/detail/core/parking_lot.hpp>

#include <mutex>

namespace sluice::detail {

namespace {

/// The service of an execution context that destroys, at its shutdown, the operations
/// parked in sluice's cores for that context, as Asio's services destroy theirs: a parked
/// coroutine's frame is destroyed, its RAII runs, nothing leaks.
class shutdown_watch final : public net::execution_context::service {
public:
  using key_type = shutdown_watch;
  static net::execution_context::id id;

  explicit shutdown_watch(net::execution_context& ctx) : service(ctx) {}

  void add(std::weak_ptr<parking_lot> lot) {
    std::lock_guard lock(mutex_);
    if (lots_.size() >= 2 * live_ + 16) { // forget the lots that went, now and then
      std::erase_if(lots_, [](const auto& l) { return l.expired(); });
      live_ = lots_.size();
    }
    lots_.push_back(std::move(lot));
  }

private:
  void shutdown() override {
    // Destroying an operation may destroy objects that park or complete others (a
    // coroutine frame holding a pipe end, say): go again until a pass finds nothing.
    for (;;) {
      std::vector<std::shared_ptr<parking_lot>> live;
      {
        std::lock_guard lock(mutex_);
        for (auto& l : lots_)
          if (auto p = l.lock())
            live.push_back(std::move(p));
      }
      std::vector<parked_op*> ops;
      for (auto& lot : live)
        lot->withdraw(context(), ops);
      for (parked_op* op : ops)
        op->destroy(); // outside every lock: a handler's destructor may call into a core
      if (ops.empty())
        return;
    }
  }

  std::mutex mutex_;
  std::vector<std::weak_ptr<parking_lot>> lots_;
  std::size_t live_ = 0; // lots_.size() after the last pruning
};

net::execution_context::id shutdown_watch::id;

} // namespace

void watch_shutdown(net::execution_context& ctx, std::weak_ptr<parking_lot> lot) {
  net::use_service<shutdown_watch>(ctx).add(std::move(lot));
}

} // namespace sluice::detail
