#include <sluice/detail/stream_limiter.hpp>

#include <algorithm>
#include <utility>

namespace sluice::detail {

stream_limiter::admission stream_limiter::admit(flow f, std::size_t want) {
  std::lock_guard lock(mutex_);
  const int i = static_cast<int>(f);
  token_bucket& bucket = buckets_[i];
  std::int64_t bytes = static_cast<std::int64_t>(
      std::min<std::size_t>(want, static_cast<std::size_t>(token_bucket::no_limit)));
  bytes = std::min(bytes, max_single_[i]);
  if (!bucket.limited())
    return {bytes, {}, false, group_, group_ ? clock::now() : clock::time_point{}};
  auto now = clock::now();
  std::int64_t tokens = bucket.tokens(now);
  // Below half a tick's worth (or what is wanted, if less) the operation waits for that
  // much, as a group waits for a refill: taking tokens as they trickle in would make a
  // flat-out writer wake, and write, every few bytes. Tokens added by hand are not a
  // trickle: they go at once (with a long tick they would sit unused).
  const std::int64_t worth = std::max<std::int64_t>(1, bucket.per_tick() / 2);
  const std::int64_t wanted = std::exchange(added_[i], false) ? 1 : std::min(bytes, worth);
  if (tokens < wanted)
    return {0, bucket.time_until(wanted, now), false, nullptr, now};
  return {std::min(bytes, tokens), {}, true, group_, now};
}

void stream_limiter::charge(flow f, std::int64_t moved, clock::time_point now) {
  std::lock_guard lock(mutex_);
  buckets_[static_cast<int>(f)].take(moved, now);
}

void stream_limiter::set_config(const token_bucket_config& cfg) {
  std::lock_guard lock(mutex_);
  config_ = cfg;
  auto now = clock::now();
  buckets_[0].reconfigure(cfg.read_rate, cfg.read_burst, cfg.tick, now);
  buckets_[1].reconfigure(cfg.write_rate, cfg.write_burst, cfg.tick, now);
}

void stream_limiter::clear_config() {
  std::lock_guard lock(mutex_);
  buckets_ = {};
  config_.reset();
}

std::optional<token_bucket_config> stream_limiter::config() {
  std::lock_guard lock(mutex_);
  return config_;
}

std::int64_t stream_limiter::limit(flow f) {
  std::lock_guard lock(mutex_);
  return buckets_[static_cast<int>(f)].tokens(clock::now());
}

void stream_limiter::decrement(flow f, std::int64_t n) {
  std::lock_guard lock(mutex_);
  buckets_[static_cast<int>(f)].take(n, clock::now());
  if (n < 0)
    added_[static_cast<int>(f)] = true;
}

void stream_limiter::set_max_single(flow f, std::size_t n) {
  std::lock_guard lock(mutex_);
  max_single_[static_cast<int>(f)] = static_cast<std::int64_t>(
      std::clamp<std::size_t>(n, 1, static_cast<std::size_t>(token_bucket::no_limit)));
}

std::int64_t stream_limiter::max_single(flow f) {
  std::lock_guard lock(mutex_);
  return max_single_[static_cast<int>(f)];
}

std::int64_t stream_limiter::max_to(flow f) {
  std::shared_ptr<group_state> g;
  std::int64_t own;
  {
    std::lock_guard lock(mutex_);
    const int i = static_cast<int>(f);
    own = std::min(buckets_[i].tokens(clock::now()), max_single_[i]);
    g = group_;
  }
  if (g && own > 0)
    return std::min(own, g->share_now(f, own));
  return own;
}

void stream_limiter::join(const std::shared_ptr<group_state>& g) {
  leave();
  if (g->join(member)) {
    std::lock_guard lock(mutex_);
    group_ = g;
  }
}

void stream_limiter::leave() {
  std::shared_ptr<group_state> g;
  {
    std::lock_guard lock(mutex_);
    g = std::move(group_);
  }
  if (g)
    g->leave(member);
}

std::shared_ptr<group_state> stream_limiter::group() {
  std::lock_guard lock(mutex_);
  return group_;
}

} // namespace sluice::detail
