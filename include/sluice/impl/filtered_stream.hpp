#ifndef SLUICE_IMPL_FILTERED_STREAM_HPP
#define SLUICE_IMPL_FILTERED_STREAM_HPP

#include <sluice/detail/core/buffer_pieces.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sluice {
namespace detail {

/// One call of a filter, with what it consumed and produced.
struct filter_step {
  filter_result result;
  std::size_t consumed;
  std::size_t produced;

  /// ok without progress would loop forever: it is an error of its own.
  boost::system::error_code error() const {
    if (result == filter_result::error)
      return sluice::error::filter_failed;
    if (result == filter_result::ok && consumed == 0 && produced == 0)
      return sluice::error::filter_stalled;
    return {};
  }
};

template <class Filter>
filter_step run_filter(Filter& f, std::span<const std::byte> in, std::span<std::byte> out,
                       flush_mode mode) {
  std::size_t in_size = in.size(), out_size = out.size();
  filter_result r = f(in, out, mode);
  return {r, in_size - in.size(), out_size - out.size()};
}

/// Completes a composed operation that did no I/O: through a post, never inline (Asio
/// 1.81's complete() calls the handler directly).
template <class Self, class... Args>
void post_completion(Self& self, Args... args) {
  auto ex = self.get_executor();
  boost::asio::post(ex, boost::asio::append(std::move(self), args...));
}

} // namespace detail

inline filter_result pass_through_filter::operator()(std::span<const std::byte>& in,
                                                     std::span<std::byte>& out, flush_mode) const {
  std::size_t n = std::min(in.size(), out.size());
  if (n == 0)
    return filter_result::need_more;
  std::memcpy(out.data(), in.data(), n);
  in = in.subspan(n);
  out = out.subspan(n);
  return filter_result::ok;
}

template <class Stream, filter In, filter Out>
template <class Arg>
filtered_stream<Stream, In, Out>::filtered_stream(Arg&& next_layer_arg, In in, Out out)
    : next_(std::forward<Arg>(next_layer_arg)), in_(std::move(in)), out_(std::move(out)) {}

template <class Stream, filter In, filter Out>
void filtered_stream<Stream, In, Out>::set_buffer_size(std::size_t bytes) {
  if (bytes == 0 || raw_.data || staged_.data)
    throw std::invalid_argument(
        "sluice::filtered_stream::set_buffer_size: bytes = " + std::to_string(bytes) +
        (bytes == 0 ? ": must be positive" : ": buffers already in use"));
  raw_.capacity = staged_.capacity = bytes;
}

template <class Stream, filter In, filter Out>
auto filtered_stream<Stream, In, Out>::lowest_layer() noexcept -> lowest_layer_type& {
  if constexpr (requires { next_.lowest_layer(); })
    return next_.lowest_layer();
  else
    return next_;
}

/// Runs the input filter on what was read into raw_, reading more from the next layer
/// while it needs more; completes with the first bytes it produces.
template <class Stream, filter In, filter Out>
template <class Buffers>
struct filtered_stream<Stream, In, Out>::read_op {
  filtered_stream* s;
  Buffers buffers;
  enum class step { start, posted, reading, passed_through } at = step::start;

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
    auto out = detail::first_piece<boost::asio::mutable_buffer>(buffers);
    switch (at) {
    case step::start:
      if (out.size() == 0) { // zero-length: the next layer's answer, as for any stream
        at = step::passed_through;
        return s->next_.async_read_some(out, std::move(self));
      }
      if (s->raw_.filled().empty() && !s->eof_ && !s->read_error_)
        return read_more(self);
      at = step::posted; // there may be an answer without I/O: never complete inline
      return boost::asio::post(s->next_.get_executor(), std::move(self));
    case step::passed_through:
      return self.complete(ec, n);
    case step::reading:
      s->raw_.end += n; // kept for the next read, even beside an error
      if (ec == boost::asio::error::eof)
        s->eof_ = true;
      else if (ec)
        return self.complete(ec, 0);
      break;
    case step::posted:
      break;
    }
    filter(self, {static_cast<std::byte*>(out.data()), out.size()});
  }

  template <class Self>
  void filter(Self& self, std::span<std::byte> out) {
    for (;;) {
      if (auto ec = std::exchange(s->read_error_, {}))
        return self.complete(ec, 0);
      auto mode = s->eof_ ? flush_mode::finished : flush_mode::normal;
      auto pass = detail::run_filter(s->in_, s->raw_.filled(), out, mode);
      s->raw_.begin += pass.consumed;
      if (pass.produced > 0) {
        s->read_error_ = pass.error(); // for the next read
        return self.complete({}, pass.produced);
      }
      if (auto ec = pass.error())
        return self.complete(ec, 0);
      if (pass.result == filter_result::ok)
        continue;
      // need_more
      if (s->eof_)
        return self.complete(boost::asio::error::eof, 0);
      if (s->raw_.begin > 0)
        s->raw_.compact();
      if (s->raw_.end == s->raw_.capacity) // it wants more than we may hold
        return self.complete(sluice::error::filter_stalled, 0);
      return read_more(self);
    }
  }

  template <class Self>
  void read_more(Self& self) {
    at = step::reading;
    auto room = s->raw_.room();
    s->next_.async_read_some(boost::asio::buffer(room.data(), room.size()), std::move(self));
  }
};

