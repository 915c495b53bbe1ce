#ifndef SLUICE_IMPL_RATE_LIMITED_STREAM_HPP
#define SLUICE_IMPL_RATE_LIMITED_STREAM_HPP

#include <sluice/detail/buffer_prefix.hpp>
#include <sluice/detail/pending_op.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <optional>
#include <thread>

namespace sluice {
namespace detail {

/// Lives in an operation's cancellation slot while it waits in a group's queue.
struct group_wait_canceller {
  // A constructor, for emplace(): clang 14 has no aggregate initialisation from parentheses.
  group_wait_canceller(std::shared_ptr<group_state> g, std::shared_ptr<stream_limiter> l, flow f,
                       std::uint64_t serial)
      : group(std::move(g)), limiter(std::move(l)), f(f), serial(serial) {}

  std::shared_ptr<group_state> group;
  std::shared_ptr<stream_limiter> limiter; // keeps the member record alive
  flow f;
  std::uint64_t serial;

  void operator()(net::cancellation_type type) const {
    using ct = net::cancellation_type;
    if ((type & (ct::terminal | ct::partial | ct::total)) != ct::none)
      group->cancel_wait(f, limiter->member, serial);
  }
};

/// The handler of an operation admitted at once, handed to the next layer: it charges the
/// buckets what moved, then calls the caller's handler. The next layer sees the caller's
/// executor, allocator and cancellation slot (the associator below), as if called directly.
template <class Handler>
struct charge_then {
  Handler handler;
  std::shared_ptr<stream_limiter> own; // null: no own bucket to charge
  std::shared_ptr<group_state> group;  // null: no group's grant to settle
  std::int64_t granted;
  flow f;

  void operator()(boost::system::error_code ec, std::size_t n) {
    const auto moved = static_cast<std::int64_t>(n);
    const auto now = std::chrono::steady_clock::now();
    if (own)
      own->charge(f, moved, now);
    if (group)
      group->release(f, granted, moved, now);
    std::move(handler)(ec, n);
  }
};

} // namespace detail
} // namespace sluice

template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct boost::asio::associator<Associator, sluice::detail::charge_then<Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type
  get(const sluice::detail::charge_then<Handler>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler);
  }
  static auto get(const sluice::detail::charge_then<Handler>& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c)) {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};

namespace sluice {

/// What outlives the stream object while its operations are pending: the limits, the
/// timers of the waits for the own bucket, whether the stream is gone, and where its next
/// layer is now (a move of the stream updates it, so a wait for tokens survives the move).
template <class Stream>
struct rate_limited_stream<Stream>::impl : detail::stream_limiter {
  using timer_type =
      boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                        boost::asio::wait_traits<std::chrono::steady_clock>,
                                        executor_type>;

  explicit impl(const executor_type& ex) : executor(ex) {}

  // Made at the first wait: a timer brings up its io_context's reactor, which then polls
  // between handlers, a cost a stream whose limits never bind should not impose.
  timer_type& timer(int i) {
    if (!timers[i])
      timers[i].emplace(executor);
    return *timers[i];
  }

  executor_type executor;
  next_layer_type* next = nullptr;
  std::array<std::optional<timer_type>, 2> timers; // by flow
  std::array<bool, 2> waiting{};                   // an operation waits on timers[f]
  std::array<bool, 2> retimed{};          // ...and its wake-up is a re-time, not a cancellation
  std::array<std::uint64_t, 2> cancels{}; // cancel() calls, by flow
  bool closed = false;
};

/// One read_some or write_some: admission (own bucket, then group), waits, the I/O, the
/// charge. Every step ends in an asynchronous operation, so completion is never inline.
template <class Stream>
template <bool IsRead, class Buffers>
struct rate_limited_stream<Stream>::transfer_op {
  static constexpr detail::flow f = IsRead ? detail::flow::read : detail::flow::write;
  using buffer_type =
      std::conditional_t<IsRead, boost::asio::mutable_buffer, boost::asio::const_buffer>;
  enum class step { start, own_wait, group_wait, io };

