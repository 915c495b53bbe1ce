// token_bucket_config::per_second in use, on virtual time: a stream and a group moving flat
// out get the rate plus at most one tick's worth in their first second, in grants no
// further apart than a tick.
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

BOOST_AUTO_TEST_SUITE(per_second)

BOOST_AUTO_TEST_CASE(a_stream_gets_its_rate_in_half_tick_grants_from_the_start) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  auto ends = sluice::make_pipe(ctx, sluice::pipe_options{1 << 20});
  limited_pipe writer(std::move(ends.first));
  sluice::pipe peer(std::move(ends.second));
  writer.set_clock(clock);
  const auto cfg = sluice::token_bucket_config::per_second(sluice::unlimited, 100 * 1024);
  BOOST_TEST(cfg.tick == 10ms);
  writer.set_rate_limit(cfg);
  const std::string out = pattern<std::string>(300 * 1024, 5);
  result w;
  net::async_write(writer, net::buffer(out), store(w));
  auto moved = [&] { return peer.available(); };
  // One tick's worth at once, never a second's.
  BOOST_TEST(settle(ctx, moved, 1024) == 1024u);
  BOOST_TEST(still_not(ctx, [&] { return moved() > 1024; }));
  // Then half a tick's worth every 5 ms: no gap is longer, and after one second the stream
  // has moved its rate and the tick it started with.
  BOOST_TEST(step_and_settle(ctx, clock, 5ms, 200, moved, 512) == 100 * 1024 + 1024u);
  BOOST_TEST(!w.done);
}

BOOST_AUTO_TEST_CASE(a_group_shares_its_rate_every_tick_from_the_start) {
  net::io_context ctx;
  sluice::manual_rate_clock clock;
  sluice::rate_limit_group group(
      ctx, sluice::token_bucket_config::per_second(sluice::unlimited, 300 * 1024), clock);
  const std::string out = pattern<std::string>(400 * 1024, 6);
  struct member {
    std::optional<limited_pipe> writer;
    std::optional<sluice::pipe> peer;
    result w;
  };
  std::array<member, 3> members;
  for (member& m : members) {
    auto ends = sluice::make_pipe(ctx, sluice::pipe_options{1 << 20});
    m.writer.emplace(std::move(ends.first));
    m.peer.emplace(std::move(ends.second));
    m.writer->set_clock(clock);
    m.writer->join(group);
  }
  for (member& m : members) // all three are members before the first asks
    net::async_write(*m.writer, net::buffer(out), store(m.w));
  auto moved = [&] {
    std::size_t n = 0;
    for (member& m : members)
      n += m.peer->available();
    return n;
  };
  BOOST_TEST(settle(ctx, moved, 3072) == 3072u); // one tick's worth
  BOOST_TEST(still_not(ctx, [&] { return moved() > 3072; }));
  // A tick's worth every 10 ms, shared equally.
  BOOST_TEST(step_and_settle(ctx, clock, 10ms, 100, moved, 3072) == 300 * 1024 + 3072u);
  for (member& m : members) {
    BOOST_TEST(m.peer->available() == (300 * 1024 + 3072u) / 3);
    BOOST_TEST(!m.w.done);
  }
}

BOOST_AUTO_TEST_SUITE_END()
