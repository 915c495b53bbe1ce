// The far ends of sluice-proxy in its tests, on loopback:
//
//   proxy_test_peer http BYTES          an upstream that answers every HTTP request with
//                                       BYTES bytes of body, then half-closes
//   proxy_test_peer echo-after-eof      an upstream that reads until eof, then sends it all
//                                       back: it answers only if the half-close got through
//   proxy_test_peer reset-after BYTES   an upstream that sends BYTES to each client, then
//                                       resets the connection (RST, not FIN)
//   proxy_test_peer echo                an upstream that sends back what it reads, as it
//                                       comes, and half-closes after the client's eof
//   proxy_test_peer count               an upstream that reads each connection to its end and
//                                       prints "eof after N" or "reset after N"
//   proxy_test_peer half-close-client PORT BYTES
//                                       sends BYTES, half-closes, and checks that the same
//                                       bytes come back before eof (exit 0, else 1)
//   proxy_test_peer reset-client PORT BYTES
//                                       sends BYTES, then resets the connection
//   proxy_test_peer download PORT [PAUSE_MS]
//                                       connects, waits PAUSE_MS (0), sends an HTTP request,
//                                       reads to the end and prints "eof|reset|error BYTES
//                                       SECONDS FIRST": the seconds from the request to the
//                                       end and to the first byte
//   proxy_test_peer upload PORT BYTES   sends BYTES, half-closes, reads to the end and prints
//                                       "eof|reset|error BYTES SECONDS -1" (from the connect)
//   proxy_test_peer downloads PORT N    N downloads at once; prints one line per download as
//                                       above (times from its connect), then "span SECONDS"
//                                       from the first connect to the last end (exit 1
//                                       unless all end in eof)
//   proxy_test_peer sequential PORT N BYTES
//                                       N downloads one after the other, each of BYTES
//                                       (exit 1 at the first that does not get them all)
//   proxy_test_peer load PORT N         N downloads at once, read as fast as they come;
//                                       prints "loaded N" once each has 64 KiB, then reads on
//   proxy_test_peer first-byte PORT N LIMIT
//                                       N downloads at once; prints the slowest time to the
//                                       first byte and exits 1 if one is over LIMIT seconds
//   proxy_test_peer ping PORT N         N round trips of 16 bytes (each different, checked
//                                       when it comes back); prints "rtt min MS median MS
//                                       max MS"
//   proxy_test_peer json-lines FILE KEY...
//                                       checks that each line of FILE is a JSON object with
//                                       the KEYs, and prints how many lines it read
//
// The servers listen on a free port of 127.0.0.1, print "port N", and serve until killed.
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <boost/json/src.hpp> // Boost.JSON compiled in, header-only

#include <fstream>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using net::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto as_result = net::as_tuple(use_awaitable);
constexpr const char* request = "GET / HTTP/1.0\r\n\r\n";

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

tcp::endpoint loopback(unsigned short port) {
  return {net::ip::address_v4::loopback(), port};
}

// Closes with a reset: SO_LINGER with a zero timeout makes close() send RST, not FIN.
void reset(tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(net::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

// Waits for the peer's eof, so that closing sends a FIN and not a reset over unread bytes.
awaitable<void> drain(tcp::socket& socket) {
  char sink[4096];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(net::buffer(sink), as_result);
    if (ec)
      co_return;
  }
}

awaitable<void> write_pattern(tcp::socket& socket, std::size_t bytes) {
  std::vector<char> chunk(64 * 1024, 'x');
  for (std::size_t left = bytes; left > 0;) {
    std::size_t n = std::min(left, chunk.size());
    co_await net::async_write(socket, net::buffer(chunk.data(), n), use_awaitable);
    left -= n;
  }
}

awaitable<void> serve_http(tcp::socket socket, std::size_t bytes) {
  std::string request;
  co_await net::async_read_until(socket, net::dynamic_buffer(request), "\r\n\r\n", use_awaitable);
  std::string header = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       "Content-Length: " +
                       std::to_string(bytes) + "\r\nConnection: close\r\n\r\n";
  co_await net::async_write(socket, net::buffer(header), use_awaitable);
  co_await write_pattern(socket, bytes);
  socket.shutdown(tcp::socket::shutdown_send);
  co_await drain(socket);
}

awaitable<void> serve_echo_after_eof(tcp::socket socket) {
  std::string received;
  auto [ec, n] = co_await net::async_read(socket, net::dynamic_buffer(received), as_result);
  if (ec != net::error::eof)
    co_return; // no half-close came: the client will see no echo and fail
  co_await net::async_write(socket, net::buffer(received), use_awaitable);
  socket.shutdown(tcp::socket::shutdown_send);
}

awaitable<void> serve_echo(tcp::socket socket) {
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(net::buffer(buffer), as_result);
    if (ec == net::error::eof)
      break;
    if (ec)
      co_return;
    co_await net::async_write(socket, net::buffer(buffer.data(), n), use_awaitable);
  }
  socket.shutdown(tcp::socket::shutdown_send);
}

