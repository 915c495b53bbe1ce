#include "consumer_lib.hpp"

#include <sluice/sluice.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <string>

bool consumer_pipe_round_trip() {
  boost::asio::io_context ctx;
  auto [a, b] = sluice::make_pipe(ctx);
  std::string sent = "found and linked", received(sent.size(), '\0');
  boost::asio::async_write(a, boost::asio::buffer(sent), [](auto, auto) {});
  boost::asio::async_read(b, boost::asio::buffer(received), [](auto, auto) {});
  ctx.run();
  return received == sent;
}
