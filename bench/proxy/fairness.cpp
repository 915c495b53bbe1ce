// The two ends of bench/proxy/run.sh's fairness run: how close a binding --total stays to
// its rate, and how evenly it shares it, with many connections through sluice-proxy.
//
//   proxy_fairness source
//       an upstream that sends to every connection as fast as it can take, until it goes
//       away; listens on a free port of 127.0.0.1 and prints "port N"
//   proxy_fairness measure PORT N WARMUP SECONDS LIMIT
//       opens N connections to PORT and reads from each as fast as bytes come. Once every
//       connection has had a byte (so none is still waiting to be accepted), and WARMUP
//       seconds more (the buckets' initial burst drains), it counts each connection's bytes
//       for SECONDS, then prints the rate achieved against LIMIT (bytes/s), Jain's fairness
//       index over the connections, and the slowest and fastest connection
//
// Jain's index, (sum x)^2 / (n * sum x^2), is 1 when all connections get the same and 1/n
// when one gets everything.
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto as_result = net::as_tuple(use_awaitable);

awaitable<void> send_forever(tcp::socket socket) {
  std::vector<char> chunk(64 * 1024, 's');
  for (;;) {
    auto [ec, n] = co_await socket.async_write_some(net::buffer(chunk), as_result);
    if (ec)
      co_return;
  }
}

awaitable<void> serve(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(as_result);
    if (ec) // out of descriptors, say: the bench would show it as connections that wait
      continue;
    net::co_spawn(acceptor.get_executor(), send_forever(std::move(socket)), net::detached);
  }
}

int source() {
  net::io_context ctx(1);
  tcp::acceptor acceptor(ctx, {net::ip::address_v4::loopback(), 0});
  std::printf("port %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  net::co_spawn(ctx, serve(acceptor), net::detached);
  ctx.run();
  return 0;
}

struct reader {
  std::uint64_t bytes = 0; // since the connect
  std::uint64_t at_start = 0, at_end = 0;
  bool ended = false;
};

awaitable<void> read_forever(unsigned short port, reader& r, std::size_t& started) {
  tcp::socket socket(co_await net::this_coro::executor);
  auto [cec] = co_await socket.async_connect({net::ip::address_v4::loopback(), port}, as_result);
  std::vector<char> sink(64 * 1024);
  while (!cec) {
    auto [ec, n] = co_await socket.async_read_some(net::buffer(sink), as_result);
    if (r.bytes == 0 && n > 0)
      ++started;
    r.bytes += n;
    if (ec)
      break;
  }
  r.ended = true;
}

int measure(unsigned short port, std::size_t n, double warmup, double seconds, double limit) {
  net::io_context ctx(1);
  std::vector<reader> readers(n);
  std::size_t started = 0;
  for (auto& r : readers)
    net::co_spawn(ctx, read_forever(port, r, started), net::detached);
  auto begin = clock_type::now();
  auto run_until = [&](auto done, double bound) {
    auto deadline = clock_type::now() + std::chrono::duration<double>(bound);
    while (!done() && clock_type::now() < deadline)
      ctx.run_for(std::chrono::milliseconds(10));
  };
  run_until([&] { return started == n; }, 60);
  double all_started = std::chrono::duration<double>(clock_type::now() - begin).count();
  if (started < n) {
    std::printf("only %zu of %zu connections had a byte after 60 s\n", started, n);
    return 1;
  }
  run_until([] { return false; }, warmup);
  for (auto& r : readers)
    r.at_start = r.bytes;
  auto start = clock_type::now();
  run_until([] { return false; }, seconds);
  double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  double sum = 0, sum_sq = 0, lo = 1e300, hi = 0;
  std::size_t ended = 0;
  for (auto& r : readers) {
    double x = static_cast<double>(r.bytes - r.at_start) / elapsed;
    sum += x;
    sum_sq += x * x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    ended += r.ended;
  }
  double jain = sum_sq > 0 ? sum * sum / (static_cast<double>(n) * sum_sq) : 0;
  std::printf("connections %zu all_started_s %.2f measured_s %.2f achieved_Bps %.0f "
              "limit_Bps %.0f ratio %.4f jain %.5f slowest_Bps %.0f fastest_Bps %.0f ended %zu\n",
              n, all_started, elapsed, sum, limit, sum / limit, jain, lo, hi, ended);
  return ended == 0 ? 0 : 1;
}

int usage() {
  std::fprintf(stderr,
               "usage: proxy_fairness source | measure PORT N WARMUP SECONDS LIMIT_BYTES_PER_S\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 1 && args[0] == "source")
      return source();
    if (args.size() == 6 && args[0] == "measure")
      return measure(static_cast<unsigned short>(std::stoul(args[1])), std::stoul(args[2]),
                     std::stod(args[3]), std::stod(args[4]), std::stod(args[5]));
    return usage();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy_fairness: %s\n", e.what());
    return 1;
  }
}