/// Runs the output filter over the caller's bytes and writes all it produced; completes once
/// it has consumed some (a filter may first have to give out what it holds, as zlib does).
template <class Stream, filter In, filter Out>
template <class Buffers>
struct filtered_stream<Stream, In, Out>::write_op {
  filtered_stream* s;
  Buffers buffers;
  std::size_t consumed = 0;
  enum class step { start, writing, done } at = step::start;

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
    auto in = detail::first_piece<boost::asio::const_buffer>(buffers);
    switch (at) {
    case step::start:
      if (in.size() == 0) { // zero-length: the next layer's answer, as for any stream
        at = step::done;
        return s->next_.async_write_some(in, std::move(self));
      }
      break;
    case step::writing:
      s->staged_.begin += n;
      // The filter has taken `consumed` bytes even if writing its output failed: they are
      // reported, and what is left of the output goes first in the next write or flush.
      if (ec || consumed > 0)
        return self.complete(ec, consumed);
      break;
    case step::done:
      return self.complete(ec, n);
    }
    auto r = detail::run_filter(s->out_, {static_cast<const std::byte*>(in.data()), in.size()},
                                s->staged_.room(), flush_mode::normal);
    s->staged_.end += r.produced;
    consumed = r.consumed;
    auto e = r.error();
    if (!e && r.consumed == 0 && r.produced == 0)
      e = sluice::error::filter_stalled; // need_more, with input and room to spare
    auto out = s->staged_.filled();
    if (!e && !out.empty()) {
      at = step::writing;
      return boost::asio::async_write(s->next_, boost::asio::buffer(out.data(), out.size()),
                                      std::move(self));
    }
    // Consumed and kept (zlib's window), or failed: complete, never inline.
    bool after_io = at == step::writing;
    at = step::done;
    if (after_io)
      return self.complete(e, e ? 0 : consumed);
    detail::post_completion(self, e, e ? std::size_t(0) : consumed);
  }
};

/// Calls the output filter with the flush mode until it has nothing left, writing as it goes.
template <class Stream, filter In, filter Out>
struct filtered_stream<Stream, In, Out>::flush_op {
  filtered_stream* s;
  flush_mode mode;
  enum class step { start, writing, done } at = step::start;

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
    if (at == step::done)
      return self.complete(ec);
    if (at == step::writing) {
      s->staged_.begin += n;
      if (ec)
        return self.complete(ec);
    }
    for (;;) {
      auto r = detail::run_filter(s->out_, {}, s->staged_.room(), mode);
      s->staged_.end += r.produced;
      bool drained = r.result == filter_result::need_more;
      if (auto e = r.error(); e && !drained)
        return finish(self, e);
      auto out = s->staged_.filled();
      if (out.size() == s->staged_.capacity || (drained && !out.empty())) {
        at = step::writing;
        return boost::asio::async_write(s->next_, boost::asio::buffer(out.data(), out.size()),
                                        std::move(self));
      }
      if (drained)
        return finish(self, {});
    }
  }

  template <class Self>
  void finish(Self& self, boost::system::error_code ec) {
    bool after_io = at == step::writing;
    at = step::done;
    if (after_io)
      return self.complete(ec);
    detail::post_completion(self, ec, std::size_t(0));
  }
};

template <class Stream, filter In, filter Out>
template <class MutableBufferSequence,
          boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto filtered_stream<Stream, In, Out>::async_read_some(const MutableBufferSequence& buffers,
                                                       Token&& token) {
  return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
      read_op<MutableBufferSequence>{this, buffers}, token, next_);
}

template <class Stream, filter In, filter Out>
template <class ConstBufferSequence,
          boost::asio::completion_token_for<void(boost::system::error_code, std::size_t)> Token>
auto filtered_stream<Stream, In, Out>::async_write_some(const ConstBufferSequence& buffers,
                                                        Token&& token) {
  return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
      write_op<ConstBufferSequence>{this, buffers}, token, next_);
}

template <class Stream, filter In, filter Out>
template <boost::asio::completion_token_for<void(boost::system::error_code)> Token>
auto filtered_stream<Stream, In, Out>::async_flush(flush_mode mode, Token&& token) {
  return boost::asio::async_compose<Token, void(boost::system::error_code)>(flush_op{this, mode},
                                                                            token, next_);
}

} // namespace sluice

#endif
