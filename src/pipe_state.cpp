#include <sluice/detail/pipe_state.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <cassert>
#include <utility>

namespace sluice::detail {

namespace error = boost::asio::error;

// Copying into or out of a ring is at most two memcpys per piece: before and after the wrap.
std::size_t byte_ring::push(const buffer_list<const std::byte>& from, std::size_t limit) {
  std::size_t n = std::min(limit, from.total);
  if (n == 0)
    return 0;
  if (size_ + n > capacity_)
    grow(size_ + n);
  std::size_t left = n;
  for (auto piece : from.used()) {
    std::size_t take = std::min(left, piece.size());
    while (take > 0) {
      std::size_t tail = (head_ + size_) % capacity_;
      std::size_t chunk = std::min(take, capacity_ - tail);
      std::memcpy(storage_.get() + tail, piece.data(), chunk);
      piece = piece.subspan(chunk);
      size_ += chunk;
      take -= chunk;
      left -= chunk;
    }
    if (left == 0)
      break;
  }
  return n;
}

std::size_t byte_ring::pop(const buffer_list<std::byte>& to) {
  std::size_t n = std::min(size_, to.total);
  std::size_t left = n;
  for (auto piece : to.used()) {
    std::size_t take = std::min(left, piece.size());
    while (take > 0) {
      std::size_t chunk = std::min(take, capacity_ - head_);
      std::memcpy(piece.data(), storage_.get() + head_, chunk);
      piece = piece.subspan(chunk);
      head_ = (head_ + chunk) % capacity_;
      size_ -= chunk;
      take -= chunk;
      left -= chunk;
    }
    if (left == 0)
      break;
  }
  if (size_ == 0)
    head_ = 0; // keeps the next bytes contiguous
  return n;
}

void byte_ring::grow(std::size_t needed) {
  std::size_t capacity = std::max({needed, preferred_, capacity_ * 2});
  auto storage = std::make_unique_for_overwrite<std::byte[]>(capacity);
  std::size_t first = std::min(size_, capacity_ - head_);
  if (size_ > 0) {
    std::memcpy(storage.get(), storage_.get() + head_, first);
    std::memcpy(storage.get() + first, storage_.get(), size_ - first);
  }
  storage_ = std::move(storage);
  capacity_ = capacity;
  head_ = 0;
}

/// The parked operations made ready by one call; they complete after the lock is released,
/// in the order added (readers first, so that a reader re-arms before its writer writes
/// again and the next write can go straight into the reader's buffer).
class pipe_state::completions {
public:
  completions() = default;
  completions(const completions&) = delete;
  completions& operator=(const completions&) = delete;
  ~completions() {
    for (std::size_t i = 0; i < count_; ++i)
      entries_[i].op->complete(entries_[i].ec, entries_[i].bytes);
  }
  void add(pending_op* op, const result& r) {
    assert(count_ < entries_.size());
    entries_[count_++] = {op, r.ec, r.bytes};
  }

private:
  struct entry {
    pending_op* op;
    boost::system::error_code ec;
    std::size_t bytes;
  };
  // A call completes at most both ends' reads and writes.
  std::array<entry, 4> entries_; // the first `count_` are set
  std::size_t count_ = 0;
};

pipe_state::pipe_state(std::size_t capacity)
    : capacity_(capacity), to_{direction{byte_ring(capacity)}, direction{byte_ring(capacity)}} {}

// A read is served from the buffer, else straight from a parked writer, else ends at eof.
bool pipe_state::take_from(direction& d, const buffer_list<std::byte>& to, result& r,
                           completions& done) {
  if (!d.buffer.empty()) {
    r = {{}, d.buffer.pop(to)};
    if (d.writer) { // room was made: let the parked writer refill
      result w;
      if (give_to(d, d.writer->buffers, false, w, done))
        done.add(std::exchange(d.writer, nullptr), w);
    }
    return true;
  }
  if (d.writer) {
    r = {{}, copy_between(d.writer->buffers, to)};
    done.add(std::exchange(d.writer, nullptr), r);
    return true;
  }
  if (d.sender_done || d.receiver_done) {
    r = {error::eof, 0};
    return true;
  }
  return false;
}

// A write goes straight into a parked reader, else into the buffer as far as room allows.
bool pipe_state::give_to(direction& d, const buffer_list<const std::byte>& from, bool past_capacity,
                         result& r, completions& done) {
  if (d.sender_done || d.receiver_done) {
    r = {error::broken_pipe, 0};
    return true;
  }
  if (d.reader) { // a parked reader means the buffer is empty
    r = {{}, copy_between(from, d.reader->buffers)};
    done.add(std::exchange(d.reader, nullptr), r);
    return true;
  }
  std::size_t room = past_capacity                 ? from.total
                     : d.buffer.size() < capacity_ ? capacity_ - d.buffer.size()
                                                   : 0;
  if (room == 0)
    return false;
  r = {{}, d.buffer.push(from, room)};
  return true;
}

// Completes whatever parked operations of `d` a state change has made ready; returns the
// bytes the parked writer moved.
std::size_t pipe_state::settle(direction& d, bool past_capacity, completions& done) {
  result r;
  if (d.reader && take_from(d, d.reader->buffers, r, done))
    done.add(std::exchange(d.reader, nullptr), r);
  if (d.writer && give_to(d, d.writer->buffers, past_capacity, r, done)) {
    done.add(std::exchange(d.writer, nullptr), r);
    return r.bytes;
  }
  return 0;
}

pipe_state::outcome pipe_state::start_read(int side, const buffer_list<std::byte>& to,
                                           pending_op_factory<pipe_read_op>& factory) {
  completions done;
  std::lock_guard lock(mutex_);
  direction& d = to_[side];
  result r;
  if (take_from(d, to, r, done))
    return {false, r.ec, r.bytes};
  if (d.reader)
    return {false, error::already_started, 0};
  d.reader = factory.make(next_serial());
  return {true, {}, 0};
}

pipe_state::outcome pipe_state::start_write(int side, const buffer_list<const std::byte>& from,
                                            pending_op_factory<pipe_write_op>& factory) {
  completions done;
  std::lock_guard lock(mutex_);
  direction& d = to_[1 - side];
  result r;
  if (give_to(d, from, false, r, done))
    return {false, r.ec, r.bytes};
  if (d.writer)
    return {false, error::already_started, 0};
  d.writer = factory.make(next_serial());
  return {true, {}, 0};
}

void pipe_state::abort_own(int side, completions& done) {
  const result aborted{error::operation_aborted, 0};
  if (to_[side].reader)
    done.add(std::exchange(to_[side].reader, nullptr), aborted);
  if (to_[1 - side].writer)
    done.add(std::exchange(to_[1 - side].writer, nullptr), aborted);
}

void pipe_state::cancel_op(int side, op_kind kind, std::uint64_t serial) {
  completions done;
  std::lock_guard lock(mutex_);
  const result aborted{error::operation_aborted, 0};
  if (kind == op_kind::read) {
    if (auto& op = to_[side].reader; op && op->serial == serial)
      done.add(std::exchange(op, nullptr), aborted);
  } else {
    if (auto& op = to_[1 - side].writer; op && op->serial == serial)
      done.add(std::exchange(op, nullptr), aborted);
  }
}

void pipe_state::cancel(int side) {
  completions done;
  std::lock_guard lock(mutex_);
  abort_own(side, done);
}

std::size_t pipe_state::available(int side) {
  std::lock_guard lock(mutex_);
  const direction& d = to_[side];
  return d.buffer.size() + (d.writer ? d.writer->buffers.total : 0);
}

std::size_t pipe_state::flush(int side, flush_mode mode) {
  completions done;
  std::lock_guard lock(mutex_);
  std::size_t moved = settle(to_[1 - side], mode != flush_mode::normal, done);
  if (mode == flush_mode::finished)
    shutdown_send(side, done);
  return moved;
}

void pipe_state::shutdown_send(int side, completions& done) {
  direction& d = to_[1 - side];
  d.sender_done = true;
  settle(d, false, done); // a parked write fails, a parked reader of an empty pipe gets eof
}

void pipe_state::shutdown(int side, boost::asio::socket_base::shutdown_type what) {
  completions done;
  std::lock_guard lock(mutex_);
  if (what != boost::asio::socket_base::shutdown_receive)
    shutdown_send(side, done);
  if (what != boost::asio::socket_base::shutdown_send) {
    direction& d = to_[side];
    d.receiver_done = true;
    d.buffer.clear();
    settle(d, false, done);
  }
}

void pipe_state::close(int side) {
  completions done;
  std::lock_guard lock(mutex_);
  abort_own(side, done);
  shutdown_send(side, done);
  direction& in = to_[side];
  in.receiver_done = true;
  in.buffer.clear();
  settle(in, false, done);
  ends_ = {nullptr, nullptr};
  linked_ = false;
}

void* pipe_state::partner(int side) {
  std::lock_guard lock(mutex_);
  return ends_[1 - side];
}

void pipe_state::relink(int side, void* end) {
  std::lock_guard lock(mutex_);
  if (linked_)
    ends_[side] = end;
}

} // namespace sluice::detail
