// Pipe pairs with co_await: an in-process client and server talking through a pipe, and
// the same server code serving a real socket, unchanged. line_server is written once
// against "any stream"; it serves a client through a sluice pipe, then through a TCP
// socket on loopback. Then a pipe with a small capacity shows backpressure and half-close.
#include <sluice/pipe.hpp>

#include <boost/asio.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;

// Reads lines and answers each with its length, until the client half-closes.
template <class Stream>
awaitable<void> line_server(Stream stream) {
  std::string buffer;
  for (;;) {
    auto [ec, n] = co_await net::async_read_until(stream, net::dynamic_buffer(buffer), '\n',
                                                  net::as_tuple(use_awaitable));
    if (ec == net::error::eof)
      break;
    if (ec)
      throw boost::system::system_error(ec);
    std::string reply = std::to_string(n - 1) + " bytes: " + buffer.substr(0, n);
    buffer.erase(0, n);
    co_await net::async_write(stream, net::buffer(reply), use_awaitable);
  }
  stream.shutdown(net::socket_base::shutdown_send); // the client sees eof after the replies
}

template <class Stream>
awaitable<void> line_client(Stream stream, const char* transport) {
  for (const char* line : {"hello sluice\n", "same code, any stream\n"})
    co_await net::async_write(stream, net::buffer(std::string(line)), use_awaitable);
  stream.shutdown(net::socket_base::shutdown_send);
  std::string replies;
  auto [ec, n] =
      co_await net::async_read(stream, net::dynamic_buffer(replies), net::as_tuple(use_awaitable));
  std::printf("[%s] server replied (%s after %zu bytes):\n%s", transport, ec.message().c_str(), n,
              replies.c_str());
}

awaitable<void> over_tcp() {
  auto ex = co_await net::this_coro::executor;
  net::ip::tcp::acceptor acceptor(ex, {net::ip::address_v4::loopback(), 0});
  net::ip::tcp::socket client(ex);
  co_await client.async_connect(acceptor.local_endpoint(), use_awaitable);
  net::co_spawn(ex, line_server(co_await acceptor.async_accept(use_awaitable)), net::detached);
  co_await line_client(std::move(client), "tcp ");
}

awaitable<void> backpressure() {
  auto [writer, reader] =
      sluice::make_pipe(co_await net::this_coro::executor, sluice::pipe_options{.capacity = 1000});
  std::string big(5000, 'x');
  std::size_t n = co_await writer.async_write_some(net::buffer(big), use_awaitable);
  std::printf("[pipe] capacity 1000: a 5000-byte write takes %zu, available on the other end: "
              "%zu\n",
              n, reader.available());
  writer.shutdown(net::socket_base::shutdown_send);
  std::string got;
  auto [ec, total] =
      co_await net::async_read(reader, net::dynamic_buffer(got), net::as_tuple(use_awaitable));
  std::printf("[pipe] after half-close the reader got %zu bytes, then '%s'\n", total,
              ec.message().c_str());
}

int main() {
  net::io_context ctx;
  auto [client, server] = sluice::make_pipe(ctx);
  net::co_spawn(ctx, line_server(std::move(server)), net::detached);
  net::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        co_await line_client(std::move(client), "pipe");
        co_await over_tcp();
        co_await backpressure();
      },
      [](std::exception_ptr e) {
        if (e)
          std::rethrow_exception(e);
      });
  ctx.run();
}
