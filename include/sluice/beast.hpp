#ifndef SLUICE_BEAST_HPP
#define SLUICE_BEAST_HPP

// Opt-in: what Boost.Beast needs to know about sluice's streams. Nothing else in sluice
// includes Beast; include this header where a Beast stream is built over a sluice one.
//
// Websocket teardown: `websocket::stream<X>` ends a connection with
// `async_teardown(role, X&, handler)` (and `teardown` for its blocking calls), found by
// argument-dependent lookup. Here are those for
//   - basic_pipe: as a TCP socket's teardown does it, the server shuts down sending first;
//     both then read and discard until the peer's eof, the client shuts down sending, and
//     the end is closed. A pipe's survivor still reads what was sent to it, so nothing the
//     peer has not read yet is lost.
//   - rate_limited_stream<S>: S's teardown (the bytes it reads and discards are not shaped).
//   - filtered_stream<S, In, Out>: ends the output as async_flush(flush_mode::finished)
//     does (for zlib: the trailer), then S's teardown; the first error is reported.
// Without this header such a websocket fails to compile with "Unknown Socket type in
// async_teardown", as one over ssl::stream does without <boost/beast/websocket/ssl.hpp>.
//
// beast::close_socket(get_lowest_layer(s)), which websocket::stream calls on timeouts and
// failures, closes a basic_pipe. The adapters need nothing: their lowest layer is their
// next layer's.
//
// Expiry: expiry_traits for beast::basic_stream (beast::tcp_stream), which gives
// rate_limited_stream<beast::tcp_stream> its expires_after / expires_at / expires_never:
// a wait for tokens still pending at the expiry closes the tcp_stream and completes with
// beast::error::timeout, as the tcp_stream's own operations do (see rate_limited_stream.hpp).

#include <sluice/filtered_stream.hpp>
#include <sluice/pipe.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <cstddef>
#include <memory>
#include <utility>

namespace sluice {

/// The end is closed (see basic_pipe::close()).
template <class Executor>
void beast_close_socket(basic_pipe<Executor>& end) {
  end.close();
}

/// Tears a pipe end down as websocket::stream's close does a TCP socket (see the top of
/// this header). Signature: void(error_code).
template <class Executor, class TeardownHandler>
void async_teardown(boost::beast::role_type role, basic_pipe<Executor>& end,
                    TeardownHandler&& handler);

/// The next layer's teardown.
template <class Stream>
void teardown(boost::beast::role_type role, rate_limited_stream<Stream>& stream,
              boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

/// The next layer's teardown. Signature: void(error_code).
template <class Stream, class TeardownHandler>
void async_teardown(boost::beast::role_type role, rate_limited_stream<Stream>& stream,
                    TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

/// Ends the output (async_flush(flush_mode::finished)), then the next layer's teardown.
/// Signature: void(error_code).
template <class Stream, class InputFilter, class OutputFilter, class TeardownHandler>
void async_teardown(boost::beast::role_type role,
                    filtered_stream<Stream, InputFilter, OutputFilter>& stream,
                    TeardownHandler&& handler);

/// A beast::basic_stream times out by closing itself; its operations then report
/// beast::error::timeout.
template <class Protocol, class Executor, class RatePolicy>
struct expiry_traits<boost::beast::basic_stream<Protocol, Executor, RatePolicy>> {
  static boost::system::error_code
  time_out(boost::beast::basic_stream<Protocol, Executor, RatePolicy>& stream) {
    stream.close();
    return boost::beast::error::timeout;
  }
};

namespace detail {

/// A pipe's teardown: shut down sending (server first, client last), read to eof, close.
template <class Executor>
struct pipe_teardown_op {
  static constexpr std::size_t scratch_size = 4096;

  basic_pipe<Executor>& end;
  boost::beast::role_type role;
  // Bytes read and discarded; on the heap, as the operation moves while a read is pending.
  std::unique_ptr<std::byte[]> scratch = {};

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t = 0) {
    using boost::beast::role_type;
    if (!scratch) {
      if (role == role_type::server)
        end.shutdown(net::socket_base::shutdown_send);
      scratch = std::make_unique_for_overwrite<std::byte[]>(scratch_size);
      return read(self); // never completes inline: the first step is a read
    }
    if (!ec)
      return read(self);
    if (ec != net::error::eof)
      return self.complete(ec);
    if (role == role_type::client)
      end.shutdown(net::socket_base::shutdown_send);
    end.close();
    self.complete({});
  }

  template <class Self>
  void read(Self& self) {
    end.async_read_some(net::buffer(scratch.get(), scratch_size), std::move(self));
  }
};

/// A filtered stream's teardown: end the output, then tear the next layer down even when
/// that failed (as ssl::stream's teardown does after a failed shutdown: the connection ends
/// either way), and report the first error.
template <class Stream>
struct filtered_teardown_op {
  enum class step { start, flushing, tearing_down };

  Stream& stream;
  boost::beast::role_type role;
  step at = step::start;
  boost::system::error_code flushed = {};

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}) {
    switch (at) {
    case step::start:
      at = step::flushing;
      return stream.async_flush(flush_mode::finished, std::move(self));
    case step::flushing: {
      at = step::tearing_down;
      flushed = ec;
      using boost::beast::websocket::async_teardown;
      return async_teardown(role, stream.next_layer(), std::move(self));
    }
    case step::tearing_down:
      return self.complete(flushed ? flushed : ec);
    }
  }
};

} // namespace detail

template <class Executor, class TeardownHandler>
void async_teardown(boost::beast::role_type role, basic_pipe<Executor>& end,
                    TeardownHandler&& handler) {
  net::async_compose<TeardownHandler, void(boost::system::error_code)>(
      detail::pipe_teardown_op<Executor>{end, role}, handler, end);
}

template <class Stream, class InputFilter, class OutputFilter, class TeardownHandler>
void async_teardown(boost::beast::role_type role,
                    filtered_stream<Stream, InputFilter, OutputFilter>& stream,
                    TeardownHandler&& handler) {
  using filtered = filtered_stream<Stream, InputFilter, OutputFilter>;
  net::async_compose<TeardownHandler, void(boost::system::error_code)>(
      detail::filtered_teardown_op<filtered>{stream, role}, handler, stream);
}

} // namespace sluice

#endif