awaitable<void> serve_reset_after(tcp::socket socket, std::size_t bytes) {
  co_await write_pattern(socket, bytes);
  reset(socket);
}

// Reads to the end; "eof after N" or "reset after N" (any other error by its message).
awaitable<void> serve_count(tcp::socket socket) {
  std::vector<char> sink(64 * 1024);
  std::size_t total = 0;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(net::buffer(sink), as_result);
    total += n;
    if (!ec)
      continue;
    std::string end = ec == net::error::eof                ? "eof"
                      : ec == net::error::connection_reset ? "reset"
                                                           : ec.message();
    std::printf("%s after %zu\n", end.c_str(), total);
    std::fflush(stdout);
    co_return;
  }
}

template <class Serve>
awaitable<void> listen(Serve serve) {
  auto ex = co_await net::this_coro::executor;
  tcp::acceptor acceptor(ex, loopback(0));
  std::printf("port %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  for (;;)
    net::co_spawn(ex, serve(co_await acceptor.async_accept(use_awaitable)),
                  [](std::exception_ptr) {}); // a client that goes away is no error here
}

int half_close_client(unsigned short port, std::size_t bytes) {
  net::io_context ctx;
  tcp::socket socket(ctx);
  socket.connect(loopback(port));
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

int reset_client(unsigned short port, std::size_t bytes) {
  net::io_context ctx;
  tcp::socket socket(ctx);
  socket.connect(loopback(port));
  net::write(socket, net::buffer(std::string(bytes, 'y')));
  reset(socket);
  std::printf("reset-client: sent %zu bytes, then a reset\n", bytes);
  return 0;
}

// One download: how it ended, the bytes (headers and body) and the seconds since the
// connect, and when the first byte came.
struct download_result {
  std::string end;
  std::size_t bytes = 0;
  double seconds = 0;
  double first_byte = -1;
};

// At `mark` bytes (0: never), `at_mark` says whether to stop there ("stopped") or read on.
// `pause`: between the connect and the request; the times count from the request then.
awaitable<download_result> download(
    unsigned short port, std::size_t mark = 0, std::function<bool()> at_mark = [] { return true; },
    std::chrono::milliseconds pause = {}) {
  auto ex = co_await net::this_coro::executor;
  tcp::socket socket(ex);
  download_result r;
  auto start = clock_type::now();
  auto [cec] = co_await socket.async_connect(loopback(port), as_result);
  if (cec) { // a reset can come before the connect has completed here
    r.end = cec == net::error::connection_reset ? "reset" : cec.message();
    co_return r;
  }
  if (pause.count() > 0) {
    net::steady_timer timer(ex, pause);
    co_await timer.async_wait(as_result);
    start = clock_type::now();
  }
  co_await net::async_write(socket, net::buffer(request, std::char_traits<char>::length(request)),
                            as_result);
  std::vector<char> sink(64 * 1024);
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(net::buffer(sink), as_result);
    if (n > 0 && r.first_byte < 0)
      r.first_byte = seconds_since(start);
    bool was_below = r.bytes < mark;
    r.bytes += n;
    bool stop = was_below && r.bytes >= mark && at_mark();
    if (ec || stop) {
      r.end = !ec                                  ? "stopped"
              : ec == net::error::eof              ? "eof"
              : ec == net::error::connection_reset ? "reset"
                                                   : "error:" + ec.message();
      r.seconds = seconds_since(start);
      co_return r;
    }
  }
}

// "eof|reset|error BYTES SECONDS FIRST": FIRST is the time to the first byte (-1: none).
void print(const download_result& r) {
  std::printf("%s %zu %.6f %.6f\n", r.end.c_str(), r.bytes, r.seconds, r.first_byte);
}

int downloads(unsigned short port, std::size_t n) {
  net::io_context ctx(1);
  std::vector<download_result> results(n);
  auto start = clock_type::now();
  for (std::size_t i = 0; i < n; ++i)
    net::co_spawn(
        ctx, [&, i]() -> awaitable<void> { results[i] = co_await download(port); }, net::detached);
  ctx.run();
  double span = seconds_since(start);
  bool all_eof = true;
  for (auto& r : results) {
    print(r);
    all_eof = all_eof && r.end == "eof";
  }
  std::printf("span %.6f\n", span);
  return all_eof ? 0 : 1;
}

int download_once(unsigned short port, std::chrono::milliseconds pause) {
  net::io_context ctx(1);
  download_result r;
  net::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        r = co_await download(
            port, 0, [] { return true; }, pause);
      },
      net::detached);
  ctx.run();
  print(r);
  return 0;
}

