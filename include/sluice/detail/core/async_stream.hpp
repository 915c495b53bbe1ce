#ifndef SLUICE_DETAIL_CORE_ASYNC_STREAM_HPP
#define SLUICE_DETAIL_CORE_ASYNC_STREAM_HPP

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>

namespace sluice::detail {

/// A completion handler to ask a type whether it takes one.
struct probe_handler {
  void operator()(const boost::system::error_code&, std::size_t) const {}
};

/// What sluice's adapters need of their next layer: Asio's AsyncReadStream and
/// AsyncWriteStream. Checked up front so that a wrong type (an acceptor, say) gets one
/// message naming the requirement, not an error deep inside the adapter.
template <class T>
concept async_stream = requires(T& s, boost::asio::mutable_buffer in,
                                boost::asio::const_buffer out) {
  s.get_executor();
  s.async_read_some(in, probe_handler{});
  s.async_write_some(out, probe_handler{});
};

} // namespace sluice::detail

#endif
