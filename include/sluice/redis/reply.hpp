#ifndef SLUICE_REDIS_REPLY_HPP
#define SLUICE_REDIS_REPLY_HPP

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace sluice::redis {

/// One reply of a Redis server, as RESP (protocol version 2) gives it.
struct reply {
  enum class kind { string, status, error, integer, nil, array };

  kind type = kind::nil;
  std::string str;             ///< the text of a string, status or error
  std::int64_t integer = 0;    ///< the value of an integer
  std::vector<reply> elements; ///< the elements of an array

  bool is_error() const { return type == kind::error; }
};

/// Errors of the Redis client's own making, in the "sluice.redis" category. A timeout is
/// boost::asio::error::timed_out; a server's error reply is no error of the request (it is a
/// reply of kind error).
enum class errc {
  protocol_error = 1, ///< the server sent bytes that are not RESP; the connection is closed
};

namespace detail {
class redis_error_category final : public boost::system::error_category {
public:
  const char* name() const noexcept override { return "sluice.redis"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
    case errc::protocol_error:
      return "the Redis server sent a malformed reply";
    }
    return "unknown sluice.redis error";
  }
};
} // namespace detail

inline const boost::system::error_category& error_category() noexcept {
  static const detail::redis_error_category category;
  return category;
}

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

} // namespace sluice::redis

template <>
struct boost::system::is_error_code_enum<sluice::redis::errc> : std::true_type {};

#endif