  std::shared_ptr<impl> state;
  Buffers buffers;
  std::shared_ptr<detail::group_state> group = {};
  std::int64_t granted = 0;
  bool charge = false; // the own bucket is limited
  step at = step::start;
  std::uint64_t cancels = state->cancels[static_cast<int>(f)]; // cancel() calls before this one

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
    namespace error = boost::asio::error;
    const int i = static_cast<int>(f);
    switch (at) {
    case step::start:
      // A wait for tokens has moved nothing, so every kind of cancellation is safe.
      self.reset_cancellation_state(boost::asio::enable_total_cancellation());
      return admit(self);
    case step::own_wait:
      state->waiting[i] = false;
      if (ec && !std::exchange(state->retimed[i], false))
        return self.complete(ec, 0);
      state->retimed[i] = false;
      if (stopped(self))
        return self.complete(error::operation_aborted, 0);
      return admit(self);
    case step::group_wait:
      if (ec)
        return self.complete(ec, 0);
      if (stopped(self)) { // the grant goes back: nothing moved
        if (n > 0)
          group->release(f, static_cast<std::int64_t>(n), 0);
        return self.complete(error::operation_aborted, 0);
      }
      if (n == 0) // the group went, or we left it: ask again
        return admit(self);
      return start_io(self, static_cast<std::int64_t>(n));
    case step::io:
      if (charge)
        state->charge(f, static_cast<std::int64_t>(n));
      if (group)
        group->release(f, granted, static_cast<std::int64_t>(n));
      return self.complete(ec, n);
    }
  }

  // Whether the wait that just ended must end the operation too. A cancellation can come
  // while the wake-up is already on its way (a re-time, a grant, a wake by the group that
  // went): the wait it was meant for is over, but the operation must not wait again, or
  // move bytes, as if it had never been cancelled.
  template <class Self>
  bool stopped(Self& self) const {
    return state->closed || self.cancelled() != boost::asio::cancellation_type::none ||
           state->cancels[static_cast<int>(f)] != cancels;
  }

  template <class Self>
  void admit(Self& self) {
    const int i = static_cast<int>(f);
    auto a = state->admit(f, boost::asio::buffer_size(buffers));
    if (a.bytes == 0) {
      at = step::own_wait;
      state->waiting[i] = true;
      state->timer(i).expires_after(a.wait);
      return state->timer(i).async_wait(std::move(self));
    }
    charge = a.charge;
    group = std::move(a.group);
    if (!group)
      return start_io(self, a.bytes);
    // The group may complete the wait on another thread as soon as it is queued: `this`
    // moves into the queued operation, so set everything first and touch nothing after.
    at = step::group_wait;
    group_factory<Self> factory{self, group, state};
    auto g = group->acquire(f, state->member, a.bytes, factory);
    if (g > 0) {
      at = step::io;
      start_io(self, g);
    }
  }

  template <class Self>
  void start_io(Self& self, std::int64_t bytes) {
    at = step::io;
    granted = bytes;
    auto prefix = detail::prefix_of<buffer_type>(buffers, static_cast<std::size_t>(bytes));
    if constexpr (IsRead)
      state->next->async_read_some(prefix, std::move(self));
    else
      state->next->async_write_some(prefix, std::move(self));
  }

  template <class Self>
  struct group_factory final : detail::pending_op_factory<detail::pending_op> {
    group_factory(Self& self, std::shared_ptr<detail::group_state> group,
                  std::shared_ptr<impl> state)
        : self(self), group(std::move(group)), state(std::move(state)) {}

    detail::pending_op* make(std::uint64_t serial) override {
      auto slot = boost::asio::get_associated_cancellation_slot(self);
      if (slot.is_connected())
        slot.template emplace<detail::group_wait_canceller>(group, state, f, serial);
      return detail::pending_op_impl<detail::pending_op, Self, executor_type>::make(
          self, state->executor, serial);
    }

    Self& self;
    std::shared_ptr<detail::group_state> group;
    std::shared_ptr<impl> state;
  };
};

/// Starts a read_some or write_some. The common case, tokens there, is admitted here and
/// goes straight to the next layer with a charge_then handler (or, with nothing to charge,
/// the caller's own); only an operation that must wait becomes a transfer_op.
template <class Stream>
template <bool IsRead>
struct rate_limited_stream<Stream>::initiate_transfer {
  rate_limited_stream* stream;