int upload(unsigned short port, std::size_t bytes) {
  net::io_context ctx;
  tcp::socket socket(ctx);
  auto start = clock_type::now();
  socket.connect(loopback(port));
  net::write(socket, net::buffer(std::string(bytes, 'u')));
  socket.shutdown(tcp::socket::shutdown_send);
  std::string received;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(received), ec);
  download_result r;
  r.end = ec == net::error::eof ? "eof" : ec == net::error::connection_reset ? "reset" : "error";
  r.bytes = bytes;
  r.seconds = seconds_since(start);
  print(r);
  return 0;
}

int ping(unsigned short port, std::size_t n) {
  net::io_context ctx;
  tcp::socket socket(ctx);
  socket.connect(loopback(port));
  socket.set_option(tcp::no_delay(true));
  std::vector<double> rtts;
  for (std::size_t i = 0; i < n; ++i) {
    char sent[32], back[16];
    std::snprintf(sent, sizeof sent, "ping %010zu\n", i % 10000000000);
    auto start = clock_type::now();
    net::write(socket, net::buffer(sent, 16));
    net::read(socket, net::buffer(back));
    rtts.push_back(seconds_since(start) * 1000);
    if (std::string(back, 16) != std::string(sent, 16)) {
      std::printf("round trip %zu: sent '%.15s', got '%.15s'\n", i, sent, back);
      return 1;
    }
  }
  std::sort(rtts.begin(), rtts.end());
  std::printf("rtt min %.3f median %.3f max %.3f\n", rtts.front(), rtts[rtts.size() / 2],
              rtts.back());
  return 0;
}

int json_lines(const std::string& file, const std::vector<std::string>& keys) {
  std::ifstream in(file);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) {
      std::printf("line %zu is not a JSON object (%s): %s\n", n, ec.message().c_str(),
                  line.c_str());
      return 1;
    }
    for (const auto& key : keys)
      if (!v.as_object().contains(key)) {
        std::printf("line %zu has no \"%s\": %s\n", n, key.c_str(), line.c_str());
        return 1;
      }
  }
  std::printf("%zu JSON lines\n", n);
  return n > 0 ? 0 : 1;
}

int sequential(unsigned short port, std::size_t n, std::size_t bytes) {
  net::io_context ctx(1);
  int status = 0;
  net::co_spawn(
      ctx,
      [&]() -> awaitable<void> {
        for (std::size_t i = 0; i < n; ++i) {
          auto r = co_await download(port);
          if (r.end != "eof" || r.bytes < bytes) {
            std::printf("download %zu of %zu: ", i + 1, n);
            print(r);
            status = 1;
            co_return;
          }
        }
        std::printf("%zu downloads of %zu bytes\n", n, bytes);
      },
      net::detached);
  ctx.run();
  return status;
}

