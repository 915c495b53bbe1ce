#ifndef SLUICE_IMPL_RATE_LIMITED_STREAM_HPP
#define SLUICE_IMPL_RATE_LIMITED_STREAM_HPP

#include <sluice/detail/core/buffer_pieces.hpp>
#include <sluice/detail/core/deliver.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/assert.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <utility>

namespace sluice {
namespace detail {

/// The handler of an operation admitted at once, handed to the next layer: it settles the
/// grant for what moved, then calls the caller's handler. The next layer sees the caller's
/// executor, allocator and cancellation slot (the associator below), as if called directly.
template <class Handler>
struct settle_then {
  Handler handler;
  std::shared_ptr<stream_limiter> limiter;
  ticket grant;
  direction d;

  void operator()(boost::system::error_code ec, std::size_t n) {
    limiter->settle(d, grant, n);
    std::move(handler)(ec, n);
  }
};

} // namespace detail
} // namespace sluice

template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct boost::asio::associator<Associator, sluice::detail::settle_then<Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type
  get(const sluice::detail::settle_then<Handler>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler);
  }
  static auto get(const sluice::detail::settle_then<Handler>& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c)) {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};

namespace sluice {

namespace detail {
/// A stream's next layer, as a base of its shared state so that it is built first.
template <class Stream>
struct next_layer_holder {
  template <class... Args>
  explicit next_layer_holder(std::in_place_t, Args&&... args) : next(std::forward<Args>(args)...) {}
  Stream next;
};
} // namespace detail

/// What outlives the stream object while its operations are pending: the next layer and the
/// limiter (whose timers run on the next layer's executor). A move of the stream moves only
/// the pointer to it, so a wait for tokens goes on with the same next layer.
template <class Stream>
struct rate_limited_stream<Stream>::impl final : detail::next_layer_holder<Stream>,
                                                 detail::stream_limiter {
  template <class... Args>
  explicit impl(std::in_place_t, Args&&... args)
      : detail::next_layer_holder<Stream>(std::in_place, std::forward<Args>(args)...),
        stream_limiter(this->next.get_executor()) {}

  // Set by expires_*, read when an operation starts: both by the stream's one thread.
  time_point expiry = never;
};

/// A read_some or write_some that waits for tokens: take, wait, take again..., then the I/O
/// with the grant, then settle. Every step ends in an asynchronous operation, so completion
/// is never inline.
template <class Stream>
template <detail::direction D, class Buffers>
struct rate_limited_stream<Stream>::transfer_op {
  enum class step { start, waiting, io };

  std::shared_ptr<impl> state;
  Buffers buffers;
  detail::ticket grant = {};
  step at = step::start;
  std::uint64_t cancels = state->cancels(D);                 // cancel() calls before this operation
  detail::stream_limiter::time_point expiry = state->expiry; // as of the operation's start

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
    namespace error = boost::asio::error;
    switch (at) {
    case step::start:
      // A wait for tokens has moved nothing, so every kind of cancellation is safe.
      self.reset_cancellation_state(boost::asio::enable_total_cancellation());
      return take(self);
    case step::waiting:
      if (expiry != detail::stream_limiter::never)
        state->disarm_expiry(D); // a wait again re-arms it
      if (!ec)
        grant.bytes = n;
      // A cancellation can come while the wake-up is already on its way: the wait it was
      // meant for is over, but the operation must not wait again, or move bytes.
      if (state->stopped(D, cancels) || self.cancelled() != boost::asio::cancellation_type::none) {
        if (!ec)
          state->settle(D, grant, 0); // the grant goes back: nothing moved
        return self.complete(error::operation_aborted, 0);
      }
      if (ec == error::try_again)
        return take(self);
      if constexpr (detail::has_expiry<next_layer_type>)
        if (ec == error::timed_out) // the limiter's word for "the expiry came first"
          return self.complete(expiry_traits<next_layer_type>::time_out(state->next), 0);
      if (ec)
        return self.complete(ec, 0);
      return start_io(self);
    case step::io:
      state->settle(D, grant, n);
      return self.complete(ec, n);
    }
  }

