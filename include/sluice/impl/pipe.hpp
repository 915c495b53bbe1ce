#ifndef SLUICE_IMPL_PIPE_HPP
#define SLUICE_IMPL_PIPE_HPP

#include <sluice/detail/pending_op.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>

#include <memory>
#include <type_traits>

namespace sluice {
namespace detail {

/// Lives in a handler's cancellation slot while its operation is parked. A late signal,
/// after the operation completed, finds another serial (or none) and does nothing.
struct pipe_canceller {
  // A constructor, for emplace(): clang 14 has no aggregate initialisation from parentheses.
  pipe_canceller(std::shared_ptr<pipe_state> state, int side, pipe_state::op_kind kind,
                 std::uint64_t serial)
      : state(std::move(state)), side(side), kind(kind), serial(serial) {}

  std::shared_ptr<pipe_state> state;
  int side;
  pipe_state::op_kind kind;
  std::uint64_t serial;

  void operator()(net::cancellation_type type) const {
    using ct = net::cancellation_type;
    if ((type & (ct::terminal | ct::partial | ct::total)) != ct::none)
      state->cancel_op(side, kind, serial);
  }
};

} // namespace detail

template <class Executor>
template <class Byte, class Handler>
class basic_pipe<Executor>::factory final
    : public detail::pending_op_factory<detail::pipe_op<Byte>> {
public:
  factory(basic_pipe& self, const detail::buffer_list<Byte>& buffers, Handler& handler)
      : self_(self), buffers_(buffers), handler_(handler) {}

  detail::pipe_op<Byte>* make(std::uint64_t serial) override {
    // The canceller goes in first: a signal on another thread waits for the lock, and then
    // finds the operation parked; had we failed to park, it finds nothing.
    auto slot = net::get_associated_cancellation_slot(handler_);
    if (slot.is_connected())
      slot.template emplace<detail::pipe_canceller>(self_.state_, self_.side_,
                                                    std::is_const_v<Byte>
                                                        ? detail::pipe_state::op_kind::write
                                                        : detail::pipe_state::op_kind::read,
                                                    serial);
    return detail::pending_op_impl<detail::pipe_op<Byte>, Handler, Executor>::make(
        handler_, self_.executor_, serial, buffers_);
  }

private:
  basic_pipe& self_;
  const detail::buffer_list<Byte>& buffers_;
  Handler& handler_;
};

template <class Executor>
template <class Byte>
struct basic_pipe<Executor>::initiate_transfer {
  using executor_type = Executor;
  executor_type get_executor() const noexcept { return self->get_executor(); }

  template <class Handler, class BufferSequence>
  void operator()(Handler&& handler, const BufferSequence& buffers) const {
    // Our own copy: a handler passed as an lvalue is copied, never moved from.
    std::decay_t<Handler> own(std::forward<Handler>(handler));
    self->start(detail::buffer_list<Byte>(buffers), std::move(own));
  }

  basic_pipe* self;
};

template <class Executor>
basic_pipe<Executor>::basic_pipe(const Executor& ex, std::shared_ptr<detail::pipe_state> state,
                                 int side)
    : executor_(ex), state_(std::move(state)), side_(side) {
  state_->relink(side_, this);
}

template <class Executor>
basic_pipe<Executor>::basic_pipe(basic_pipe&& other) noexcept
    : executor_(other.executor_), state_(std::move(other.state_)), side_(other.side_) {
  if (state_)
    state_->relink(side_, this);
}

template <class Executor>
basic_pipe<Executor>& basic_pipe<Executor>::operator=(basic_pipe&& other) noexcept {
  if (this != &other) {
    close();
    executor_ = other.executor_;
    state_ = std::move(other.state_);
    side_ = other.side_;
    if (state_)
      state_->relink(side_, this);
  }
  return *this;
}

template <class Executor>
basic_pipe<Executor>::~basic_pipe() {
  close();
}

template <class Executor>
template <class MutableBufferSequence,
          net::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto basic_pipe<Executor>::async_read_some(const MutableBufferSequence& buffers, Token&& token) {
  return net::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_transfer<std::byte>{this}, token, buffers);
}

template <class Executor>
template <class ConstBufferSequence,
          net::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto basic_pipe<Executor>::async_write_some(const ConstBufferSequence& buffers, Token&& token) {
  return net::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_transfer<const std::byte>{this}, token, buffers);
}

template <class Executor>
template <class Byte, class Handler>
void basic_pipe<Executor>::start(const detail::buffer_list<Byte>& buffers, Handler&& handler) {
  if (!state_)
    return post_result(std::move(handler), net::error::bad_descriptor, 0);
  if (buffers.total == 0)
    return post_result(std::move(handler), {}, 0);
  factory<Byte, std::decay_t<Handler>> make(*this, buffers, handler);
  detail::pipe_state::outcome outcome;
  if constexpr (std::is_const_v<Byte>)
    outcome = state_->start_write(side_, buffers, make);
  else
    outcome = state_->start_read(side_, buffers, make);
  if (!outcome.parked)
    post_result(std::move(handler), outcome.ec, outcome.bytes);
}

template <class Executor>
template <class Handler>
void basic_pipe<Executor>::post_result(Handler&& handler, const boost::system::error_code& ec,
                                       std::size_t n) {
  detail::deliver(executor_, std::forward<Handler>(handler), ec, n);
}

template <class Executor>
std::size_t basic_pipe<Executor>::available() const {
  return state_ ? state_->available(side_) : 0;
}

template <class Executor>
std::size_t basic_pipe<Executor>::flush(flush_mode mode) {
  return state_ ? state_->flush(side_, mode) : 0;
}

template <class Executor>
void basic_pipe<Executor>::shutdown(net::socket_base::shutdown_type what) {
  if (state_)
    state_->shutdown(side_, what);
}

template <class Executor>
void basic_pipe<Executor>::cancel() {
  if (state_)
    state_->cancel(side_);
}

template <class Executor>
void basic_pipe<Executor>::close() {
  if (auto state = std::move(state_))
    state->close(side_);
}

template <class Executor>
basic_pipe<Executor>* basic_pipe<Executor>::partner() const {
  return state_ ? static_cast<basic_pipe*>(state_->partner(side_)) : nullptr;
}

template <class Executor>
std::pair<basic_pipe<Executor>, basic_pipe<Executor>>
make_pipe(const Executor& first, const Executor& second, const pipe_options& options) {
  auto state = std::make_shared<detail::pipe_state>(options.capacity);
  return {basic_pipe<Executor>(first, state, 0), basic_pipe<Executor>(second, state, 1)};
}

} // namespace sluice

#endif
