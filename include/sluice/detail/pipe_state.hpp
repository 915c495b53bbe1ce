#ifndef SLUICE_DETAIL_PIPE_STATE_HPP
#define SLUICE_DETAIL_PIPE_STATE_HPP

#include <sluice/detail/buffer_list.hpp>
#include <sluice/detail/byte_ring.hpp>
#include <sluice/detail/pending_op.hpp>
#include <sluice/flush_mode.hpp>

#include <boost/asio/socket_base.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace sluice::detail {

/// A read or write parked in a pipe until the other end or a state change completes it.
template <class Byte>
struct pipe_op : pending_op {
  pipe_op(complete_fn* fn, std::uint64_t serial, const buffer_list<Byte>& b)
      : pending_op(fn, serial), buffers(b) {}
  buffer_list<Byte> buffers;
};
using pipe_read_op = pipe_op<std::byte>;
using pipe_write_op = pipe_op<const std::byte>;

/// The shared state of a pipe pair: one buffer and one reader and writer slot per direction,
/// under one mutex. Every operation either completes at once (the caller posts its handler)
/// or is parked; parked operations are completed, outside the lock, by whatever call on
/// either end makes them ready.
class pipe_state {
public:
  struct outcome {
    bool parked = false;
    boost::system::error_code ec;
    std::size_t bytes = 0;
  };
  enum class op_kind { read, write };

  explicit pipe_state(std::size_t capacity);
  pipe_state(const pipe_state&) = delete;
  pipe_state& operator=(const pipe_state&) = delete;

  outcome start_read(int side, const buffer_list<std::byte>& to,
                     pending_op_factory<pipe_read_op>& factory);
  outcome start_write(int side, const buffer_list<const std::byte>& from,
                      pending_op_factory<pipe_write_op>& factory);
  std::uint64_t next_serial() { return ++serial_; } // called under the lock, from factories

  void cancel_op(int side, op_kind kind, std::uint64_t serial);
  void cancel(int side);
  std::size_t available(int side);
  std::size_t flush(int side, flush_mode mode);
  void shutdown(int side, boost::asio::socket_base::shutdown_type what);
  void close(int side);

  /// The object of each end, kept current across moves; both null once the pair is unlinked.
  void* partner(int side);
  void relink(int side, void* end);

private:
  struct direction {
    byte_ring buffer;
    pipe_read_op* reader = nullptr;  // parked read of the receiving end
    pipe_write_op* writer = nullptr; // parked write of the sending end
    bool sender_done = false;        // the receiver reads what is left, then eof
    bool receiver_done = false;      // bytes are discarded, writes fail with broken_pipe
  };
  struct result {
    boost::system::error_code ec;
    std::size_t bytes = 0;
  };
  class completions;

  bool take_from(direction& d, const buffer_list<std::byte>& to, result& r, completions& done);
  bool give_to(direction& d, const buffer_list<const std::byte>& from, bool past_capacity,
               result& r, completions& done);
  std::size_t settle(direction& d, bool past_capacity, completions& done);
  void abort_own(int side, completions& done);
  void shutdown_send(int side, completions& done);

  std::mutex mutex_;
  const std::size_t capacity_;
  std::array<direction, 2> to_; // to_[i]: the bytes flowing to end i
  std::array<void*, 2> ends_{};
  bool linked_ = true;
  std::uint64_t serial_ = 0;
};

} // namespace sluice::detail

#endif
