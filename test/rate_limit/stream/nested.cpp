// A stream joins one group; per-client and total limits at once take two adapters, one inside
// the other, each in its own group. On virtual time: two clients of one address share its
// limit, a client of another address has its own, and the total holds them all.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>
#include <sluice_test/virtual_time.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace net = boost::asio;
using namespace std::chrono_literals;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(nested)

BOOST_AUTO_TEST_CASE(per_client_groups_inside_a_total) {
  using sluice::token_bucket_config;
  using sluice::unlimited;
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  // 100 KiB/s in all; 50 KiB/s for each client address.
  sluice::rate_limit_group total(ctx, token_bucket_config::per_second(unlimited, 100 * 1024),
                                 clock);
  sluice::rate_limit_group client_a(ctx, token_bucket_config::per_second(unlimited, 50 * 1024),
                                    clock);
  sluice::rate_limit_group client_b(ctx, token_bucket_config::per_second(unlimited, 50 * 1024),
                                    clock);

  using total_shaped = sluice::rate_limited_stream<sluice::pipe>;
  using client_shaped = sluice::rate_limited_stream<total_shaped>;
  struct connection {
    std::optional<client_shaped> stream; // outside: the client's group; inside: the total
    std::optional<sluice::pipe> peer;
    result w;
  };
  std::array<connection, 3> connections; // two from address a, one from b
  for (std::size_t k = 0; k < connections.size(); ++k) {
    auto ends = sluice::make_pipe(ctx, sluice::pipe_options{1 << 20});
    connection& c = connections[k];
    c.stream.emplace(std::move(ends.first));
    c.peer.emplace(std::move(ends.second));
    c.stream->set_clock(clock);
    c.stream->next_layer().set_clock(clock);
    c.stream->join(k < 2 ? client_a : client_b);
    c.stream->next_layer().join(total);
  }
  const std::string out = pattern<std::string>(400 * 1024, 9);
  for (connection& c : connections)
    net::async_write(*c.stream, net::buffer(out), store(c.w));
  auto moved = [&](std::size_t k) { return connections[k].peer->available(); };

  // Each client address's limit binds: every 10 ms tick a's two clients move a quarter of
  // a's tick's worth (256 bytes) each, exactly, and b's client about b's (512); together
  // they use the total's (1024).
  BOOST_REQUIRE(run_until(ctx, [&] { return moved(0) >= 256 && moved(1) >= 256; }));
  const std::size_t a_start = moved(0), b_start = moved(2);
  BOOST_TEST(moved(1) == a_start);
  const int ticks = 300;
  for (int k = 1; k <= ticks; ++k) {
    clock.advance(10ms);
    BOOST_REQUIRE(run_until(ctx, [&] { return moved(0) >= a_start + k * 256u; }));
    BOOST_REQUIRE(run_until(ctx, [&] { return moved(1) >= a_start + k * 256u; }));
    // b's client keeps up too (its bucket holds two ticks: falling behind would lose bytes).
    BOOST_REQUIRE(run_until(ctx, [&] { return moved(2) + 1024 >= b_start + k * 480u; }));
  }
  BOOST_TEST(moved(0) == a_start + ticks * 256u);
  BOOST_TEST(moved(1) == a_start + ticks * 256u);
  const double b = static_cast<double>(moved(2) - b_start);
  BOOST_TEST(b == ticks * 512.0, boost::test_tools::tolerance(0.03));
  for (connection& c : connections)
    BOOST_TEST(!c.w.done);
}

BOOST_AUTO_TEST_SUITE_END()
