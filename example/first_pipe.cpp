// The README's first example: a pipe pair, a write on one end, a read on the other.
#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <cstdio>
#include <string>

namespace net = boost::asio;

int main() {
  net::io_context ctx;
  auto [client, server] = sluice::make_pipe(ctx); // 64 KiB buffered per direction
  std::string request = "ping", reply(4, '\0');
  net::async_write(client, net::buffer(request), [](auto, auto) {});
  net::async_read(server, net::buffer(reply), [&](auto ec, auto) {
    if (!ec)
      std::printf("server got %s\n", reply.c_str());
  });
  ctx.run();
  return reply == request ? 0 : 1;
}
