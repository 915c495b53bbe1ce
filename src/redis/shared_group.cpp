#include <sluice/detail/redis/lease_store.hpp>
#include <sluice/detail/redis/share_policy.hpp>
#include <sluice/redis/client.hpp>
#include <sluice/redis/shared_group.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstdio>
#include <mutex>
#include <random>
#include <stdexcept>

#include <unistd.h>

namespace sluice::redis {

namespace net = boost::asio;
using time_point = rate_clock::time_point;

void shared_group_options::validate() const {
  auto bad = [](const std::string& field, const std::string& why) {
    throw std::invalid_argument("sluice::redis::shared_group_options: " + field + ": " + why);
  };
  address::parse(store); // throws, quoting the address
  detail::lease_keys(name, "write");
  if (read_rate == unlimited && write_rate == unlimited)
    bad("read_rate, write_rate", "both unlimited: nothing to share");
  if (read_rate == 0 || write_rate == 0)
    bad(read_rate == 0 ? "read_rate" : "write_rate", "0 (a direction with no budget)");
  if (lease < std::chrono::milliseconds(10))
    bad("lease", std::to_string(lease.count()) + " ms: less than 10 ms");
  if (ttl < 2 * lease)
    bad("ttl", std::to_string(ttl.count()) + " ms: less than two leases");
  if (hold.count() < 0)
    bad("hold", "negative");
  if (!(weight >= 0))
    bad("weight", "negative");
  auto check_burst = [&](const char* field, std::uint64_t rate, std::uint64_t burst) {
    if (rate == unlimited || burst == 0)
      return;
    const double lease_worth =
        static_cast<double>(rate) * std::chrono::duration<double>(lease).count();
    if (static_cast<double>(burst) < lease_worth)
      bad(field, std::to_string(burst) + ": less than one lease's worth of the rate");
  };
  check_burst("read_burst", read_rate, read_burst);
  check_burst("write_burst", write_rate, write_burst);
}

namespace detail {

namespace {

std::string make_member_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0)
    std::snprintf(host, sizeof host, "unknown");
  std::random_device random;
  char nonce[17];
  std::snprintf(nonce, sizeof nonce, "%08x%08x", random(), random());
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + nonce;
}

} // namespace

class shared_group_state : public std::enable_shared_from_this<shared_group_state> {
public:
  shared_group_state(const net::any_io_executor& ex, const shared_group_options& options,
                     rate_limit_group& group, const rate_clock& clock)
      : options_(options), member_(make_member_id()), clock_(clock), group_(&group),
        client_(ex, options.store, options.lease * 2 / 5), store_(client_), timer_(ex) {
    const std::array<std::uint64_t, 2> rates{options.read_rate, options.write_rate};
    const std::array<std::uint64_t, 2> bursts{options.read_burst, options.write_burst};
    const std::array<std::uint64_t, 2> startup{options.startup_read_rate,
                                               options.startup_write_rate};
    const std::array<const char*, 2> names{"read", "write"};
    for (std::size_t i = 0; i < 2; ++i) {
      direction_state& d = dirs_[i];
      d.shared = rates[i] != unlimited;
      if (!d.shared)
        continue;
      d.keys = lease_keys(options.name, names[i]);
      d.rate = rates[i];
      d.burst =
          bursts[i] != 0
              ? bursts[i]
              : static_cast<std::uint64_t>(static_cast<double>(rates[i]) *
                                           std::chrono::duration<double>(options.lease).count());
      d.applied = d.last = startup[i];
    }
    apply_locked();
  }

  void start() {
    started_ = clock_.now();
    next_ = started_;
    net::post(timer_.get_executor(), [self = shared_from_this()] { self->tick(); });
  }

