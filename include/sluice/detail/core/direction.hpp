#ifndef SLUICE_DETAIL_CORE_DIRECTION_HPP
#define SLUICE_DETAIL_CORE_DIRECTION_HPP

#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <type_traits>

namespace sluice::detail {

/// Which way an operation moves bytes: the one name for read and write in every part.
enum class direction { read = 0, write = 1 };

/// The position of direction `d`'s entry in an array of two.
constexpr std::size_t index(direction d) {
  return static_cast<std::size_t>(d);
}

/// The buffer type an operation of direction `D` takes.
template <direction D>
using buffer_for = std::conditional_t<D == direction::read, boost::asio::mutable_buffer,
                                      boost::asio::const_buffer>;

} // namespace sluice::detail

#endif
