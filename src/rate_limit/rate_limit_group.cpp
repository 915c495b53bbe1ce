#include <sluice/detail/rate_limit/group_state.hpp>
#include <sluice/rate_limit.hpp>

#include <stdexcept>
#include <string>

namespace sluice {

namespace {
class steady_rate_clock final : public rate_clock {
public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::nanoseconds real_wait(std::chrono::nanoseconds d) const override { return d; }
};
} // namespace

const rate_clock& rate_clock::steady() {
  static const steady_rate_clock clock;
  return clock;
}

manual_rate_clock::manual_rate_clock(std::chrono::nanoseconds poll) : poll_(poll) {
  if (poll <= std::chrono::nanoseconds::zero())
    throw std::invalid_argument("sluice::manual_rate_clock: poll = " +
                                std::to_string(poll.count()) + "ns: must be positive");
}

using detail::direction;

rate_limit_group::rate_limit_group(const boost::asio::any_io_executor& ex,
                                   const token_bucket_config& cfg, const rate_clock& clock, int)
    : state_(std::make_shared<detail::group_state>(ex, cfg, clock, this)) {}

rate_limit_group::~rate_limit_group() {
  state_->dissolve();
}

void rate_limit_group::set_config(const token_bucket_config& cfg) {
  state_->set_config(cfg);
}
token_bucket_config rate_limit_group::config() const {
  return state_->config();
}
std::int64_t rate_limit_group::read_limit() const {
  return state_->level(direction::read);
}
std::int64_t rate_limit_group::write_limit() const {
  return state_->level(direction::write);
}
void rate_limit_group::decrement_read_limit(std::int64_t n) {
  state_->decrement(direction::read, n);
}
void rate_limit_group::decrement_write_limit(std::int64_t n) {
  state_->decrement(direction::write, n);
}

rate_limit_group::totals_type rate_limit_group::totals() const {
  return {state_->total(direction::read), state_->total(direction::write)};
}

void rate_limit_group::reset_totals() {
  state_->reset_totals();
}
rate_limit_group::activity_type rate_limit_group::take_activity() {
  auto [read_waits, readers] = state_->take_activity(direction::read);
  auto [write_waits, writers] = state_->take_activity(direction::write);
  return {read_waits, write_waits, readers, writers};
}

void rate_limit_group::set_min_share(std::size_t bytes) {
  state_->set_min_share(bytes);
}
std::size_t rate_limit_group::size() const {
  return state_->size();
}

} // namespace sluice
