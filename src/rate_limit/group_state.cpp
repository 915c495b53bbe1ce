#include <sluice/detail/rate_limit/group_state.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>

namespace sluice::detail {

namespace {
std::int64_t as_tokens(std::uint64_t v) {
  return v == unlimited ? token_bucket::no_limit : static_cast<std::int64_t>(v);
}

} // namespace

group_state::group_state(const net::any_io_executor& ex, const token_bucket_config& cfg,
                         const rate_clock& clock, rate_limit_group* owner)
    : clock_(clock), owner_(owner), executor_(ex) {
  cfg.validate();
  config_ = cfg;
  auto now = clock_.now();
  buckets_[0].reconfigure(cfg.read_rate, cfg.read_burst, cfg.tick, now);
  buckets_[1].reconfigure(cfg.write_rate, cfg.write_burst, cfg.tick, now);
}

std::int64_t group_state::rate(direction d) const {
  return as_tokens(d == direction::read ? config_.read_rate : config_.write_rate);
}

bool group_state::join(group_member& m) {
  std::lock_guard lock(mutex_);
  if (!owner_ || m.joined)
    return owner_ != nullptr;
  m.prev = nullptr;
  m.next = members_;
  if (members_)
    members_->prev = &m;
  members_ = &m;
  m.joined = true;
  ++size_;
  return true;
}

void group_state::leave(group_member& m) {
  ready_list done;
  std::lock_guard lock(mutex_);
  if (!m.joined)
    return;
  (m.prev ? m.prev->next : members_) = m.next;
  if (m.next)
    m.next->prev = m.prev;
  m.prev = m.next = nullptr;
  m.joined = false;
  --size_;
  for (direction d : {direction::read, direction::write})
    unqueue(d, m.waits[index(d)], net::error::try_again, done); // it asks again, alone
}

// Under the lock: takes `w` out of the queue, if it is there, and completes it with `ec`.
void group_state::unqueue(direction d, group_wait& w, const boost::system::error_code& ec,
                          ready_list& done) {
  if (!w.queued)
    return;
  queues_[index(d)].remove(w);
  done.add(std::exchange(w.op, nullptr), ec, 0);
  if (owner_)
    serve(d, done);
}

// A member's share of a refill when all wait. Taking tokens at once never gets more, or the
// members who find the queue empty would be served twice as well as those who wait.
std::int64_t group_state::quantum(direction d) const {
  std::int64_t members = std::max<std::int64_t>(1, static_cast<std::int64_t>(size_));
  return std::max(min_share_, refill(d) / members);
}

std::int64_t group_state::fair_share(direction d, std::int64_t tokens) const {
  std::int64_t members = std::max<std::int64_t>(1, static_cast<std::int64_t>(size_));
  return std::min(tokens, std::max(quantum(d), tokens / members));
}

// Under the lock: what m may take at once, or 0 when it must queue. Less than a member's
// share of a tick is not worth an operation: with a continuous refill, taking it would mean
// many tiny writes instead of one per tick.
std::int64_t group_state::grant_now(direction d, group_member& m, std::int64_t want,
                                    time_point now) {
  if (!owner_ || !m.joined)
    return want;
  const std::size_t i = index(d);
  if (!queues_[i].empty())
    return 0;
  std::int64_t tokens = buckets_[i].tokens(now);
  std::int64_t granted = want;
  // With tokens enough for every member to take as much, the share is all it wants: the
  // usual case of a limit that does not bind, known without a division.
  if (int128(want) * std::max<std::size_t>(1, size_) > tokens) {
    if (tokens <= 0 || tokens < std::min(want, quantum(d)))
      return 0;
    granted = std::min(want, fair_share(d, tokens));
  }
  buckets_[i].take(granted, now);
  return granted;
}

std::int64_t group_state::take(direction d, group_member& m, std::int64_t want,
                               std::uint64_t serial, op_factory<parked_op>* factory,
                               clock_reading& reading) {
  ready_list done;
  std::lock_guard lock(mutex_);
  const std::size_t i = index(d);
  // An unlimited bucket needs no time. The time may have been read before another member
  // took tokens as of a later one: the bucket then counts from the later one, and nothing
  // accrues twice.
  const auto now = buckets_[i].limited() ? reading.of(clock_) : time_point{};
  if (m.joined && m.asked_in[i] != interval_[i]) {
    m.asked_in[i] = interval_[i];
    ++askers_[i];
  }
  if (std::int64_t granted = grant_now(d, m, want, now); granted > 0 || !factory)
    return granted;
  ++waits_[i];
  group_wait& w = m.waits[i];
  w.op = factory->make(serial);
  w.op->serial = serial;
  queues_[i].push(w, want);
  // Serve now, too, when the refill is due: on a busy thread its timer's handler waits
  // behind the others, and tokens that reach the cap meanwhile are lost.
  if (!armed_[i] || buckets_[i].tokens(now) >= refill_target(d))
    serve(d, done);
  return 0;
}

// What a refill waits for: a tick's worth (or, in refill_target, all that is asked if less),
// so that it is shared among many rather than dribbled out to the first in line; and at most half
// the burst (often one tick's worth), so that a wake-up up to half a tick late (a loaded machine, a
// busy thread) spills no tokens at the cap.
std::int64_t group_state::refill(direction d) const {
  std::int64_t burst = buckets_[index(d)].burst();
  return std::min(rate(d), std::max<std::int64_t>(1, burst / 2));
}

std::int64_t group_state::refill_target(direction d) const {
  return std::min(refill(d), queues_[index(d)].total_demand());
}

void group_state::serve(direction d, ready_list& done, bool eager) {
  const std::size_t i = index(d);
  fair_queue& queue = queues_[i];
  if (!queue.empty()) {
    auto now = clock_.now();
    // Tokens added by hand (eager) are handed out at once: they are not a refill, and with a
    // long tick they would sit unused.
    std::int64_t tokens = buckets_[i].tokens(now);
    if (tokens > 0 && (eager || tokens >= refill_target(d))) {
      served_.clear();
      buckets_[i].take(queue.share(tokens, min_share_, served_), now);
      for (fair_waiter* s : served_) {
        auto* w = static_cast<group_wait*>(s);
        done.add(std::exchange(w->op, nullptr), {}, static_cast<std::size_t>(w->granted));
      }
    }
    if (!queue.empty())
      return arm(d, buckets_[i].time_until(refill_target(d), now));
  }
  if (armed_[i]) { // nobody waits: no timer
    ++generation_[i];
    armed_[i] = false;
    timers_[i]->cancel();
  }
}

void group_state::arm(direction d, std::chrono::nanoseconds delay) {
  const std::size_t i = index(d);
  std::uint64_t generation = ++generation_[i];
  armed_[i] = true;
  if (!timers_[i])
    timers_[i].emplace(executor_);
  timers_[i]->expires_after(clock_.real_wait(delay));
  timers_[i]->async_wait(
      [weak = weak_from_this(), d, generation](const boost::system::error_code&) {
        if (auto self = weak.lock())
          self->on_timer(d, generation);
      });
}

void group_state::on_timer(direction d, std::uint64_t generation) {
  ready_list done;
  std::lock_guard lock(mutex_);
  const std::size_t i = index(d);
  if (!owner_ || generation != generation_[i])
    return; // re-armed or disarmed since
  armed_[i] = false;
  serve(d, done);
}

std::chrono::nanoseconds group_state::serve_if_due(direction d) {
  ready_list done;
  std::lock_guard lock(mutex_);
  const std::size_t i = index(d);
  if (!owner_ || queues_[i].empty())
    return clock_.real_wait(config_.tick); // nothing to serve: a completion is on its way
  auto now = clock_.now();
  const std::int64_t target = refill_target(d);
  if (buckets_[i].tokens(now) < target)
    return clock_.real_wait(buckets_[i].time_until(target, now));
  serve(d, done);
  return {};
}

void group_state::release(direction d, std::int64_t granted, std::int64_t moved) {
  const std::size_t i = index(d);
  totals_[i].fetch_add(static_cast<std::uint64_t>(moved), std::memory_order_relaxed);
  if (granted <= moved)
    return;
  std::lock_guard lock(mutex_);
  if (owner_)
    buckets_[i].give_back(granted - moved);
}

void group_state::cancel_wait(direction d, group_member& m, std::uint64_t serial,
                              const boost::system::error_code& ec) {
  ready_list done;
  std::lock_guard lock(mutex_);
  group_wait& w = m.waits[index(d)];
  if (w.queued && w.op->serial == serial)
    unqueue(d, w, ec, done);
}

void group_state::cancel_waits(group_member& m) {
  ready_list done;
  std::lock_guard lock(mutex_);
  for (direction d : {direction::read, direction::write})
    unqueue(d, m.waits[index(d)], net::error::operation_aborted, done);
}

void group_state::withdraw(group_member& m, net::execution_context& ctx,
                           std::vector<parked_op*>& out) {
  ready_list done; // the others' refill may be due once these leave the queue
  std::lock_guard lock(mutex_);
  for (direction d : {direction::read, direction::write}) {
    group_wait& w = m.waits[index(d)];
    if (!w.queued || w.op->context() != &ctx)
      continue;
    queues_[index(d)].remove(w);
    out.push_back(std::exchange(w.op, nullptr));
    if (owner_)
      serve(d, done);
  }
}

std::int64_t group_state::share_now(direction d, std::int64_t want) {
  std::lock_guard lock(mutex_);
  const std::size_t i = index(d);
  if (!owner_)
    return want;
  if (!queues_[i].empty())
    return 0;
  std::int64_t tokens = buckets_[i].tokens(clock_.now());
  return tokens > 0 ? std::min(want, fair_share(d, tokens)) : tokens;
}

void group_state::set_config(const token_bucket_config& cfg) {
  cfg.validate();
  ready_list done;
  std::lock_guard lock(mutex_);
  config_ = cfg;
  auto now = clock_.now();
  buckets_[0].reconfigure(cfg.read_rate, cfg.read_burst, cfg.tick, now);
  buckets_[1].reconfigure(cfg.write_rate, cfg.write_burst, cfg.tick, now);
  if (owner_) // waiters are re-timed: served now if the new limit allows
    for (direction d : {direction::read, direction::write})
      serve(d, done);
}

token_bucket_config group_state::config() {
  std::lock_guard lock(mutex_);
  return config_;
}

std::int64_t group_state::level(direction d) {
  std::lock_guard lock(mutex_);
  return buckets_[index(d)].tokens(clock_.now());
}

void group_state::decrement(direction d, std::int64_t n) {
  ready_list done;
  std::lock_guard lock(mutex_);
  buckets_[index(d)].take(n, clock_.now());
  if (owner_)
    serve(d, done, n < 0);
}

std::uint64_t group_state::total(direction d) {
  return totals_[index(d)].load(std::memory_order_relaxed);
}

void group_state::reset_totals() {
  for (auto& total : totals_)
    total.store(0, std::memory_order_relaxed);
}

std::pair<std::uint64_t, std::size_t> group_state::take_activity(direction d) {
  std::lock_guard lock(mutex_);
  const std::size_t i = index(d);
  ++interval_[i];
  return {std::exchange(waits_[i], 0), std::exchange(askers_[i], 0)};
}

void group_state::set_min_share(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  min_share_ = static_cast<std::int64_t>(
      std::clamp<std::size_t>(bytes, 1, static_cast<std::size_t>(token_bucket::no_limit)));
}

std::size_t group_state::size() {
  std::lock_guard lock(mutex_);
  return size_;
}

rate_limit_group* group_state::owner() {
  std::lock_guard lock(mutex_);
  return owner_;
}

void group_state::dissolve() {
  ready_list done;
  std::lock_guard lock(mutex_);
  owner_ = nullptr;
  for (group_member* m = members_; m;) {
    group_member* next = m->next;
    for (group_wait& w : m->waits)
      if (w.queued) { // it asks again, on its own
        queues_[static_cast<std::size_t>(&w - m->waits.data())].remove(w);
        done.add(std::exchange(w.op, nullptr), net::error::try_again, 0);
      }
    m->prev = m->next = nullptr;
    m->joined = false;
    m = next;
  }
  members_ = nullptr;
  size_ = 0;
  for (auto& timer : timers_)
    timer.reset(); // nothing of the group's executor is used from here on
  executor_ = {};
}

} // namespace sluice::detail
