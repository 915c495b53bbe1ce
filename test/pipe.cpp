#define BOOST_TEST_MODULE pipe
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <string>

namespace net = boost::asio;

BOOST_AUTO_TEST_CASE(smoke) {
  net::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::string out = "hello";
  char in[16];
  std::size_t got = 0;
  b.async_read_some(net::buffer(in), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    got = n;
  });
  a.async_write_some(net::buffer(out), [&](auto ec, std::size_t n) {
    BOOST_TEST(!ec);
    BOOST_TEST(n == 5u);
  });
  ctx.run();
  BOOST_TEST(got == 5u);
  BOOST_TEST(std::string(in, got) == out);
  BOOST_TEST(a.partner() == &b);
}
