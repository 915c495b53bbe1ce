#include <sluice/detail/rate_limit/fair_queue.hpp>

#include <algorithm>
#include <cassert>
#include <limits>

namespace sluice::detail {

void fair_queue::push(fair_waiter& w, std::int64_t demand) {
  assert(!w.queued && demand > 0);
  w.demand = demand;
  w.granted = 0;
  w.prev = tail_;
  w.next = nullptr;
  (tail_ ? tail_->next : head_) = &w;
  tail_ = &w;
  w.queued = true;
  ++size_;
  total_demand_ += demand;
}

void fair_queue::remove(fair_waiter& w) {
  if (!w.queued)
    return;
  (w.prev ? w.prev->next : head_) = w.next;
  (w.next ? w.next->prev : tail_) = w.prev;
  w.prev = w.next = nullptr;
  w.queued = false;
  --size_;
  total_demand_ -= w.demand;
}

std::int64_t fair_queue::share(std::int64_t tokens, std::int64_t min_share,
                               std::vector<fair_waiter*>& served) {
  assert(tokens > 0);
  order_.clear();
  for (fair_waiter* w = head_; w; w = w->next)
    order_.push_back(w); // arrival order
  std::int64_t given = 0;

  // The water level: the largest L with sum(min(demand, L)) <= tokens, and the `extra`
  // tokens left when every waiter above it gets L.
  std::int64_t level = 0, extra = 0;
  if (total_demand_ <= tokens) {
    level = std::numeric_limits<std::int64_t>::max();
  } else {
    std::vector<std::int64_t>& demands = scratch_demands_;
    demands.clear();
    for (fair_waiter* w : order_)
      demands.push_back(w->demand);
    std::sort(demands.begin(), demands.end());
    std::int64_t left = tokens;
    std::size_t n = demands.size();
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t even = left / static_cast<std::int64_t>(n - i);
      if (demands[i] > even) { // everyone from here on is capped at the level
        level = even;
        extra = left - even * static_cast<std::int64_t>(n - i);
        break;
      }
      left -= demands[i];
    }
  }

  if (level >= min_share) {
    for (fair_waiter* w : order_)
      w->granted = std::min(w->demand, level);
    for (fair_waiter* w : order_) { // the longest-waiting get the odd bytes...
      if (extra == 0)
        break;
      if (w->demand > level) {
        ++w->granted;
        --extra;
      }
    }
    // ...and come back last, so that next round the others are ahead of them.
    std::stable_partition(order_.begin(), order_.end(),
                          [level](fair_waiter* w) { return w->granted <= level; });
  } else {
    // Too few tokens for everyone's min_share: the longest-waiting are served first, a whole
    // min_share each (or their demand), and what is too little for the next one stays for
    // the next refill. Handed out as a sliver, it would fall refill after refill on the same
    // few members (the queue turns by the same step each time), and they would lose by it.
    std::int64_t left = tokens;
    for (fair_waiter* w : order_)
      w->granted = 0;
    for (fair_waiter* w : order_) {
      std::int64_t grant = std::min(w->demand, std::max<std::int64_t>(min_share, 1));
      if (grant > left) {
        if (left < tokens)
          break;
        grant = left; // less than one min_share in all: the first takes it, or nobody would
      }
      w->granted = grant;
      left -= grant;
    }
  }

  for (fair_waiter* w : order_) {
    if (w->granted <= 0)
      continue;
    given += w->granted;
    remove(*w);
    served.push_back(w);
  }
  return given;
}

} // namespace sluice::detail
