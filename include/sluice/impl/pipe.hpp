#ifndef SLUICE_IMPL_PIPE_HPP
#define SLUICE_IMPL_PIPE_HPP

#include <sluice/detail/core/parked_op.hpp>
#include <sluice/detail/core/parking_lot.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/error.hpp>

#include <memory>
#include <type_traits>

namespace sluice {

template <class Executor>
template <detail::direction D, class Handler>
class basic_pipe<Executor>::factory final
    : public detail::op_factory<detail::pipe_op<detail::buffer_for<D>>> {
  using op_type = detail::pipe_op<detail::buffer_for<D>>;

public:
  factory(basic_pipe& self, const detail::buffer_pieces<detail::buffer_for<D>>& buffers,
          Handler& handler)
      : self_(self), buffers_(buffers), handler_(handler) {}

  op_type* make(std::uint64_t serial) override {
    // The canceller goes in first: a signal on another thread waits for the lock, and then
    // finds the operation parked; had we failed to park, it finds nothing.
    auto slot = net::get_associated_cancellation_slot(handler_);
    if (slot.is_connected())
      slot.template emplace<detail::parked_canceller>(
          self_.state_, detail::pipe_state::slot(self_.side_, D), serial);
    auto* op = detail::parked_op_impl<op_type, Handler, Executor>::make(handler_, self_.executor_,
                                                                        buffers_);
    op->serial = serial;
    return op;
  }

private:
  basic_pipe& self_;
  const detail::buffer_pieces<detail::buffer_for<D>>& buffers_;
  Handler& handler_;
};

template <class Executor>
template <detail::direction D>
struct basic_pipe<Executor>::initiate_transfer {
  using executor_type = Executor;
  executor_type get_executor() const noexcept { return self->get_executor(); }

  template <class Handler, class BufferSequence>
  void operator()(Handler&& handler, const BufferSequence& buffers) const {
    // Our own copy: a handler passed as an lvalue is copied, never moved from.
    std::decay_t<Handler> own(std::forward<Handler>(handler));
    self->template start<D>(detail::buffer_pieces<detail::buffer_for<D>>(buffers), std::move(own));
  }

  basic_pipe* self;
};

template <class Executor>
basic_pipe<Executor>::basic_pipe(const Executor& ex, std::shared_ptr<detail::pipe_state> state,
                                 std::size_t side)
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
      initiate_transfer<detail::direction::read>{this}, token, buffers);
}

template <class Executor>
template <class ConstBufferSequence,
          net::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto basic_pipe<Executor>::async_write_some(const ConstBufferSequence& buffers, Token&& token) {
  return net::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      initiate_transfer<detail::direction::write>{this}, token, buffers);
}

template <class Executor>
template <detail::direction D, class Handler>
void basic_pipe<Executor>::start(const detail::buffer_pieces<detail::buffer_for<D>>& buffers,
                                 Handler&& handler) {
  auto complete_now = [&](const boost::system::error_code& ec, std::size_t n) {
    detail::deliver(executor_, std::move(handler), ec, n);
  };
  if (!state_)
    return complete_now(net::error::bad_descriptor, 0);
  if (buffers.total() == 0)
    return complete_now({}, 0);
  factory<D, std::decay_t<Handler>> make(*this, buffers, handler);
  detail::pipe_state::outcome outcome;
  if constexpr (D == detail::direction::write)
    outcome = state_->start_write(side_, buffers, make);
  else
    outcome = state_->start_read(side_, buffers, make);
  if (!outcome.parked)
    complete_now(outcome.ec, outcome.bytes);
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
    state_->cancel_all(side_);
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
  // What is parked for an end when its execution context goes is destroyed then.
  auto& first_ctx = detail::context_of(first);
  auto& second_ctx = detail::context_of(second);
  detail::watch_shutdown(first_ctx, state);
  if (&second_ctx != &first_ctx)
    detail::watch_shutdown(second_ctx, state);
  return {basic_pipe<Executor>(first, state, 0), basic_pipe<Executor>(second, state, 1)};
}

} // namespace sluice

#endif
