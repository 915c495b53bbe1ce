#ifndef SLUICE_DETAIL_RATE_LIMIT_FAIR_QUEUE_HPP
#define SLUICE_DETAIL_RATE_LIMIT_FAIR_QUEUE_HPP

#include <cstdint>
#include <vector>

namespace sluice::detail {

/// One member's place in a fair_queue: embedded in the member, so that joining and leaving
/// the queue cost O(1) and no allocation.
struct fair_waiter {
  std::int64_t demand = 0;  ///< bytes wanted, >= 1
  std::int64_t granted = 0; ///< set by fair_queue::share
  fair_waiter* prev = nullptr;
  fair_waiter* next = nullptr;
  bool queued = false;
};

/// The members waiting for a group's tokens, in arrival order, and how a refill is shared
/// among them. Pure: no clock, no I/O, no lock (the group holds its own).
///
/// share() is max-min fair (water-filling): every waiter gets min(demand, level), with the
/// level chosen to spend the tokens; so equal demands get equal shares, and a waiter that
/// wants less (held down by its own lower limit) leaves the rest to the others. The bytes
/// that do not divide evenly go to the longest-waiting, who then re-queue behind the others,
/// so over rounds no one is favoured (deficit round robin). No grant is smaller than
/// `min_share` unless the demand is (or all the tokens are): when tokens are too few for
/// that, the longest-waiting are served first, the rest keep their place, and tokens too few
/// for the next one are left for the next refill. Cost: O(w log w) for w waiters served.
class fair_queue {
public:
  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }
  std::int64_t total_demand() const { return total_demand_; }

  void push(fair_waiter& w, std::int64_t demand);
  void remove(fair_waiter& w); // no-op if not queued

  /// Shares `tokens` (> 0) and appends the waiters given something, with `granted` set, to
  /// `served`; they leave the queue. Returns the tokens given out.
  std::int64_t share(std::int64_t tokens, std::int64_t min_share,
                     std::vector<fair_waiter*>& served);

private:
  fair_waiter* head_ = nullptr;
  fair_waiter* tail_ = nullptr;
  std::size_t size_ = 0;
  std::int64_t total_demand_ = 0;
  // Scratch space for share(), kept to reuse its memory.
  std::vector<fair_waiter*> order_;
  std::vector<std::int64_t> scratch_demands_;
};

} // namespace sluice::detail

#endif
