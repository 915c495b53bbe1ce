#ifndef SLUICE_DETAIL_STREAM_LIMITER_HPP
#define SLUICE_DETAIL_STREAM_LIMITER_HPP

#include <sluice/detail/group_state.hpp>
#include <sluice/detail/token_bucket.hpp>
#include <sluice/rate_limit.hpp>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

namespace sluice::detail {

/// The limits of one rate_limited_stream, apart from its timers and next layer: its own
/// buckets, its largest single read and write, and its group membership.
class stream_limiter {
public:
  using clock = std::chrono::steady_clock;

  stream_limiter() = default;
  stream_limiter(const stream_limiter&) = delete;
  stream_limiter& operator=(const stream_limiter&) = delete;
  ~stream_limiter() { leave(); }

  struct admission {
    std::int64_t bytes = 0;             ///< > 0: move at most this, group permitting
    std::chrono::nanoseconds wait{};    ///< else: wait this long, then ask again
    bool charge = false;                ///< the own bucket is to be charged what moves
    std::shared_ptr<group_state> group; ///< the group to ask next, if any
    clock::time_point now{};            ///< when admitted (read if a bucket is limited)
  };
  /// What the own bucket and the max single size allow for `want` (> 0) bytes now, and
  /// the group that must allow it too.
  admission admit(flow f, std::size_t want);
  /// Charges the own bucket for what moved.
  void charge(flow f, std::int64_t moved, clock::time_point now = clock::now());

  void set_config(const token_bucket_config& cfg); // validated by the caller
  void clear_config();
  std::optional<token_bucket_config> config();
  std::int64_t limit(flow f);
  void decrement(flow f, std::int64_t n);
  void set_max_single(flow f, std::size_t n);
  std::int64_t max_single(flow f);
  std::int64_t max_to(flow f);

  void join(const std::shared_ptr<group_state>& g);
  void leave();
  std::shared_ptr<group_state> group();

  group_member member; // this stream's place in its group

private:
  std::mutex mutex_;
  std::array<token_bucket, 2> buckets_;
  std::optional<token_bucket_config> config_;
  std::array<std::int64_t, 2> max_single_{token_bucket::no_limit, token_bucket::no_limit};
  std::shared_ptr<group_state> group_;
  std::array<bool, 2> added_{}; // tokens were added by hand since the last admission
};

/// A group wait for the blocking read_some / write_some: the grant is handed over through
/// a condition variable instead of a handler. The waiting thread serves the refill itself
/// when it is due, so that it needs no other thread to run the group's timer.
class blocking_grant final : public pending_op, public pending_op_factory<pending_op> {
public:
  blocking_grant() : pending_op(&on_complete, 0) {}
  pending_op* make(std::uint64_t serial) override {
    this->serial = serial;
    return this;
  }
  std::size_t wait(group_state& group, flow f, boost::system::error_code& ec) {
    std::unique_lock lock(mutex_);
    while (!done_) {
      lock.unlock();
      auto due = group.serve_if_due(f); // may complete this wait
      lock.lock();
      ready_.wait_for(lock, due, [this] { return done_; });
    }
    ec = ec_;
    return n_;
  }

private:
  static void on_complete(pending_op* op, const boost::system::error_code& ec, std::size_t n) {
    auto* self = static_cast<blocking_grant*>(op);
    std::lock_guard lock(self->mutex_);
    self->ec_ = ec;
    self->n_ = n;
    self->done_ = true;
    self->ready_.notify_one();
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  bool done_ = false;
  boost::system::error_code ec_;
  std::size_t n_ = 0;
};

} // namespace sluice::detail

#endif
