#ifndef SLUICE_DETAIL_REDIS_LEASE_STORE_HPP
#define SLUICE_DETAIL_REDIS_LEASE_STORE_HPP

#include <sluice/redis/client.hpp>

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::redis::detail {

/// One member's renewal of its lease on one shared bucket (one direction of a fleet group):
/// the arguments of the lease script (src/redis/lease_script.cpp).
struct lease_request {
  std::string member;         ///< host:pid:nonce, unique per incarnation
  std::uint64_t seq = 0;      ///< a repeated seq replays the stored answer
  double demand = -1;         ///< bytes per second wanted; negative: unbounded
  double weight = 1;          ///< > 0
  std::uint64_t rate = 0;     ///< the fleet's bytes per second
  std::uint64_t burst = 0;    ///< the shared bucket's size in bytes
  std::int64_t lease_us = 0;  ///< lease length
  std::int64_t ttl_us = 0;    ///< a member silent this long is dropped
  std::uint64_t version = 0;  ///< of rate and burst: the highest a member sent wins
  std::int64_t give_back = 0; ///< unspent bytes returned to the bucket
  bool release = false;       ///< leave now, crediting back the undelivered lease
};

/// The script's answer.
struct lease_grant {
  std::uint64_t rate = 0; ///< granted bytes per second, until lease_end_us
  std::int64_t lease_end_us = 0;
  std::uint64_t safe_share = 0; ///< rate * weight / total weight of the live members
  std::uint64_t members = 0;    ///< live members, this one included
  std::int64_t epoch = 0;       ///< changes when the store loses the bucket's state
  std::uint64_t version = 0;    ///< of the config in force
  std::int64_t now_us = 0;      ///< the store's time (Redis TIME) of the answer
};

/// The Lua source of the lease script.
const std::string& lease_script();

/// The keys of bucket `bucket` of group `group`: all under the hash tag {sluice:<group>}, so
/// that a Redis Cluster keeps a group's keys in one slot. Throws std::invalid_argument for a
/// group name that is empty or holds '{' or '}'.
std::vector<std::string> lease_keys(std::string_view group, std::string_view bucket);

/// Parses one script reply; nullopt (and `why`) if it is not one.
std::optional<lease_grant> parse_grant(const reply& r, std::string& why);

/// Runs the lease script through `c` for several requests in one round trip. Sends EVALSHA
/// once the script's digest is known; before that, and after a NOSCRIPT (the server lost its
/// scripts), sends SCRIPT LOAD and EVAL together. Completes on c's executor.
class lease_store {
public:
  struct outcome {
    boost::system::error_code ec; ///< of the connection
    std::string error;            ///< else what the server or the reply said was wrong, if anything
    std::vector<lease_grant> grants;
  };
  using handler = std::function<void(outcome)>;

  explicit lease_store(client& c) : client_(c) {}
  /// `keys[i]` are request i's (lease_keys).
  void async_lease(std::vector<std::vector<std::string>> keys, std::vector<lease_request> requests,
                   handler done);

private:
  void run(std::vector<std::vector<std::string>> keys, std::vector<lease_request> requests,
           handler done, bool retried);

  client& client_;
  std::string digest_;
};

} // namespace sluice::redis::detail

#endif
