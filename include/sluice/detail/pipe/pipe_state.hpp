#ifndef SLUICE_DETAIL_PIPE_PIPE_STATE_HPP
#define SLUICE_DETAIL_PIPE_PIPE_STATE_HPP

#include <sluice/detail/core/buffer_pieces.hpp>
#include <sluice/detail/core/direction.hpp>
#include <sluice/detail/core/parked_op.hpp>
#include <sluice/detail/core/parking_lot.hpp>
#include <sluice/detail/core/ready_list.hpp>
#include <sluice/detail/pipe/byte_ring.hpp>
#include <sluice/flush_mode.hpp>

#include <boost/asio/socket_base.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace sluice::detail {

/// A read or write parked in a pipe until the other end or a state change completes it.
template <class Buffer>
struct pipe_op : parked_op {
  pipe_op(action* act, net::execution_context* ctx, const buffer_pieces<Buffer>& b)
      : parked_op(act, ctx), buffers(b) {}
  buffer_pieces<Buffer> buffers;
};
using pipe_read_op = pipe_op<net::mutable_buffer>;
using pipe_write_op = pipe_op<net::const_buffer>;

/// The shared state of a pipe pair: one buffer and one reader and writer slot per lane (the
/// bytes flowing to one end), under one mutex. Every operation either completes at once (the
/// caller posts its handler) or is parked; parked operations are completed, outside the
/// lock, by whatever call on either end makes them ready. `side` (0 or 1) names an end.
class pipe_state final : public parking_lot, public std::enable_shared_from_this<pipe_state> {
public:
  struct outcome {
    bool parked = false;
    boost::system::error_code ec;
    std::size_t bytes = 0;
  };

  explicit pipe_state(std::size_t capacity);
  pipe_state(const pipe_state&) = delete;
  pipe_state& operator=(const pipe_state&) = delete;

  outcome start_read(std::size_t side, const read_pieces& to, op_factory<pipe_read_op>& factory);
  outcome start_write(std::size_t side, const write_pieces& from,
                      op_factory<pipe_write_op>& factory);

  /// The cancellation slot of an end's operation of direction `d`.
  static std::size_t slot(std::size_t side, direction d) { return 2 * side + index(d); }
  void cancel(std::size_t slot, std::uint64_t serial) override;
  void withdraw(net::execution_context& ctx, std::vector<parked_op*>& out) override;

  void cancel_all(std::size_t side);
  std::size_t available(std::size_t side);
  std::size_t flush(std::size_t side, flush_mode mode);
  void shutdown(std::size_t side, boost::asio::socket_base::shutdown_type what);
  void close(std::size_t side);

  /// The object of each end, kept current across moves; both null once the pair is unlinked.
  void* partner(std::size_t side);
  void relink(std::size_t side, void* end);

private:
  struct lane {
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

  bool take_from(lane& l, const read_pieces& to, result& r, ready_list& done);
  bool give_to(lane& l, const write_pieces& from, bool past_capacity, result& r, ready_list& done);
  std::size_t settle(lane& l, bool past_capacity, ready_list& done);
  void abort_own(std::size_t side, ready_list& done);
  void shutdown_send(std::size_t side, ready_list& done);

  std::mutex mutex_;
  const std::size_t capacity_;
  std::array<lane, 2> to_; // to_[i]: the bytes flowing to end i
  std::array<void*, 2> ends_{};
  bool linked_ = true;
  std::uint64_t serial_ = 0;
};

} // namespace sluice::detail

#endif