int load(unsigned short port, std::size_t n) {
  net::io_context ctx(1);
  std::size_t loaded = 0;
  for (std::size_t i = 0; i < n; ++i)
    net::co_spawn(
        ctx,
        [&]() -> awaitable<void> {
          auto r = co_await download(port, 64 * 1024, [&] {
            if (++loaded == n) {
              std::printf("loaded %zu\n", n);
              std::fflush(stdout);
            }
            return false; // and on, until killed
          });
          std::printf("a download ended: ");
          print(r);
          std::exit(1);
        },
        net::detached);
  ctx.run();
  return 0;
}

int first_byte(unsigned short port, std::size_t n, double limit) {
  net::io_context ctx(1);
  std::vector<download_result> results(n);
  for (std::size_t i = 0; i < n; ++i)
    net::co_spawn(
        ctx, [&, i]() -> awaitable<void> { results[i] = co_await download(port, 1); },
        net::detached);
  ctx.run();
  double slowest = 0;
  bool ok = true;
  for (auto& r : results) {
    ok = ok && r.end == "stopped" && r.first_byte <= limit;
    slowest = std::max(slowest, r.first_byte < 0 ? r.seconds : r.first_byte);
  }
  std::printf("first byte of %zu new connections: the slowest in %.3f s\n", n, slowest);
  return ok ? 0 : 1;
}

int usage() {
  std::fprintf(stderr,
               "usage: proxy_test_peer http BYTES | echo-after-eof | reset-after BYTES | "
               "echo | count | half-close-client PORT BYTES | reset-client PORT BYTES | "
               "download PORT [PAUSE_MS] | upload PORT BYTES | downloads PORT N | "
               "sequential PORT N BYTES | load PORT N | first-byte PORT N LIMIT | ping PORT N | "
               "json-lines FILE KEY...\n");
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty())
    return usage();
  try {
    const std::string& mode = args[0];
    auto number = [&](std::size_t i) { return std::stoul(args.at(i)); };
    auto port = [&] { return static_cast<unsigned short>(number(1)); };
    if (mode == "half-close-client" && args.size() == 3)
      return half_close_client(port(), number(2));
    if (mode == "reset-client" && args.size() == 3)
      return reset_client(port(), number(2));
    if (mode == "downloads" && args.size() == 3)
      return downloads(port(), number(2));
    if (mode == "download" && (args.size() == 2 || args.size() == 3))
      return download_once(port(), std::chrono::milliseconds(args.size() == 3 ? number(2) : 0));
    if (mode == "upload" && args.size() == 3)
      return upload(port(), number(2));
    if (mode == "ping" && args.size() == 3)
      return ping(port(), number(2));
    if (mode == "json-lines" && args.size() >= 2)
      return json_lines(args[1], std::vector<std::string>(args.begin() + 2, args.end()));
    if (mode == "sequential" && args.size() == 4)
      return sequential(port(), number(2), number(3));
    if (mode == "load" && args.size() == 3)
      return load(port(), number(2));
    if (mode == "first-byte" && args.size() == 4)
      return first_byte(port(), number(2), std::stod(args[3]));
    net::io_context ctx(1);
    if (mode == "http" && args.size() == 2) {
      std::size_t bytes = number(1);
      net::co_spawn(ctx, listen([bytes](tcp::socket s) { return serve_http(std::move(s), bytes); }),
                    net::detached);
    } else if (mode == "reset-after" && args.size() == 2) {
      std::size_t bytes = number(1);
      net::co_spawn(
          ctx, listen([bytes](tcp::socket s) { return serve_reset_after(std::move(s), bytes); }),
          net::detached);
    } else if (mode == "echo-after-eof" && args.size() == 1) {
      net::co_spawn(ctx, listen(serve_echo_after_eof), net::detached);
    } else if (mode == "echo" && args.size() == 1) {
      net::co_spawn(ctx, listen(serve_echo), net::detached);
    } else if (mode == "count" && args.size() == 1) {
      net::co_spawn(ctx, listen(serve_count), net::detached);
    } else {
      return usage();
    }
    ctx.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy_test_peer: %s\n", e.what());
    return 1;
  }
}
