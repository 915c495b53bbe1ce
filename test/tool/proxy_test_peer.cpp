// The far ends of sluice-proxy in its tests, on loopback:
//
//   proxy_test_peer http BYTES          an upstream that answers every HTTP request with
//                                       BYTES bytes of body, then half-closes
//   proxy_test_peer echo-after-eof      an upstream that reads until eof, then sends it all
//                                       back: it answers only if the half-close got through
//   proxy_test_peer half-close-client PORT BYTES
//                                       sends BYTES, half-closes, and checks that the same
//                                       bytes come back before eof (exit 0, else 1)
//
// The servers listen on a free port of 127.0.0.1, print "port N", and serve until killed.
#include <boost/asio.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using net::ip::tcp;

namespace {

// Waits for the peer's eof, so that closing sends a FIN and not a reset over unread bytes.
awaitable<void> drain(tcp::socket& socket) {
  char sink[4096];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(net::buffer(sink), net::as_tuple(use_awaitable));
    if (ec)
      co_return;
  }
}

awaitable<void> serve_http(tcp::socket socket, std::size_t bytes) {
  std::string request;
  co_await net::async_read_until(socket, net::dynamic_buffer(request), "\r\n\r\n", use_awaitable);
  std::string header = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       "Content-Length: " +
                       std::to_string(bytes) + "\r\nConnection: close\r\n\r\n";
  co_await net::async_write(socket, net::buffer(header), use_awaitable);
  std::vector<char> chunk(64 * 1024, 'x');
  for (std::size_t left = bytes; left > 0;) {
    std::size_t n = std::min(left, chunk.size());
    co_await net::async_write(socket, net::buffer(chunk.data(), n), use_awaitable);
    left -= n;
  }
  socket.shutdown(tcp::socket::shutdown_send);
  co_await drain(socket);
}

awaitable<void> serve_echo_after_eof(tcp::socket socket) {
  std::string received;
  auto [ec, n] =
      co_await net::async_read(socket, net::dynamic_buffer(received), net::as_tuple(use_awaitable));
  if (ec != net::error::eof)
    co_return; // no half-close came: the client will see no echo and fail
  co_await net::async_write(socket, net::buffer(received), use_awaitable);
  socket.shutdown(tcp::socket::shutdown_send);
}

template <class Serve>
awaitable<void> listen(Serve serve) {
  auto ex = co_await net::this_coro::executor;
  tcp::acceptor acceptor(ex, {net::ip::address_v4::loopback(), 0});
  std::printf("port %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  for (;;)
    net::co_spawn(ex, serve(co_await acceptor.async_accept(use_awaitable)),
                  [](std::exception_ptr) {}); // a client that goes away is no error here
}

int half_close_client(unsigned short port, std::size_t bytes) {
  net::io_context ctx;
  tcp::socket socket(ctx);
  socket.connect({net::ip::address_v4::loopback(), port});
  std::string sent(bytes, '\0');
  for (std::size_t i = 0; i < bytes; ++i)
    sent[i] = static_cast<char>('a' + i % 26);
  net::write(socket, net::buffer(sent));
  socket.shutdown(tcp::socket::shutdown_send);
  std::string received;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(received), ec);
  if (ec != net::error::eof || received != sent) {
    std::fprintf(stderr, "half-close-client: sent %zu bytes, got %zu back, then '%s'\n", bytes,
                 received.size(), ec.message().c_str());
    return 1;
  }
  std::printf("half-close-client: %zu bytes echoed after the half-close\n", bytes);
  return 0;
}

int usage() {
  std::fprintf(stderr, "usage: proxy_test_peer http BYTES | echo-after-eof | "
                       "half-close-client PORT BYTES\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty())
    return usage();
  try {
    if (args[0] == "half-close-client" && args.size() == 3)
      return half_close_client(static_cast<unsigned short>(std::stoul(args[1])),
                               std::stoul(args[2]));
    net::io_context ctx(1);
    if (args[0] == "http" && args.size() == 2) {
      std::size_t bytes = std::stoul(args[1]);
      net::co_spawn(ctx, listen([bytes](tcp::socket s) { return serve_http(std::move(s), bytes); }),
                    net::detached);
    } else if (args[0] == "echo-after-eof" && args.size() == 1) {
      net::co_spawn(ctx, listen(serve_echo_after_eof), net::detached);
    } else {
      return usage();
    }
    ctx.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy_test_peer: %s\n", e.what());
    return 1;
  }
}
