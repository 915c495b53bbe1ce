#include <sluice/detail/pipe/pipe_state.hpp>

#include <boost/asio/error.hpp>

#include <utility>

namespace sluice::detail {

namespace error = boost::asio::error;

// Ready operations complete in the order added: readers first, so that a reader re-arms
// before its writer writes again and the next write can go straight into the reader's buffer.

pipe_state::pipe_state(std::size_t capacity)
    : capacity_(capacity), to_{lane{byte_ring(capacity)}, lane{byte_ring(capacity)}} {}

// A read is served from the buffer, else straight from a parked writer, else ends at eof.
bool pipe_state::take_from(lane& l, const read_pieces& to, result& r, ready_list& done) {
  if (!l.buffer.empty()) {
    r = {{}, l.buffer.pop(to)};
    if (l.writer) { // room was made: let the parked writer refill
      result w;
      if (give_to(l, l.writer->buffers, false, w, done))
        done.add(std::exchange(l.writer, nullptr), w.ec, w.bytes);
    }
    return true;
  }
  if (l.writer) {
    r = {{}, copy_between(l.writer->buffers, to)};
    done.add(std::exchange(l.writer, nullptr), r.ec, r.bytes);
    return true;
  }
  if (l.sender_done || l.receiver_done) {
    r = {error::eof, 0};
    return true;
  }
  return false;
}

// A write goes straight into a parked reader, else into the buffer as far as room allows.
bool pipe_state::give_to(lane& l, const write_pieces& from, bool past_capacity, result& r,
                         ready_list& done) {
  if (l.sender_done || l.receiver_done) {
    r = {error::broken_pipe, 0};
    return true;
  }
  if (l.reader) { // a parked reader means the buffer is empty
    r = {{}, copy_between(from, l.reader->buffers)};
    done.add(std::exchange(l.reader, nullptr), r.ec, r.bytes);
    return true;
  }
  std::size_t room = past_capacity                 ? from.total()
                     : l.buffer.size() < capacity_ ? capacity_ - l.buffer.size()
                                                   : 0;
  if (room == 0)
    return false;
  r = {{}, l.buffer.push(from, room)};
  return true;
}

// Completes whatever parked operations of `l` a state change has made ready; returns the
// bytes the parked writer moved.
std::size_t pipe_state::settle(lane& l, bool past_capacity, ready_list& done) {
  result r;
  if (l.reader && take_from(l, l.reader->buffers, r, done))
    done.add(std::exchange(l.reader, nullptr), r.ec, r.bytes);
  if (l.writer && give_to(l, l.writer->buffers, past_capacity, r, done)) {
    done.add(std::exchange(l.writer, nullptr), r.ec, r.bytes);
    return r.bytes;
  }
  return 0;
}

pipe_state::outcome pipe_state::start_read(std::size_t side, const read_pieces& to,
                                           op_factory<pipe_read_op>& factory) {
  ready_list done;
  std::lock_guard lock(mutex_);
  lane& l = to_[side];
  result r;
  if (take_from(l, to, r, done))
    return {false, r.ec, r.bytes};
  if (l.reader)
    return {false, error::already_started, 0};
  l.reader = factory.make(++serial_);
  return {true, {}, 0};
}

pipe_state::outcome pipe_state::start_write(std::size_t side, const write_pieces& from,
                                            op_factory<pipe_write_op>& factory) {
  ready_list done;
  std::lock_guard lock(mutex_);
  lane& l = to_[1 - side];
  result r;
  if (give_to(l, from, false, r, done))
    return {false, r.ec, r.bytes};
  if (l.writer)
    return {false, error::already_started, 0};
  l.writer = factory.make(++serial_);
  return {true, {}, 0};
}

void pipe_state::abort_own(std::size_t side, ready_list& done) {
  if (to_[side].reader)
    done.add(std::exchange(to_[side].reader, nullptr), error::operation_aborted, 0);
  if (to_[1 - side].writer)
    done.add(std::exchange(to_[1 - side].writer, nullptr), error::operation_aborted, 0);
}

void pipe_state::cancel(std::size_t slot, std::uint64_t serial) {
  ready_list done;
  std::lock_guard lock(mutex_);
  const std::size_t side = slot / 2;
  auto abort_if_current = [&](auto*& op) {
    if (op && op->serial == serial)
      done.add(std::exchange(op, nullptr), error::operation_aborted, 0);
  };
  if (slot % 2 == index(direction::read))
    abort_if_current(to_[side].reader);
  else
    abort_if_current(to_[1 - side].writer);
}

void pipe_state::withdraw(net::execution_context& ctx, std::vector<parked_op*>& out) {
  std::lock_guard lock(mutex_);
  auto take_if_of_ctx = [&](auto*& op) {
    if (op && op->context() == &ctx)
      out.push_back(std::exchange(op, nullptr));
  };
  for (lane& l : to_) {
    take_if_of_ctx(l.reader);
    take_if_of_ctx(l.writer);
  }
}

void pipe_state::cancel_all(std::size_t side) {
  ready_list done;
  std::lock_guard lock(mutex_);
  abort_own(side, done);
}

std::size_t pipe_state::available(std::size_t side) {
  std::lock_guard lock(mutex_);
  const lane& l = to_[side];
  return l.buffer.size() + (l.writer ? l.writer->buffers.total() : 0);
}

std::size_t pipe_state::flush(std::size_t side, flush_mode mode) {
  ready_list done;
  std::lock_guard lock(mutex_);
  std::size_t moved = settle(to_[1 - side], mode != flush_mode::normal, done);
  if (mode == flush_mode::finished)
    shutdown_send(side, done);
  return moved;
}

void pipe_state::shutdown_send(std::size_t side, ready_list& done) {
  lane& l = to_[1 - side];
  l.sender_done = true;
  settle(l, false, done); // a parked write fails, a parked reader of an empty pipe gets eof
}

void pipe_state::shutdown(std::size_t side, boost::asio::socket_base::shutdown_type what) {
  ready_list done;
  std::lock_guard lock(mutex_);
  if (what != boost::asio::socket_base::shutdown_receive)
    shutdown_send(side, done);
  if (what != boost::asio::socket_base::shutdown_send) {
    lane& l = to_[side];
    l.receiver_done = true;
    l.buffer.clear();
    settle(l, false, done);
  }
}

void pipe_state::close(std::size_t side) {
  ready_list done;
  std::lock_guard lock(mutex_);
  abort_own(side, done);
  shutdown_send(side, done);
  lane& in = to_[side];
  in.receiver_done = true;
  in.buffer.clear();
  settle(in, false, done);
  ends_ = {nullptr, nullptr};
  linked_ = false;
}

void* pipe_state::partner(std::size_t side) {
  std::lock_guard lock(mutex_);
  return ends_[1 - side];
}

void pipe_state::relink(std::size_t side, void* end) {
  std::lock_guard lock(mutex_);
  if (linked_)
    ends_[side] = end;
}

} // namespace sluice::detail
