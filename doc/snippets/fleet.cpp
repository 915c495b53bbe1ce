// The code blocks of doc/fleet.md, compiled when sluice::redis is built (doc/CMakeLists.txt).
// clang-format off: each block keeps the line breaks the docs show.
#include <sluice/redis/shared_group.hpp>
#include <sluice/sluice.hpp>

#include <boost/asio.hpp>

#include <string>

namespace net = boost::asio;
using net::ip::tcp;

namespace fleet {

void shared_budget(net::io_context& ctx, tcp::socket socket) {
  sluice::redis::shared_group_options options;
  options.store = "unix:/run/redis/redis.sock";  // or "redis://10.0.0.5:6379"
  options.name = "egress";                       // every process naming it shares the budget
  options.write_rate = 125'000'000;              // 1 Gbit/s for the whole fleet
  sluice::redis::shared_group fleet(ctx, options);

  sluice::rate_limited_stream<tcp::socket> stream(std::move(socket));
  stream.join(fleet.group());                    // as with any rate_limit_group
}

void inspect(const sluice::redis::shared_group& fleet) {
  auto s = fleet.status();
  // s.write_rate: this process's share now; s.members, s.epoch, s.connected, s.last_error
  (void)s;
}

} // namespace fleet