  /// From the destructor of shared_group: the group is going. Sends a release and stops.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      group_ = nullptr;
    }
    net::post(timer_.get_executor(), [self = shared_from_this()] {
      self->stopped_ = true;
      self->timer_.cancel();
      std::vector<std::vector<std::string>> keys;
      std::vector<lease_request> requests;
      for (direction_state& d : self->dirs_)
        if (d.shared && self->renewed_once_) {
          keys.push_back(d.keys);
          requests.push_back(self->request_for(d, -1, 1, 0, true));
        }
      if (requests.empty())
        return self->client_.close();
      self->store_.async_lease(std::move(keys), std::move(requests),
                               [self](lease_store::outcome) { self->client_.close(); });
    });
  }

  shared_group::status_type status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

  const std::string& member() const { return member_; }

private:
  struct direction_state {
    bool shared = false;
    std::vector<std::string> keys;
    std::uint64_t rate = 0, burst = 0;
    std::uint64_t applied = unlimited; // what the local group runs at
    std::uint64_t lowest = unlimited;  // the lowest applied since the last call
    std::uint64_t last = 0;            // the last share: granted, or the startup share
    std::uint64_t safe = 0;            // the last safe share; 0: none yet
    std::uint64_t learning_cap = 0;
    std::int64_t epoch = 0; // of its bucket in the store; 0: none seen yet
    std::uint64_t last_total = 0;
    double smoothed = 0;
    double reported = -1; // the demand last sent
    bool fresh = true;
  };

  lease_request request_for(const direction_state& d, double demand, double weight,
                            std::int64_t give, bool release) {
    lease_request q;
    q.member = member_;
    q.seq = ++seq_;
    q.demand = demand;
    q.weight = weight;
    q.rate = d.rate;
    q.burst = d.burst;
    q.lease_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.lease).count();
    q.ttl_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.ttl).count();
    q.version = options_.config_version;
    q.give_back = give;
    q.release = release;
    return q;
  }

  // Every half lease: measure, report, and apply the answer when it comes. A quarter lease
  // after each call: a look at the demand, and a call at once if it has moved by more than a
  // quarter (so that no more than one call goes out per quarter lease).
  void tick() {
    if (stopped_)
      return;
    std::vector<std::vector<std::string>> keys;
    std::vector<lease_request> requests;
    time_point now;
    {
      std::lock_guard lock(mutex_);
      if (!group_)
        return;
      now = clock_.now();
      if (now >= next_) {
        if (!in_flight_) {
          prepare_locked(now, false, keys, requests);
          schedule_after_call(next_, now);
        } else { // the last call is still out (it times out before long): keep the lease flowing
          check_failure_locked(now);
          next_ += options_.lease / 2;
          if (next_ < now) // a stall of the executor: no catching up in a burst of calls
            next_ = now + options_.lease / 2;
        }
      } else if (now >= look_at_) {
        look_at_ = time_point::max();
        if (!in_flight_ && demand_moved_locked(now)) {
          prepare_locked(now, true, keys, requests);
          ++status_.early_renewals;
          schedule_after_call(now, now);
        }
      }
      const auto wait = std::max(std::min(next_, look_at_) - now, time_point::duration::zero());
      timer_.expires_after(clock_.real_wait(wait));
    }
    if (!requests.empty())
      send(std::move(keys), std::move(requests));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec)
        self->tick();
    });
  }

  // After a call at `base` (its scheduled time, or now for an early one): the next in half a
  // lease, a look at the demand in a quarter.
  void schedule_after_call(time_point base, time_point now) {
    next_ = base + options_.lease / 2;
    if (next_ < now) // a stall of the executor: no catching up in a burst of calls
      next_ = now + options_.lease / 2;
    look_at_ = std::max(base + options_.lease / 4, now);
  }

  // Whether the demand of a shared direction has moved by more than a quarter since the last
  // call (share_policy.hpp). The activity taken here counts towards the next call.
  bool demand_moved_locked(time_point now) {
    const auto state = status_.state;
    if (!renewed_once_ ||
        (state != shared_group::mode::leased && state != shared_group::mode::learning))
      return false; // while the store fails, no calls beyond the due ones
    const double seconds = std::chrono::duration<double>(now - last_sample_).count();
    if (!(seconds > 0))
      return false;
    take_activity_locked();
    const auto totals = group_->totals();
    const std::array<std::uint64_t, 2> moved{totals.read, totals.written};
    bool moved_much = false;
    for (std::size_t i = 0; i < 2; ++i) {
      const direction_state& d = dirs_[i];
      const double consumed = static_cast<double>(moved[i] - d.last_total) / seconds;
      if (d.shared)
        moved_much = moved_much ||
                     demand_changed(d.reported, consumed, held_back(waits_[i], consumed, d.lowest),
                                    d.applied, d.safe);
    }
    return moved_much;
  }

  // The group's activity since the last call: waits add up, and the streams that asked are
  // those of the busiest look (the group counts each stream once per look).
  void take_activity_locked() {
    const auto activity = group_->take_activity();
    waits_[0] += activity.read_waits;
    waits_[1] += activity.write_waits;
    askers_[0] = std::max(askers_[0], activity.readers);
    askers_[1] = std::max(askers_[1], activity.writers);
  }

  // The requests of a call at `now`: measure since the last call, report, give back. An early
  // call reports the last interval's demand alone: it moved, and an average would report
  // half of the move.
  void prepare_locked(time_point now, bool early, std::vector<std::vector<std::string>>& keys,
                      std::vector<lease_request>& requests) {
    const auto totals = group_->totals();
    take_activity_locked();
    const double seconds = std::chrono::duration<double>(now - last_sample_).count();
    const bool first = last_sample_ == time_point{};
    last_sample_ = now;
    const std::array<std::uint64_t, 2> moved{totals.read, totals.written};
    for (std::size_t i = 0; i < 2; ++i) {
      direction_state& d = dirs_[i];
      const std::uint64_t delta = moved[i] - d.last_total;
      d.last_total = moved[i];
      const std::uint64_t waits = std::exchange(waits_[i], 0);
      const bool waited = waits > 0;
      const std::size_t askers = std::exchange(askers_[i], 0);
      const std::uint64_t lowest = std::exchange(d.lowest, d.applied);
      if (!d.shared)
        continue;
      double demand = -1;
      if (!first && seconds > 0) {
        const double consumed = static_cast<double>(delta) / seconds;
        demand = estimate_demand(d.smoothed, std::exchange(d.fresh, false) || early, consumed,
                                 held_back(waits, consumed, lowest));
      }
      d.reported = demand;
      const double weight =
          options_.weight > 0 ? options_.weight : std::max<double>(1, static_cast<double>(askers));
      std::int64_t give = 0;
      if (status_.state == shared_group::mode::leased) {
        const std::int64_t level = i == 0 ? group_->read_limit() : group_->write_limit();
        give = give_back(level, d.applied, waited);
        if (give > 0)
          i == 0 ? group_->decrement_read_limit(give) : group_->decrement_write_limit(give);
      }
      keys.push_back(d.keys);
      requests.push_back(request_for(d, demand, weight, give, false));
    }
  }

  void send(std::vector<std::vector<std::string>> keys, std::vector<lease_request> requests) {
    in_flight_ = true;
    store_.async_lease(
        std::move(keys), std::move(requests),
        [self = shared_from_this()](lease_store::outcome out) { self->on_answer(std::move(out)); });
  }

  void on_answer(lease_store::outcome out) {
    in_flight_ = false;
    if (stopped_)
      return;
    std::lock_guard lock(mutex_);
    if (!group_)
      return;
    const auto now = clock_.now();
    if (out.ec || !out.error.empty()) {
      ++status_.failures;
      status_.connected = client_.is_connected();
      status_.last_error = out.ec ? out.ec.message() : out.error;
      return check_failure_locked(now);
    }
    renewed_once_ = true;
    last_success_ = now;
    ++status_.renewals;
    status_.connected = true;
    std::size_t k = 0;
    bool learning = now < learning_until_;
    for (direction_state& d : dirs_) {
      if (!d.shared)
        continue;
      const lease_grant& g = out.grants.at(k++);
      if (d.epoch != 0 && g.epoch != d.epoch) {
        // The store lost its state: members come back one by one, and the first would get
        // the whole rate. Until the TTL has passed, nobody gets more than its last safe share.
        learning_until_ = now + options_.ttl;
        learning = true;
        for (direction_state& e : dirs_)
          e.learning_cap = e.safe != 0 ? e.safe : e.last;
      }
      d.last = learning ? std::min(g.rate, d.learning_cap) : g.rate;
      d.applied = d.last;
      d.safe = g.safe_share;
      d.epoch = g.epoch;
      status_.members = g.members;
      status_.epoch = g.epoch; // the write bucket's, when both are shared
    }
    status_.state = learning ? shared_group::mode::learning : shared_group::mode::leased;
    apply_locked();
  }

  // The store did not answer: the last share holds for `hold`, then the policy applies.
  void check_failure_locked(time_point now) {
    const auto since = renewed_once_ ? last_success_ : started_;
    if (now - since < options_.hold) {
      if (renewed_once_)
        status_.state = shared_group::mode::holding;
      return;
    }
    status_.state = shared_group::mode::fallback;
    for (direction_state& d : dirs_)
      if (d.shared)
        d.applied = fallback_rate(options_.on_failure, d.last, d.safe);
    apply_locked();
  }

  void apply_locked() {
    for (direction_state& d : dirs_)
      d.lowest = std::min(d.lowest, d.applied);
    status_.read_rate = dirs_[0].shared ? dirs_[0].applied : unlimited;
    status_.write_rate = dirs_[1].shared ? dirs_[1].applied : unlimited;
    if (!group_)
      return;
    token_bucket_config cfg = local_config(status_.read_rate, status_.write_rate);
    const token_bucket_config now = group_->config();
    if (cfg.read_rate != now.read_rate || cfg.write_rate != now.write_rate ||
        cfg.read_burst != now.read_burst || cfg.write_burst != now.write_burst ||
        cfg.tick != now.tick)
      group_->set_config(cfg);
  }

  const shared_group_options options_;
  const std::string member_;
  // Read under mutex_ while group_ is set only: the clock need not outlive the shared_group.
  const rate_clock& clock_;
  mutable std::mutex mutex_; // guards group_ and status_ (the rest is the executor's)
  rate_limit_group* group_;
  shared_group::status_type status_;
  std::array<direction_state, 2> dirs_;
  client client_;
  lease_store store_;
  net::steady_timer timer_;
  time_point started_, next_, last_success_, last_sample_, learning_until_;
  time_point look_at_ = time_point::max(); // a quarter lease after the last call
  std::array<std::uint64_t, 2> waits_{};   // since the last call, by direction
  std::array<std::size_t, 2> askers_{};
  std::uint64_t seq_ = 0;
  bool in_flight_ = false;
  bool renewed_once_ = false;
  bool stopped_ = false;
};

} // namespace detail

namespace {
// The local group's first config: the startup shares (validated options make it valid).
token_bucket_config startup_config(const shared_group_options& o) {
  auto startup = [](std::uint64_t rate, std::uint64_t start) {
    return rate == unlimited ? unlimited : start;
  };
  return detail::local_config(startup(o.read_rate, o.startup_read_rate),
                              startup(o.write_rate, o.startup_write_rate));
}
} // namespace

shared_group::shared_group(const net::any_io_executor& ex, const shared_group_options& options,
                           const rate_clock& clock, int) {
  options.validate();
  group_ = std::make_unique<rate_limit_group>(ex, startup_config(options), clock);
  state_ = std::make_shared<detail::shared_group_state>(ex, options, *group_, clock);
  state_->start();
}

shared_group::~shared_group() {
  state_->stop();
}

shared_group::status_type shared_group::status() const {
  return state_->status();
}

const std::string& shared_group::member() const {
  return state_->member();
}

} // namespace sluice::redis