  template <class Self>
  void take(Self& self) {
    // The operation may complete on another thread as soon as it is parked: `this` moves
    // into the parked operation, so everything is set first and nothing touched after.
    at = step::waiting;
    factory<Self> park(self, *this);
    auto a = state->take(D, boost::asio::buffer_size(buffers), &park, expiry);
    if (a.what == detail::stream_limiter::verdict::go) {
      grant = std::move(a.grant);
      start_io(self);
    }
  }

  template <class Self>
  void start_io(Self& self) {
    at = step::io;
    auto cut = detail::prefix_of<detail::buffer_for<D>>(buffers, grant.bytes);
    if constexpr (D == detail::direction::read)
      state->next.async_read_some(cut, std::move(self));
    else
      state->next.async_write_some(cut, std::move(self));
  }

  template <class Self>
  struct factory final : detail::wait_factory {
    factory(Self& s, transfer_op& o) : self(s), op(o) {}

    detail::parked_op* make(std::uint64_t serial, const detail::ticket& t) override {
      op.grant = t;
      auto slot = boost::asio::get_associated_cancellation_slot(self);
      if (slot.is_connected())
        slot.template emplace<detail::parked_canceller>(op.state, detail::index(D), serial);
      return detail::parked_op_impl<detail::parked_op, Self, executor_type>::make(
          self, detail::resolved_executor(op.state->next.get_executor()));
    }

    Self& self;
    transfer_op& op;
  };
};

/// Starts a read_some or write_some. The common case, tokens there, is admitted here and
/// goes straight to the next layer with a settle_then handler (or, with nothing to settle,
/// the caller's own); only an operation that must wait becomes a transfer_op.
template <class Stream>
template <detail::direction D>
struct rate_limited_stream<Stream>::initiate_transfer {
  rate_limited_stream* stream;

  template <class Handler, class Buffers>
  void operator()(Handler&& handler, const Buffers& buffers) const {
    using handler_type = std::decay_t<Handler>;
    auto& state = stream->impl_;
    if (!state) // moved from, like a socket
      return detail::deliver(stream->executor_, handler_type(std::forward<Handler>(handler)),
                             boost::asio::error::bad_descriptor, 0);
    auto io = [&](const auto& cut, auto&& h) {
      if constexpr (D == detail::direction::read)
        state->next.async_read_some(cut, std::forward<decltype(h)>(h));
      else
        state->next.async_write_some(cut, std::forward<decltype(h)>(h));
    };
    const std::size_t want = boost::asio::buffer_size(buffers);
    if (want == 0) // zero-length (ssl::stream issues them): straight through
      return io(buffers, std::forward<Handler>(handler));
    auto a = state->take(D, want, nullptr);
    if (a.what != detail::stream_limiter::verdict::go) // it waits: the whole composed operation
      return boost::asio::async_compose<handler_type, void(boost::system::error_code, std::size_t)>(
          transfer_op<D, Buffers>{state, buffers}, handler, state->next);
    auto cut = detail::prefix_of<detail::buffer_for<D>>(buffers, a.grant.bytes);
    if (a.grant.own == detail::ticket::own_charge::none && !a.grant.group)
      return io(cut, std::forward<Handler>(handler));
    io(cut, detail::settle_then<handler_type>{std::forward<Handler>(handler), state,
                                              std::move(a.grant), D});
  }
};

template <class Stream>
template <class... Args>
rate_limited_stream<Stream>::rate_limited_stream(Args&&... next_layer_args)
    : impl_(std::make_shared<impl>(std::in_place, std::forward<Args>(next_layer_args)...)),
      executor_(impl_->next.get_executor()) {}

template <class Stream>
rate_limited_stream<Stream>::rate_limited_stream(rate_limited_stream&& other) noexcept
    : impl_(std::move(other.impl_)), executor_(other.executor_) {}

template <class Stream>
rate_limited_stream<Stream>::~rate_limited_stream() {
  if (impl_)
    impl_->close();
}

