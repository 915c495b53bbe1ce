// The client side of sluice-proxy's load test (proxy_load.sh), against an echo upstream
// (proxy_test_peer echo) through the proxy:
//
//   proxy_load_client hold PORT N BYTES
//       opens N connections at once; each sends BYTES of its own pattern and checks that the
//       same bytes come back, then stays open. Prints "held N" when all have, waits for
//       SIGUSR1, then each half-closes, checks that eof follows with no byte more, and
//       closes; prints "closed N".
//   proxy_load_client cycles PORT N BYTES PARALLEL
//       N connection cycles, PARALLEL at a time: open, send BYTES of the cycle's own pattern,
//       half-close, check that exactly those bytes come back before eof, close. Prints
//       "cycles N".
//
// Any connection that fails prints what went wrong and makes the exit status 1. A pattern
// of its own for each connection catches bytes that cross from one connection to another.
#include <boost/asio.hpp>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using net::ip::tcp;

namespace {

constexpr auto as_result = net::as_tuple(use_awaitable);

// Bytes that differ from one connection to the next and along each one (an LCG).
std::string pattern(std::uint64_t seed, std::size_t bytes) {
  std::string s(bytes, '\0');
  std::uint64_t x = seed * 0x9E3779B97F4A7C15u + 1;
  for (auto& c : s) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    c = static_cast<char>(x >> 56);
  }
  return s;
}

struct failure {
  std::string what;
};

// Sends `sent` and reads the same number of bytes back; throws a failure unless they match.
awaitable<void> exchange(tcp::socket& socket, const std::string& sent, std::size_t id) {
  auto [wec, w] = co_await net::async_write(socket, net::buffer(sent), as_result);
  if (wec)
    throw failure{"connection " + std::to_string(id) + ": write: " + wec.message()};
  std::string back(sent.size(), '\0');
  auto [rec, r] = co_await net::async_read(socket, net::buffer(back), as_result);
  if (rec)
    throw failure{"connection " + std::to_string(id) + ": read after " + std::to_string(r) +
                  " of " + std::to_string(sent.size()) + " bytes: " + rec.message()};
  if (back != sent)
    throw failure{"connection " + std::to_string(id) + ": the bytes that came back differ"};
}

// Half-closes and expects eof with nothing before it: the echo has nothing more to send.
awaitable<void> finish(tcp::socket& socket, std::size_t id) {
  socket.shutdown(tcp::socket::shutdown_send);
  char extra[256];
  auto [ec, n] = co_await socket.async_read_some(net::buffer(extra), as_result);
  if (ec != net::error::eof || n != 0)
    throw failure{"connection " + std::to_string(id) + ": after the half-close, " +
                  std::to_string(n) + " bytes and '" + ec.message() + "', not eof"};
  socket.close();
}

awaitable<tcp::socket> connect(unsigned short port, std::size_t id) {
  tcp::socket socket(co_await net::this_coro::executor);
  auto [ec] = co_await socket.async_connect({net::ip::address_v4::loopback(), port}, as_result);
  if (ec)
    throw failure{"connection " + std::to_string(id) + ": connect: " + ec.message()};
  co_return socket;
}

// Spawns `op`, recording the first failure (or other exception) in `error`.
template <class Op>
void spawn(net::io_context& ctx, std::string& error, Op op) {
  net::co_spawn(ctx, std::move(op), [&error](std::exception_ptr e) {
    if (!e || !error.empty())
      return;
    try {
      std::rethrow_exception(e);
    } catch (const failure& f) {
      error = f.what;
    } catch (const std::exception& x) {
      error = x.what();
    }
  });
}

int report(const std::string& error) {
  if (error.empty())
    return 0;
  std::printf("failed: %s\n", error.c_str());
  return 1;
}

int hold(unsigned short port, std::size_t n, std::size_t bytes) {
  net::io_context ctx(1);
  std::string error;
  std::vector<tcp::socket> sockets;
  sockets.reserve(n);
  std::size_t ready = 0;
  // The signal set exists before the first connection, so a SIGUSR1 sent after "held N"
  // cannot find the default action (which would end the process).
  net::signal_set release(ctx, SIGUSR1);
  for (std::size_t i = 0; i < n; ++i)
    spawn(ctx, error, [&, i]() -> awaitable<void> {
      tcp::socket& socket = sockets.emplace_back(co_await connect(port, i)); // reserved: stays put
      co_await exchange(socket, pattern(i, bytes), i);
      if (++ready == n) {
        std::printf("held %zu\n", n);
        std::fflush(stdout);
        co_await release.async_wait(use_awaitable);
        for (std::size_t k = 0; k < sockets.size(); ++k)
          spawn(ctx, error, [&, k]() -> awaitable<void> { co_await finish(sockets[k], k); });
      }
    });
  ctx.run();
  if (error.empty())
    std::printf("closed %zu\n", n);
  return report(error);
}

int cycles(unsigned short port, std::size_t n, std::size_t bytes, std::size_t parallel) {
  net::io_context ctx(1);
  std::string error;
  std::size_t next = 0;
  for (std::size_t w = 0; w < parallel; ++w)
    spawn(ctx, error, [&]() -> awaitable<void> {
      while (next < n && error.empty()) {
        std::size_t id = next++;
        tcp::socket socket = co_await connect(port, id);
        co_await exchange(socket, pattern(id, bytes), id);
        co_await finish(socket, id);
      }
    });
  ctx.run();
  if (error.empty())
    std::printf("cycles %zu\n", n);
  return report(error);
}

int usage() {
  std::fprintf(stderr, "usage: proxy_load_client hold PORT N BYTES | "
                       "cycles PORT N BYTES PARALLEL\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    auto number = [&](std::size_t i) { return std::stoul(args.at(i)); };
    auto port = [&] { return static_cast<unsigned short>(number(1)); };
    if (args.size() == 4 && args[0] == "hold")
      return hold(port(), number(2), number(3));
    if (args.size() == 5 && args[0] == "cycles")
      return cycles(port(), number(2), number(3), number(4));
    return usage();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy_load_client: %s\n", e.what());
    return 1;
  }
}
