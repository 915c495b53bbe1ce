// rate_limited_stream, the blocking forms: read_some and write_some sleep for tokens, own or
// a group's, with no other thread needed to run the group's timer.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/pattern.hpp>
#include <sluice_test/rate_limit.hpp>
#include <sluice_test/support.hpp>

#include <chrono>
#include <cstddef>
#include <future>
#include <string>
#include <thread>
#include <utility>

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using namespace sluice_test;

BOOST_AUTO_TEST_SUITE(blocking)

BOOST_AUTO_TEST_CASE(blocking_write_some_sleeps_for_tokens) {
  net::io_context ctx;
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
  writer.set_rate_limit(write_limit(1000, 1000, 100ms)); // 10 KB/s
  const std::string out = pattern<std::string>(5000, 18);
  auto t0 = clock_type::now();
  std::size_t n = net::write(writer, net::buffer(out)); // fits in the socket buffers
  double took = seconds(clock_type::now() - t0);
  BOOST_TEST(n == out.size());
  BOOST_TEST_MESSAGE("blocking 5 KB at 10 KB/s took " << took << " s");
  BOOST_TEST(took >= 0.38); // (5000 - 1000) / 10,000
  BOOST_TEST(took <= 1.5);
  std::string in(out.size(), '\0');
  net::read(server, net::buffer(in));
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_CASE(blocking_read_some_sleeps_for_tokens) {
  net::io_context ctx;
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> reader(std::move(server));
  reader.set_rate_limit(read_limit(1000, 1000, 100ms));
  const std::string out = pattern<std::string>(4000, 19);
  net::write(client, net::buffer(out));
  std::string in(out.size(), '\0');
  auto t0 = clock_type::now();
  error_code ec;
  std::size_t n = net::read(reader, net::buffer(in), ec);
  double took = seconds(clock_type::now() - t0);
  BOOST_TEST(!ec);
  BOOST_TEST(n == out.size());
  BOOST_TEST((in == out));
  BOOST_TEST(took >= 0.28);
  BOOST_TEST(took <= 1.4);
  // Zero-length blocking operations need no tokens.
  reader.decrement_read_limit(100000);
  BOOST_TEST(reader.read_some(net::buffer(in.data(), 0)) == 0u);
}

BOOST_AUTO_TEST_CASE(blocking_write_some_waits_in_a_group) {
  // The group's timer runs on its own thread while this one blocks.
  net::io_context group_ctx;
  auto guard = net::make_work_guard(group_ctx);
  std::thread runner([&] { group_ctx.run(); });
  {
    sluice::rate_limit_group group(group_ctx.get_executor(), write_limit(1000, 1000, 100ms));
    net::io_context ctx;
    auto [client, server] = tcp_pair(ctx);
    sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
    writer.join(group);
    const std::string out = pattern<std::string>(3000, 20);
    auto t0 = clock_type::now();
    std::size_t n = net::write(writer, net::buffer(out));
    double took = seconds(clock_type::now() - t0);
    BOOST_TEST(n == out.size());
    BOOST_TEST(took >= 0.18);
    BOOST_TEST(took <= 1.3);
    BOOST_TEST(group.totals().written == out.size());
    std::string in(out.size(), '\0');
    net::read(server, net::buffer(in));
    BOOST_TEST((in == out));
  }
  guard.reset();
  runner.join();
}

BOOST_AUTO_TEST_CASE(blocking_write_some_in_a_group_needs_no_thread_for_its_timer) {
  // Nobody runs the group's io_context: the blocked thread serves its refills itself.
  net::io_context group_ctx, ctx;
  sluice::rate_limit_group group(group_ctx.get_executor(), write_limit(1000, 1000, 100ms));
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<tcp::socket> writer(std::move(client));
  writer.join(group);
  const std::string out = pattern<std::string>(3000, 21);
  auto t0 = clock_type::now();
  auto written =
      std::async(std::launch::async, [&] { return net::write(writer, net::buffer(out)); });
  bool finished = written.wait_for(10s) == std::future_status::ready;
  BOOST_TEST(finished);
  if (!finished)
    group_ctx.run_for(1s); // its timer then frees the write, so that the test can end
  double took = seconds(clock_type::now() - t0);
  BOOST_TEST(written.get() == out.size());
  BOOST_TEST(took >= 0.18); // (3000 - 1000) / 10,000
  BOOST_TEST(group.totals().written == out.size());
  std::string in(out.size(), '\0');
  net::read(server, net::buffer(in));
  BOOST_TEST((in == out));
}

BOOST_AUTO_TEST_SUITE_END()