template <class Stream>
rate_limited_stream<Stream>&
rate_limited_stream<Stream>::operator=(rate_limited_stream&& other) noexcept {
  if (this != &other) {
    if (impl_)
      impl_->close();
    impl_ = std::move(other.impl_);
    executor_ = other.executor_;
  }
  return *this;
}

template <class Stream>
auto rate_limited_stream<Stream>::next_layer() noexcept -> next_layer_type& {
  BOOST_ASSERT_MSG(impl_, "a moved-from rate_limited_stream has no next layer");
  return impl_->next;
}

template <class Stream>
auto rate_limited_stream<Stream>::next_layer() const noexcept -> const next_layer_type& {
  BOOST_ASSERT_MSG(impl_, "a moved-from rate_limited_stream has no next layer");
  return impl_->next;
}

template <class Stream>
auto rate_limited_stream<Stream>::lowest_layer() noexcept -> lowest_layer_type& {
  if constexpr (requires { next_layer().lowest_layer(); })
    return next_layer().lowest_layer();
  else
    return next_layer();
}

template <class Stream>
template <class MutableBufferSequence,
          boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto rate_limited_stream<Stream>::async_read_some(const MutableBufferSequence& buffers,
                                                  Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_transfer<detail::direction::read>{this}, token, buffers);
}

template <class Stream>
template <class ConstBufferSequence,
          boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto rate_limited_stream<Stream>::async_write_some(const ConstBufferSequence& buffers,
                                                   Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_transfer<detail::direction::write>{this}, token, buffers);
}

template <class Stream>
template <detail::direction D, class Buffers>
std::size_t rate_limited_stream<Stream>::transfer(const Buffers& buffers,
                                                  boost::system::error_code& ec) {
  if (!impl_) {
    ec = boost::asio::error::bad_descriptor;
    return 0;
  }
  auto io = [&](std::size_t limit) {
    auto cut = detail::prefix_of<detail::buffer_for<D>>(buffers, limit);
    if constexpr (D == detail::direction::read)
      return impl_->next.read_some(cut, ec);
    else
      return impl_->next.write_some(cut, ec);
  };
  const std::size_t want = boost::asio::buffer_size(buffers);
  if (want == 0)
    return io(0);
  for (;;) {
    detail::blocking_wait wait;
    auto a = impl_->take(D, want, &wait);
    if (a.what != detail::stream_limiter::verdict::go) {
      ec = wait.wait(*impl_, D);
      if (ec == boost::asio::error::try_again)
        continue;
      if (ec)
        return 0;
      a.grant = std::move(wait.grant);
    }
    std::size_t n = io(a.grant.bytes);
    impl_->settle(D, a.grant, n);
    return n;
  }
}

template <class Stream>
template <class MutableBufferSequence>
std::size_t rate_limited_stream<Stream>::read_some(const MutableBufferSequence& buffers,
                                                   boost::system::error_code& ec) {
  return transfer<detail::direction::read>(buffers, ec);
}

template <class Stream>
template <class MutableBufferSequence>
std::size_t rate_limited_stream<Stream>::read_some(const MutableBufferSequence& buffers) {
  boost::system::error_code ec;
  std::size_t n = transfer<detail::direction::read>(buffers, ec);
  if (ec)
    throw boost::system::system_error(ec, "read_some");
  return n;
}

template <class Stream>
template <class ConstBufferSequence>
std::size_t rate_limited_stream<Stream>::write_some(const ConstBufferSequence& buffers,
                                                    boost::system::error_code& ec) {
  return transfer<detail::direction::write>(buffers, ec);
}

template <class Stream>
template <class ConstBufferSequence>
std::size_t rate_limited_stream<Stream>::write_some(const ConstBufferSequence& buffers) {
  boost::system::error_code ec;
  std::size_t n = transfer<detail::direction::write>(buffers, ec);
  if (ec)
    throw boost::system::system_error(ec, "write_some");
  return n;
}