  template <class Handler, class Buffers>
  void operator()(Handler&& handler, const Buffers& buffers) const {
    constexpr detail::flow f = IsRead ? detail::flow::read : detail::flow::write;
    using buffer_type = typename transfer_op<IsRead, Buffers>::buffer_type;
    using handler_type = std::decay_t<Handler>;
    auto io = [this](const auto& cut, auto&& h) {
      if constexpr (IsRead)
        stream->next_.async_read_some(cut, std::forward<decltype(h)>(h));
      else
        stream->next_.async_write_some(cut, std::forward<decltype(h)>(h));
    };
    const std::size_t want = boost::asio::buffer_size(buffers);
    if (want == 0) // zero-length (ssl::stream issues them): straight through
      return io(buffers, std::forward<Handler>(handler));
    auto& state = stream->impl_;
    auto a = state->admit(f, want);
    if (a.bytes > 0 && a.group)
      a.bytes = a.group->try_acquire(f, state->member, a.bytes, a.now);
    if (a.bytes == 0) // it waits: the whole composed operation
      return boost::asio::async_compose<handler_type, void(boost::system::error_code, std::size_t)>(
          transfer_op<IsRead, Buffers>{state, buffers}, handler, stream->next_);
    auto cut = detail::prefix_of<buffer_type>(buffers, static_cast<std::size_t>(a.bytes));
    if (!a.charge && !a.group)
      return io(cut, std::forward<Handler>(handler));
    io(cut,
       detail::charge_then<handler_type>{std::forward<Handler>(handler), a.charge ? state : nullptr,
                                         std::move(a.group), a.bytes, f});
  }
};

template <class Stream>
template <class... Args>
rate_limited_stream<Stream>::rate_limited_stream(Args&&... next_layer_args)
    : next_(std::forward<Args>(next_layer_args)...),
      impl_(std::make_shared<impl>(next_.get_executor())) {
  impl_->next = &next_;
}

template <class Stream>
rate_limited_stream<Stream>::rate_limited_stream(rate_limited_stream&& other) noexcept
    : next_(std::forward<Stream>(other.next_)), impl_(std::move(other.impl_)) {
  if (impl_)
    impl_->next = &next_;
}

template <class Stream>
void rate_limited_stream<Stream>::close_limits() {
  if (!impl_)
    return;
  impl_->closed = true; // what wakes now completes with operation_aborted
  for (auto& timer : impl_->timers)
    if (timer)
      timer->cancel();
  impl_->leave();
}

template <class Stream>
rate_limited_stream<Stream>::~rate_limited_stream() {
  close_limits();
}

template <class Stream>
rate_limited_stream<Stream>&
rate_limited_stream<Stream>::operator=(rate_limited_stream&& other) noexcept {
  if (this != &other) {
    close_limits();
    next_ = std::move(other.next_);
    impl_ = std::move(other.impl_);
    if (impl_)
      impl_->next = &next_;
  }
  return *this;
}

template <class Stream>
auto rate_limited_stream<Stream>::lowest_layer() noexcept -> lowest_layer_type& {
  if constexpr (requires { next_.lowest_layer(); })
    return next_.lowest_layer();
  else
    return next_;
}

template <class Stream>
template <class MutableBufferSequence,
          boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto rate_limited_stream<Stream>::async_read_some(const MutableBufferSequence& buffers,
                                                  Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_transfer<true>{this}, token, buffers);
}

template <class Stream>
template <class ConstBufferSequence,
          boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto rate_limited_stream<Stream>::async_write_some(const ConstBufferSequence& buffers,
                                                   Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_transfer<false>{this}, token, buffers);
}

template <class Stream>
template <bool IsRead, class Buffers>
std::size_t rate_limited_stream<Stream>::transfer(const Buffers& buffers,
                                                  boost::system::error_code& ec) {
  using buffer_type = typename transfer_op<IsRead, Buffers>::buffer_type;
  constexpr detail::flow f = IsRead ? detail::flow::read : detail::flow::write;
  auto io = [&](std::size_t limit) {
    auto prefix = detail::prefix_of<buffer_type>(buffers, limit);
    if constexpr (IsRead)
      return next_.read_some(prefix, ec);
    else
      return next_.write_some(prefix, ec);
  };
  std::size_t want = boost::asio::buffer_size(buffers);
  if (want == 0)
    return io(0);
  for (;;) {
    auto a = impl_->admit(f, want);
    if (a.bytes == 0) {
      std::this_thread::sleep_for(a.wait);
      continue;
    }
    std::int64_t granted = a.bytes;
    auto group = std::move(a.group);
    if (group) {
      detail::blocking_grant wait;
      granted = group->acquire(f, impl_->member, a.bytes, wait);
      if (granted == 0) {
        granted = static_cast<std::int64_t>(wait.wait(*group, f, ec));
        if (ec)
          return 0;
        if (granted == 0)
          continue; // the group went: ask again
      }
    }
    std::size_t n = io(static_cast<std::size_t>(granted));
    if (a.charge)
      impl_->charge(f, static_cast<std::int64_t>(n));
    if (group)
      group->release(f, granted, static_cast<std::int64_t>(n));
    return n;
  }
}

