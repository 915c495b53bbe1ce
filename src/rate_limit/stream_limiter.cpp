#include <sluice/detail/rate_limit/stream_limiter.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <utility>

namespace sluice::detail {

namespace error = boost::asio::error;

stream_limiter::stream_limiter(const net::any_io_executor& ex) : executor_(ex) {}

stream_limiter::~stream_limiter() {
  leave(); // the group must not keep a pointer to member_
}

stream_limiter::admission stream_limiter::take(direction d, std::size_t want, wait_factory* factory,
                                               time_point expiry) {
  ready_list done;
  std::lock_guard lock(mutex_);
  const std::size_t i = index(d);
  if (closed_) { // a wake-up that was on its way when the stream went
    if (!factory)
      return {verdict::wait, {}};
    done.add(factory->make(++serial_, {}), error::operation_aborted, 0);
    return {verdict::parked, {}};
  }
  std::int64_t bytes = static_cast<std::int64_t>(
      std::min<std::size_t>(want, static_cast<std::size_t>(token_bucket::no_limit)));
  bytes = std::min(bytes, single_cap_[i]);
  ticket t;
  clock_reading reading;
  if (token_bucket& bucket = buckets_[i]; bucket.limited()) {
    const auto now = reading.of(*clock_);
    const std::int64_t tokens = bucket.tokens(now);
    const std::int64_t worth = std::max<std::int64_t>(1, bucket.per_tick() / 2);
    const std::int64_t wanted = added_[i] ? 1 : std::min(bytes, worth);
    if (tokens < wanted) {
      if (!factory)
        return {verdict::wait, {}};
      added_[i] = false;
      parked_op* op = factory->make(++serial_, t);
      op->serial = serial_;
      park_own(d, wanted, bucket.time_until(wanted, now), op);
      if (expiry != never)
        arm_expiry(d, expiry, serial_);
      return {verdict::parked, {}};
    }
    added_[i] = false;
    bytes = std::min(bytes, tokens);
    t.own = ticket::own_charge::due; // if it waits for the group
  }
  if (group_) {
    // The group may complete the wait on another thread as soon as it is queued: the
    // ticket goes into the operation when it is made.
    struct to_group final : op_factory<parked_op> {
      to_group(stream_limiter& l, wait_factory& f, const ticket& t)
          : limiter(l), inner(f), grant(t) {}
      parked_op* make(std::uint64_t serial) override {
        parked_op* op = inner.make(serial, grant);
        limiter.watch(op);
        return op;
      }
      stream_limiter& limiter;
      wait_factory& inner;
      const ticket& grant;
    };
    t.group = group_;
    std::optional<to_group> park;
    if (factory)
      park.emplace(*this, *factory, t);
    std::int64_t granted =
        group_->take(d, member_, bytes, ++serial_, park ? &*park : nullptr, reading);
    if (granted == 0) {
      if (!factory)
        return {verdict::wait, {}};
      if (expiry != never)
        arm_expiry(d, expiry, serial_); // the group may have served it already: then a no-op
      return {verdict::parked, {}};
    }
    bytes = granted;
  }
  if (t.own == ticket::own_charge::due) { // taken now, as the group's grant is
    buckets_[i].take(bytes, reading.of(*clock_));
    t.own = ticket::own_charge::taken;
  }
  t.bytes = static_cast<std::size_t>(bytes);
  return {verdict::go, std::move(t)};
}

void stream_limiter::settle(direction d, const ticket& t, std::size_t moved) {
  const auto n = static_cast<std::int64_t>(moved);
  const auto granted = static_cast<std::int64_t>(t.bytes);
  if (t.own == ticket::own_charge::due) {
    std::lock_guard lock(mutex_);
    buckets_[index(d)].take(n, clock_->now());
  } else if (t.own == ticket::own_charge::taken && n < granted) {
    std::lock_guard lock(mutex_);
    buckets_[index(d)].give_back(granted - n);
  }
  if (t.group)
    t.group->release(d, granted, n);
}

// Under the lock: `op` waits for `tokens` own tokens, due after `wait` of the clock's time.
void stream_limiter::park_own(direction d, std::int64_t tokens, std::chrono::nanoseconds wait,
                              parked_op* op) {
  own_wait& w = own_waits_[index(d)];
  w.op = op;
  w.tokens = tokens;
  watch(op);
  if (!w.timer)
    w.timer.emplace(executor_);
  w.timer->expires_after(clock_->real_wait(wait));
  w.timer->async_wait(
      [weak = weak_from_this(), d, generation = ++w.generation](const boost::system::error_code&) {
        auto self = weak.lock();
        if (!self)
          return;
        ready_list done;
        std::lock_guard lock(self->mutex_);
        if (self->own_waits_[index(d)].generation == generation)
          self->wake_own(d, error::try_again, done); // it looks at the bucket again
      });
}

// Under the lock: the operation numbered `serial`, waiting in direction `d`, times out at
// `expiry`. One timer per direction: an operation's next wait re-arms it.
void stream_limiter::arm_expiry(direction d, time_point expiry, std::uint64_t serial) {
  auto& timer = expiry_timers_[index(d)];
  if (!timer)
    timer.emplace(executor_);
  timer->expires_at(expiry);
  timer->async_wait([weak = weak_from_this(), d, serial](const boost::system::error_code& ec) {
    if (ec) // disarmed or re-armed
      return;
    if (auto self = weak.lock())
      self->expire(d, serial);
  });
}

// Completes the wait numbered `serial`, if it still waits.
void stream_limiter::expire(direction d, std::uint64_t serial) {
  ready_list done;
  std::lock_guard lock(mutex_);
  if (own_wait& w = own_waits_[index(d)]; w.op && w.op->serial == serial)
    wake_own(d, error::timed_out, done);
  else if (group_)
    group_->cancel_wait(d, member_, serial, error::timed_out);
}

void stream_limiter::disarm_expiry(direction d) {
  std::lock_guard lock(mutex_);
  if (auto& timer = expiry_timers_[index(d)])
    timer->cancel();
}

// Under the lock: completes the own-bucket wait of `d`, if any, with `ec`.
void stream_limiter::wake_own(direction d, const boost::system::error_code& ec, ready_list& done) {
  own_wait& w = own_waits_[index(d)];
  if (!w.op)
    return;
  ++w.generation;
  done.add(std::exchange(w.op, nullptr), ec, 0);
  if (w.timer)
    w.timer->cancel();
}

// Under the lock: the first operation that parks here for an execution context makes its
// shutdown look here (a stream's operations all belong to its executor's context).
void stream_limiter::watch(parked_op* op) {
  if (watched_ || !op->context())
    return;
  watch_shutdown(*op->context(), weak_from_this());
  watched_ = true;
}

std::uint64_t stream_limiter::cancels(direction d) {
  std::lock_guard lock(mutex_);
  return cancels_[index(d)];
}

bool stream_limiter::stopped(direction d, std::uint64_t cancels_seen) {
  std::lock_guard lock(mutex_);
  return closed_ || cancels_[index(d)] != cancels_seen;
}

void stream_limiter::set_config(const token_bucket_config& cfg) {
  ready_list done;
  std::lock_guard lock(mutex_);
  config_ = cfg;
  const auto now = clock_->now();
  buckets_[0].reconfigure(cfg.read_rate, cfg.read_burst, cfg.tick, now);
  buckets_[1].reconfigure(cfg.write_rate, cfg.write_burst, cfg.tick, now);
  for (direction d : {direction::read, direction::write})
    wake_own(d, error::try_again, done); // waits are re-timed
}

void stream_limiter::clear_config() {
  ready_list done;
  std::lock_guard lock(mutex_);
  buckets_ = {};
  config_.reset();
  for (direction d : {direction::read, direction::write})
    wake_own(d, error::try_again, done);
}

std::optional<token_bucket_config> stream_limiter::config() {
  std::lock_guard lock(mutex_);
  return config_;
}

void stream_limiter::set_clock(const rate_clock& clock) {
  ready_list done;
  std::lock_guard lock(mutex_);
  clock_ = &clock;
  for (direction d : {direction::read, direction::write})
    wake_own(d, error::try_again, done);
}

std::int64_t stream_limiter::level(direction d) {
  std::lock_guard lock(mutex_);
  return buckets_[index(d)].tokens(clock_->now());
}

void stream_limiter::decrement(direction d, std::int64_t n) {
  ready_list done;
  std::lock_guard lock(mutex_);
  buckets_[index(d)].take(n, clock_->now());
  if (n < 0)
    added_[index(d)] = true;
  wake_own(d, error::try_again, done);
}

void stream_limiter::set_single_cap(direction d, std::size_t n) {
  std::lock_guard lock(mutex_);
  single_cap_[index(d)] = static_cast<std::int64_t>(
      std::clamp<std::size_t>(n, 1, static_cast<std::size_t>(token_bucket::no_limit)));
}

std::int64_t stream_limiter::single_cap(direction d) {
  std::lock_guard lock(mutex_);
  return single_cap_[index(d)];
}

std::int64_t stream_limiter::max_now(direction d) {
  std::lock_guard lock(mutex_);
  const std::size_t i = index(d);
  std::int64_t own = std::min(buckets_[i].tokens(clock_->now()), single_cap_[i]);
  if (group_ && own > 0)
    own = std::min(own, group_->share_now(d, own));
  return std::max<std::int64_t>(0, own);
}

void stream_limiter::join(const std::shared_ptr<group_state>& g) {
  std::lock_guard lock(mutex_);
  if (group_ == g)
    return;
  if (auto old = std::exchange(group_, nullptr))
    old->leave(member_); // a waiting operation asks again
  if (g->join(member_))
    group_ = g;
}

void stream_limiter::leave() {
  std::lock_guard lock(mutex_);
  if (auto old = std::exchange(group_, nullptr))
    old->leave(member_);
}

std::shared_ptr<group_state> stream_limiter::group() {
  std::lock_guard lock(mutex_);
  return group_;
}

void stream_limiter::cancel_all() {
  ready_list done;
  std::lock_guard lock(mutex_);
  for (direction d : {direction::read, direction::write}) {
    ++cancels_[index(d)];
    wake_own(d, error::operation_aborted, done);
  }
  if (group_)
    group_->cancel_waits(member_);
}

void stream_limiter::close() {
  ready_list done;
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (direction d : {direction::read, direction::write})
    wake_own(d, error::operation_aborted, done);
  if (auto old = std::exchange(group_, nullptr)) {
    old->cancel_waits(member_);
    old->leave(member_);
  }
  for (own_wait& w : own_waits_)
    w.timer.reset(); // nothing of the stream's executor is used from here on
  for (auto& timer : expiry_timers_)
    timer.reset();
}

std::chrono::nanoseconds stream_limiter::serve_if_due(direction d) {
  ready_list done;
  std::lock_guard lock(mutex_);
  own_wait& w = own_waits_[index(d)];
  if (w.op) {
    const auto now = clock_->now();
    const auto wait = buckets_[index(d)].time_until(w.tokens, now);
    if (wait <= std::chrono::nanoseconds::zero()) {
      wake_own(d, error::try_again, done);
      return {};
    }
    return clock_->real_wait(wait);
  }
  if (group_)
    return group_->serve_if_due(d);
  return std::chrono::milliseconds(1); // nothing waits here: a completion is on its way
}

void stream_limiter::cancel(std::size_t slot, std::uint64_t serial) {
  ready_list done;
  std::lock_guard lock(mutex_);
  const auto d = static_cast<direction>(slot);
  if (own_wait& w = own_waits_[index(d)]; w.op && w.op->serial == serial)
    wake_own(d, error::operation_aborted, done);
  else if (group_)
    group_->cancel_wait(d, member_, serial);
}

void stream_limiter::withdraw(net::execution_context& ctx, std::vector<parked_op*>& out) {
  std::lock_guard lock(mutex_);
  for (own_wait& w : own_waits_)
    if (w.op && w.op->context() == &ctx) {
      ++w.generation;
      out.push_back(std::exchange(w.op, nullptr));
    }
  if (group_)
    group_->withdraw(member_, ctx, out);
}

boost::system::error_code blocking_wait::wait(stream_limiter& limiter, direction d) {
  std::unique_lock lock(mutex_);
  while (!done_) {
    lock.unlock();
    auto due = limiter.serve_if_due(d); // may complete this wait
    lock.lock();
    ready_.wait_for(lock, due, [this] { return done_; });
  }
  return ec_;
}

void blocking_wait::on_result(parked_op* op, const boost::system::error_code* ec, std::size_t n) {
  auto* self = static_cast<blocking_wait*>(op);
  std::lock_guard lock(self->mutex_);
  self->ec_ = ec ? *ec : error::operation_aborted;
  self->grant.bytes = n;
  self->done_ = true;
  self->ready_.notify_one();
}

} // namespace sluice::detail
