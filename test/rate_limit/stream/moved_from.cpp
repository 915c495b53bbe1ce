// A moved-from rate_limited_stream behaves like a moved-from socket: no crash, its
// operations complete with bad_descriptor, its getters read as an unlimited stream with
// nothing to move, its setters throw naming the call.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sluice_test/support.hpp>

#include <limits>
#include <optional>
#include <string>

namespace net = boost::asio;
using boost::system::error_code;
using limited_pipe = sluice::rate_limited_stream<sluice::pipe>;
using sluice_test::run_until;
using sluice_test::tcp_pair;

namespace {
constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

sluice::token_bucket_config some_limit() {
  sluice::token_bucket_config cfg;
  cfg.read_rate = cfg.read_burst = cfg.write_rate = cfg.write_burst = 1000;
  return cfg;
}
} // namespace

BOOST_AUTO_TEST_SUITE(moved_from)

BOOST_AUTO_TEST_CASE(operations_complete_with_bad_descriptor) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  limited_pipe from(std::move(a));
  from.set_rate_limit(some_limit());
  limited_pipe to(std::move(from));
  char byte = 'x';
  std::optional<error_code> read_ec, write_ec;
  from.async_read_some(net::buffer(&byte, 1), [&](error_code ec, std::size_t n) {
    read_ec = ec;
    BOOST_TEST(n == 0u);
  });
  from.async_write_some(net::buffer(&byte, 1), [&](error_code ec, std::size_t n) {
    write_ec = ec;
    BOOST_TEST(n == 0u);
  });
  BOOST_TEST(!read_ec); // never inline
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return read_ec && write_ec; }));
  BOOST_TEST(*read_ec == net::error::bad_descriptor);
  BOOST_TEST(*write_ec == net::error::bad_descriptor);
  // The new object has the stream, and its limits.
  BOOST_TEST(to.rate_limit().has_value());
  bool wrote = false;
  to.async_write_some(net::buffer(&byte, 1), [&](error_code ec2, std::size_t n) {
    BOOST_TEST(!ec2);
    BOOST_TEST(n == 1u);
    wrote = true;
  });
  BOOST_TEST(run_until(ctx, [&] { return wrote; }));
  BOOST_TEST(b.available() == 1u);
}

BOOST_AUTO_TEST_CASE(blocking_operations_fail_with_bad_descriptor) {
  net::io_context ctx;
  auto [client, server] = tcp_pair(ctx);
  sluice::rate_limited_stream<net::ip::tcp::socket> from(std::move(client));
  auto to = std::move(from);
  char byte = 'x';
  error_code ec;
  BOOST_TEST(from.write_some(net::buffer(&byte, 1), ec) == 0u);
  BOOST_TEST(ec == net::error::bad_descriptor);
  BOOST_CHECK_THROW(from.read_some(net::buffer(&byte, 1)), boost::system::system_error);
  BOOST_TEST(to.write_some(net::buffer(&byte, 1)) == 1u);
}

BOOST_AUTO_TEST_CASE(getters_read_sanely_and_setters_throw_naming_the_call) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  limited_pipe from(std::move(a));
  sluice::rate_limit_group group(ctx, some_limit());
  from.join(group);
  limited_pipe to = std::move(from);
  BOOST_TEST(group.size() == 1u); // the membership moved with the stream

  BOOST_TEST(from.read_limit() == int64_max);
  BOOST_TEST(from.write_limit() == int64_max);
  BOOST_TEST(from.max_to_read() == 0);
  BOOST_TEST(from.max_to_write() == 0);
  BOOST_TEST(from.max_single_read() == int64_max);
  BOOST_TEST(from.max_single_write() == int64_max);
  BOOST_TEST(!from.rate_limit().has_value());
  BOOST_TEST(from.group() == nullptr);
  from.cancel();
  from.clear_rate_limit();
  from.leave_group();
  BOOST_TEST(group.size() == 1u);

  auto throws_naming = [](auto call, const std::string& name) {
    try {
      call();
      BOOST_ERROR(name << " did not throw");
    } catch (const boost::system::system_error& e) {
      BOOST_TEST(e.code() == net::error::bad_descriptor);
      BOOST_TEST(std::string(e.what()).find(name) != std::string::npos, e.what());
    }
  };
  sluice::manual_rate_clock clock;
  throws_naming([&] { from.set_rate_limit(some_limit()); }, "set_rate_limit");
  throws_naming([&] { from.set_clock(clock); }, "set_clock");
  throws_naming([&] { from.join(group); }, "join");
  throws_naming([&] { from.decrement_read_limit(1); }, "decrement_read_limit");
  throws_naming([&] { from.decrement_write_limit(1); }, "decrement_write_limit");
  throws_naming([&] { from.set_max_single_read(1); }, "set_max_single_read");
  throws_naming([&] { from.set_max_single_write(1); }, "set_max_single_write");
  // A bad config is still reported as such, first.
  BOOST_CHECK_THROW(from.set_rate_limit(sluice::token_bucket_config{.read_rate = 0}),
                    std::invalid_argument);

  // Assigning a live stream to the moved-from one brings it back.
  from = std::move(to);
  BOOST_TEST(from.group() == &group);
  BOOST_TEST(to.group() == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()