template <class Stream>
template <class MutableBufferSequence>
std::size_t rate_limited_stream<Stream>::read_some(const MutableBufferSequence& buffers,
                                                   boost::system::error_code& ec) {
  return transfer<true>(buffers, ec);
}

template <class Stream>
template <class MutableBufferSequence>
std::size_t rate_limited_stream<Stream>::read_some(const MutableBufferSequence& buffers) {
  boost::system::error_code ec;
  std::size_t n = transfer<true>(buffers, ec);
  if (ec)
    throw boost::system::system_error(ec, "read_some");
  return n;
}

template <class Stream>
template <class ConstBufferSequence>
std::size_t rate_limited_stream<Stream>::write_some(const ConstBufferSequence& buffers,
                                                    boost::system::error_code& ec) {
  return transfer<false>(buffers, ec);
}

template <class Stream>
template <class ConstBufferSequence>
std::size_t rate_limited_stream<Stream>::write_some(const ConstBufferSequence& buffers) {
  boost::system::error_code ec;
  std::size_t n = transfer<false>(buffers, ec);
  if (ec)
    throw boost::system::system_error(ec, "write_some");
  return n;
}

template <class Stream>
void rate_limited_stream<Stream>::retime(detail::flow f) {
  const int i = static_cast<int>(f);
  if (impl_->waiting[i]) {
    impl_->retimed[i] = true;
    impl_->timers[i]->cancel();
  }
}

template <class Stream>
void rate_limited_stream<Stream>::set_rate_limit(const token_bucket_config& cfg) {
  cfg.validate();
  impl_->set_config(cfg);
  retime(detail::flow::read);
  retime(detail::flow::write);
}

template <class Stream>
void rate_limited_stream<Stream>::clear_rate_limit() {
  impl_->clear_config();
  retime(detail::flow::read);
  retime(detail::flow::write);
}

template <class Stream>
std::optional<token_bucket_config> rate_limited_stream<Stream>::rate_limit() const {
  return impl_->config();
}

template <class Stream>
void rate_limited_stream<Stream>::join(rate_limit_group& g) {
  impl_->join(g.state_);
}

template <class Stream>
void rate_limited_stream<Stream>::leave_group() {
  impl_->leave();
}

template <class Stream>
rate_limit_group* rate_limited_stream<Stream>::group() const {
  auto g = impl_->group();
  return g ? g->owner() : nullptr;
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::read_limit() const {
  return impl_->limit(detail::flow::read);
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::write_limit() const {
  return impl_->limit(detail::flow::write);
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::max_to_read() const {
  return impl_->max_to(detail::flow::read);
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::max_to_write() const {
  return impl_->max_to(detail::flow::write);
}

template <class Stream>
void rate_limited_stream<Stream>::decrement_read_limit(std::int64_t n) {
  impl_->decrement(detail::flow::read, n);
  retime(detail::flow::read);
}

template <class Stream>
void rate_limited_stream<Stream>::decrement_write_limit(std::int64_t n) {
  impl_->decrement(detail::flow::write, n);
  retime(detail::flow::write);
}

template <class Stream>
void rate_limited_stream<Stream>::set_max_single_read(std::size_t n) {
  impl_->set_max_single(detail::flow::read, n);
}

template <class Stream>
void rate_limited_stream<Stream>::set_max_single_write(std::size_t n) {
  impl_->set_max_single(detail::flow::write, n);
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::max_single_read() const {
  return impl_->max_single(detail::flow::read);
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::max_single_write() const {
  return impl_->max_single(detail::flow::write);
}

template <class Stream>
void rate_limited_stream<Stream>::cancel() {
  for (auto& n : impl_->cancels)
    ++n; // also ends waits whose wake-up is already on its way
  for (auto& timer : impl_->timers)
    if (timer)
      timer->cancel();
  if (auto g = impl_->group())
    g->cancel_waits(impl_->member);
  if constexpr (requires { next_.cancel(); })
    next_.cancel();
}

} // namespace sluice

#endif
