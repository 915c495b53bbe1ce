#ifndef SLUICE_REDIS_ADDRESS_HPP
#define SLUICE_REDIS_ADDRESS_HPP

#include <string>
#include <string_view>

namespace sluice::redis {

/// Where a Redis server listens: `unix:PATH` (a unix socket) or `redis://HOST:PORT` (TCP;
/// HOST may be a name, an IPv4 address or a bracketed IPv6 address; PORT defaults to 6379).
struct address {
  enum class kind { unix_socket, tcp };

  kind type = kind::unix_socket;
  std::string path; ///< of a unix socket
  std::string host; ///< of TCP, without brackets
  std::string port; ///< of TCP

  /// Throws std::invalid_argument that quotes `text` and says what is wrong with it. Does no
  /// I/O: a name is resolved when the client connects.
  static address parse(std::string_view text);
  /// The form parse() reads.
  std::string to_string() const;
};

} // namespace sluice::redis

#endif