template <class Stream>
detail::stream_limiter& rate_limited_stream<Stream>::limiter(const char* what) const {
  if (!impl_)
    throw boost::system::system_error(boost::asio::error::bad_descriptor,
                                      std::string("sluice::rate_limited_stream::") + what +
                                          " on a moved-from stream");
  return *impl_;
}

template <class Stream>
void rate_limited_stream<Stream>::set_rate_limit(const token_bucket_config& cfg) {
  cfg.validate();
  limiter("set_rate_limit").set_config(cfg);
}

template <class Stream>
void rate_limited_stream<Stream>::clear_rate_limit() {
  if (impl_)
    impl_->clear_config();
}

template <class Stream>
void rate_limited_stream<Stream>::set_clock(const rate_clock& clock) {
  limiter("set_clock").set_clock(clock);
}

template <class Stream>
std::optional<token_bucket_config> rate_limited_stream<Stream>::rate_limit() const {
  return impl_ ? impl_->config() : std::nullopt;
}

template <class Stream>
void rate_limited_stream<Stream>::join(rate_limit_group& g) {
  limiter("join").join(g.state_);
}

template <class Stream>
void rate_limited_stream<Stream>::leave_group() {
  if (impl_)
    impl_->leave();
}

template <class Stream>
rate_limit_group* rate_limited_stream<Stream>::group() const {
  auto g = impl_ ? impl_->group() : nullptr;
  return g ? g->owner() : nullptr;
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::read_limit() const {
  return impl_ ? impl_->level(detail::direction::read) : detail::token_bucket::no_limit;
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::write_limit() const {
  return impl_ ? impl_->level(detail::direction::write) : detail::token_bucket::no_limit;
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::max_to_read() const {
  return impl_ ? impl_->max_now(detail::direction::read) : 0;
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::max_to_write() const {
  return impl_ ? impl_->max_now(detail::direction::write) : 0;
}

template <class Stream>
void rate_limited_stream<Stream>::decrement_read_limit(std::int64_t n) {
  limiter("decrement_read_limit").decrement(detail::direction::read, n);
}

template <class Stream>
void rate_limited_stream<Stream>::decrement_write_limit(std::int64_t n) {
  limiter("decrement_write_limit").decrement(detail::direction::write, n);
}

template <class Stream>
void rate_limited_stream<Stream>::set_max_single_read(std::size_t n) {
  limiter("set_max_single_read").set_single_cap(detail::direction::read, n);
}

template <class Stream>
void rate_limited_stream<Stream>::set_max_single_write(std::size_t n) {
  limiter("set_max_single_write").set_single_cap(detail::direction::write, n);
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::max_single_read() const {
  return impl_ ? impl_->single_cap(detail::direction::read) : detail::token_bucket::no_limit;
}

template <class Stream>
std::int64_t rate_limited_stream<Stream>::max_single_write() const {
  return impl_ ? impl_->single_cap(detail::direction::write) : detail::token_bucket::no_limit;
}

template <class Stream>
void rate_limited_stream<Stream>::expires_after(std::chrono::steady_clock::duration d) requires
    detail::has_expiry<std::remove_reference_t<Stream>> {
  const auto now = std::chrono::steady_clock::now();
  expires_at(d < std::chrono::steady_clock::time_point::max() - now
                 ? now + d
                 : detail::stream_limiter::never);
}

template <class Stream>
void rate_limited_stream<Stream>::expires_at(std::chrono::steady_clock::time_point t) requires
    detail::has_expiry<std::remove_reference_t<Stream>> {
  limiter("expires_at");
  impl_->next.expires_at(t); // the same time point: the I/O and the waits expire together
  impl_->expiry = t;
}

template <class Stream>
void rate_limited_stream<Stream>::expires_never() requires
    detail::has_expiry<std::remove_reference_t<Stream>> {
  limiter("expires_never");
  impl_->next.expires_never();
  impl_->expiry = detail::stream_limiter::never;
}

template <class Stream>
void rate_limited_stream<Stream>::cancel() {
  if (!impl_)
    return;
  impl_->cancel_all();
  if constexpr (requires { impl_->next.cancel(); })
    impl_->next.cancel();
}

} // namespace sluice

#endif
