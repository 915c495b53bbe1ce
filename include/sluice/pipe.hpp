#ifndef SLUICE_PIPE_HPP
#define SLUICE_PIPE_HPP

#include <sluice/detail/pipe/pipe_state.hpp>
#include <sluice/flush_mode.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <utility>

namespace sluice {

namespace net = boost::asio;

struct pipe_options {
  /// Bytes buffered per direction. 0: no buffer, a write completes only when a reader takes
  /// its bytes (like Go's net.Pipe).
  std::size_t capacity = 64 * 1024;
};

/// One end of an in-process byte stream pair: an AsyncReadStream and AsyncWriteStream with
/// no socket, no file descriptor and no system call. Made in pairs by make_pipe().
///
/// Data: a write completes once at least one byte is taken, straight into a waiting
/// reader's buffer when there is one (a single copy), else into the direction's buffer up to
/// `capacity`; a full buffer makes the write wait. A read completes with what is available.
/// Zero-length operations complete at once (posted) with 0 bytes, even beside a pending one.
///
/// Ends: close() or destruction unlinks the pair. The survivor reads what was already sent,
/// then gets net::error::eof; its writes fail with net::error::broken_pipe. The closed end's
/// pending operations complete with net::error::operation_aborted, later ones with
/// net::error::bad_descriptor.
///
/// Completion: handlers are never invoked from the initiating function; they run on their
/// associated executor (default: this end's), and pending operations count as work.
/// Per-operation memory comes from the handler's associated allocator. An operation still
/// pending when its end's execution context shuts down is destroyed without being invoked,
/// as Asio's own are (a coroutine waiting on it has its frame destroyed).
///
/// Cancellation: per-operation terminal, partial and total cancellation, and cancel(),
/// complete a pending operation with net::error::operation_aborted. A pending operation has
/// moved no byte, so nothing is lost or duplicated.
///
/// Thread safety: the two ends may be used from different threads at once. One end is like
/// a socket: one pending read and one pending write at a time (zero-length ones aside; a
/// second one completes with net::error::already_started), and no concurrent calls on it.
template <class Executor = net::any_io_executor>
class basic_pipe {
public:
  using executor_type = Executor;
  using lowest_layer_type = basic_pipe;

  template <class OtherExecutor>
  struct rebind_executor {
    using other = basic_pipe<OtherExecutor>;
  };

  basic_pipe(basic_pipe&& other) noexcept;
  basic_pipe& operator=(basic_pipe&& other) noexcept;
  basic_pipe(const basic_pipe&) = delete;
  basic_pipe& operator=(const basic_pipe&) = delete;
  /// Closes this end (see close()).
  ~basic_pipe();

  executor_type get_executor() const noexcept { return executor_.executor; }
  lowest_layer_type& lowest_layer() noexcept { return *this; }
  const lowest_layer_type& lowest_layer() const noexcept { return *this; }

  /// Reads at least one byte, or fails. Signature: void(error_code, std::size_t).
  template <class MutableBufferSequence,
            net::completion_token_for<void(boost::system::error_code, std::size_t)> Token =
                net::default_completion_token_t<executor_type>>
  auto async_read_some(const MutableBufferSequence& buffers,
                       Token&& token = net::default_completion_token_t<executor_type>{});

  /// Writes at least one byte, or fails. Signature: void(error_code, std::size_t).
  template <class ConstBufferSequence,
            net::completion_token_for<void(boost::system::error_code, std::size_t)> Token =
                net::default_completion_token_t<executor_type>>
  auto async_write_some(const ConstBufferSequence& buffers,
                        Token&& token = net::default_completion_token_t<executor_type>{});

  /// Bytes a read would get now: the buffered ones and those of a waiting write. 0 if closed.
  std::size_t available() const;

  /// Moves this end's waiting write across: `normal` as far as capacity allows, `flush`
  /// past capacity, `finished` past capacity and then shuts down sending. Completes the
  /// write it moved and returns the bytes moved. Does nothing on a closed end.
  std::size_t flush(flush_mode mode = flush_mode::flush);

  /// shutdown_send: the partner reads what was sent, then eof; a waiting write fails with
  /// broken_pipe. shutdown_receive: incoming bytes are discarded, a waiting read gets eof,
  /// the partner's writes fail with broken_pipe. Does nothing on a closed end.
  void shutdown(net::socket_base::shutdown_type what);

  /// Completes this end's pending read and write with operation_aborted.
  void cancel();

  /// Unlinks the pair (see the class comment). Idempotent.
  void close();

  bool is_open() const noexcept { return state_ != nullptr; }

  /// The other end while both are linked (kept right across moves), else nullptr.
  basic_pipe* partner() const;

private:
  template <class E>
  friend std::pair<basic_pipe<E>, basic_pipe<E>> make_pipe(const E&, const E&, const pipe_options&);
  template <detail::direction D>
  struct initiate_transfer;
  template <detail::direction D, class Handler>
  class factory;

  basic_pipe(const Executor& ex, std::shared_ptr<detail::pipe_state> state, std::size_t side);
  template <detail::direction D, class Handler>
  void start(const detail::buffer_pieces<detail::buffer_for<D>>& buffers, Handler&& handler);

  detail::resolved_executor<Executor> executor_;
  std::shared_ptr<detail::pipe_state> state_; // null once closed or moved from
  std::size_t side_ = 0;
};

using pipe = basic_pipe<>;

/// A connected pair, each end on its own executor.
template <class Executor>
std::pair<basic_pipe<Executor>, basic_pipe<Executor>>
make_pipe(const Executor& first, const Executor& second, const pipe_options& options = {});

/// A connected pair, both ends on one executor.
template <class Executor>
std::pair<basic_pipe<Executor>, basic_pipe<Executor>> make_pipe(const Executor& ex,
                                                                const pipe_options& options = {}) {
  return make_pipe(ex, ex, options);
}

/// A connected pair, both ends on `ctx`.
inline std::pair<pipe, pipe> make_pipe(net::io_context& ctx, const pipe_options& options = {}) {
  return make_pipe(net::any_io_executor(ctx.get_executor()), options);
}

} // namespace sluice

#include <sluice/impl/pipe.hpp>

#endif
