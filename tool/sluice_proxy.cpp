// sluice-proxy: a TCP proxy that shapes every connection, alone (--rate) and all together
// (--total, a fairly shared rate_limit_group). See doc/proxy.md.
//
// One io_context on one thread: the proxy moves little data per second by design, and a
// single thread keeps the connection table and the counters free of locks.
#include "proxy_options.hpp"

#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace net = boost::asio;
using net::awaitable;
using net::ip::tcp;
using namespace net::experimental::awaitable_operators;
using namespace sluice::proxy;
using clock_type = std::chrono::steady_clock;

namespace {

// Errors come back as values: a peer going away is the normal end of a connection, not an
// exception.
constexpr auto as_result = net::as_tuple(net::use_awaitable);

// The client's socket is the shaped one: its reads are the upload, its writes the download,
// so each direction is counted once, by its own bucket and by the group.
using shaped_socket = sluice::rate_limited_stream<tcp::socket>;

// Bytes relayed one way: in all, and as of the last stats line (for the rate since then).
struct byte_count {
  std::uint64_t bytes = 0;
  std::uint64_t at_last_stats = 0;
};

double seconds(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string rate_text(double bytes, double secs) {
  return format_bytes(secs > 0 ? bytes / secs : 0) + "/s";
}

std::string endpoint_text(const tcp::endpoint& e) {
  std::string address = e.address().to_string();
  if (e.address().is_v6())
    address = "[" + address + "]";
  return address + ":" + std::to_string(e.port());
}

// Resolves --listen's or --upstream's HOST:PORT, once, at start: a restart picks up changes
// in DNS. A name that does not resolve is a bad argument like any other.
tcp::resolver::results_type resolve(net::io_context& ctx, const char* option,
                                    const host_port& where) {
  tcp::resolver resolver(ctx);
  boost::system::error_code ec;
  auto results =
      resolver.resolve(where.host, std::to_string(where.port), tcp::resolver::numeric_service, ec);
  if (!ec && results.empty())
    ec = net::error::host_not_found;
  if (ec)
    throw option_error(option, "'" + where.text() + "': cannot resolve '" + where.host +
                                   "': " + ec.message());
  return results;
}

// "localhost:8000 (127.0.0.1:8000)": the upstream as given and, where that was a name, the
// addresses it resolved to.
std::string upstream_text(const host_port& given, const tcp::resolver::results_type& resolved) {
  std::string addresses;
  for (const auto& entry : resolved) {
    if (!addresses.empty())
      addresses += ", ";
    addresses += endpoint_text(entry.endpoint());
  }
  return addresses == given.text() ? addresses : given.text() + " (" + addresses + ")";
}

// The completion of a detached coroutine: says why it failed, if it did (Asio's own
// `detached` would drop the exception unseen).
auto report_failure(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e)
      return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "sluice-proxy: %s failed: %s\n", what, ex.what());
    }
  };
}

struct connection {
  connection(std::uint64_t id, tcp::socket socket)
      : id(id), client(std::move(socket)), upstream(client.get_executor()) {
    boost::system::error_code ec;
    peer = client.next_layer().remote_endpoint(ec);
  }

  // Ends both directions at once: after an error (a reset, a failed write) there is no
  // orderly half to keep, and on shutdown nothing should wait for tokens any longer.
  void abort() {
    boost::system::error_code ec;
    if (client.next_layer().is_open())
      client.cancel(); // also ends waits for tokens, which closing the socket would not
    client.next_layer().close(ec);
    upstream.close(ec);
  }

  std::uint64_t id;
  tcp::endpoint peer;
  shaped_socket client;
  tcp::socket upstream;
  clock_type::time_point start = clock_type::now();
  byte_count up, down; // client -> upstream, upstream -> client
};

class proxy {
public:
  // `upstream`: every address of --upstream, tried in turn for each connection.
  proxy(net::io_context& ctx, const proxy_options& opts, const tcp::endpoint& listen,
        tcp::resolver::results_type upstream)
      : ctx_(ctx), opts_(opts), upstream_(std::move(upstream)), acceptor_(ctx, listen),
        stats_timer_(ctx) {
    if (opts_.total)
      group_.emplace(ctx_, bucket_config(*opts_.total, opts_.tick, group_burst_ticks));
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void start() {
    net::co_spawn(ctx_, accept_loop(), report_failure("accept loop"));
    if (opts_.stats)
      net::co_spawn(ctx_, stats_loop(*opts_.stats), report_failure("stats"));
  }

  // Stops accepting and ends every connection; once their coroutines have unwound, the
  // io_context runs out of work and run() returns.
  void stop() {
    stopping_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    stats_timer_.cancel();
    for (auto& [id, c] : connections_)
      c->abort();
  }

private:
  awaitable<void> accept_loop() {
    net::steady_timer backoff(ctx_);
    while (!stopping_) {
      auto [ec, socket] = co_await acceptor_.async_accept(as_result);
      if (stopping_ || ec == net::error::operation_aborted)
        break;
      if (ec) {
        // Out of descriptors, say: accepting again at once would spin.
        std::fprintf(stderr, "sluice-proxy: accept: %s\n", ec.message().c_str());
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(as_result);
        continue;
      }
      net::co_spawn(ctx_, serve(++last_id_, std::move(socket)), report_failure("connection"));
    }
  }

  awaitable<void> serve(std::uint64_t id, tcp::socket socket) {
    if (stopping_) // accepted just before the stop: stop() could not see it
      co_return;
    connection c(id, std::move(socket)); // lives in this frame: its address is stable
    if (opts_.rate)
      c.client.set_rate_limit(bucket_config(*opts_.rate, opts_.tick));
    if (group_)
      c.client.join(*group_);
    connections_[id] = &c;
    struct unregister { // however this frame ends, the table must not keep its address
      std::map<std::uint64_t, connection*>& table;
      std::uint64_t id;
      ~unregister() { table.erase(id); }
    } registration{connections_, id};

    // The first address that accepts; on failure, the error of the last one tried.
    auto [ec, ignored] = co_await net::async_connect(c.upstream, upstream_, as_result);
    if (ec) {
      std::printf("#%llu %s: upstream %s: %s\n", static_cast<unsigned long long>(id),
                  endpoint_text(c.peer).c_str(), opts_.upstream.text().c_str(),
                  ec.message().c_str());
    } else {
      // Both directions at once, each to its own end; a connection is over when both are.
      co_await (relay(c, c.client, c.upstream, c.up, up_) &&
                relay(c, c.upstream, c.client, c.down, down_));
    }
    c.abort(); // both sockets closed now; the stream leaves the group as the frame ends

    double secs = seconds(clock_type::now() - c.start);
    std::printf("closed #%llu %s: up %s, down %s in %.2f s (up %s, down %s)\n",
                static_cast<unsigned long long>(id), endpoint_text(c.peer).c_str(),
                format_bytes(static_cast<double>(c.up.bytes)).c_str(),
                format_bytes(static_cast<double>(c.down.bytes)).c_str(), secs,
                rate_text(static_cast<double>(c.up.bytes), secs).c_str(),
                rate_text(static_cast<double>(c.down.bytes), secs).c_str());
  }

  // Copies `from` to `to` until `from` ends. At its eof only `to`'s sending side is shut:
  // the other direction goes on (a client may half-close after its request and still read
  // the response), and `to`'s peer sees the end exactly where `from`'s peer put it.
  template <class From, class To>
  awaitable<void> relay(connection& c, From& from, To& to, byte_count& mine, byte_count& all) {
    std::vector<char> buffer(64 * 1024); // reads wait while it drains: TCP's backpressure
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(net::buffer(buffer), as_result);
      if (ec == net::error::eof) {
        boost::system::error_code ignored; // fails only if the connection is already gone
        to.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
      if (ec) {
        c.abort();
        co_return;
      }
      // write_some, not async_write: each piece is counted as it goes, so that the stats
      // see a steady rate and not one 64 KiB step every 64 KiB's worth of time.
      for (std::size_t done = 0; done < n;) {
        auto [wec, written] =
            co_await to.async_write_some(net::buffer(buffer.data() + done, n - done), as_result);
        done += written;
        mine.bytes += written;
        all.bytes += written;
        if (wec) {
          c.abort();
          co_return;
        }
      }
    }
  }

  awaitable<void> stats_loop(std::chrono::nanoseconds interval) {
    auto last = clock_type::now();
    while (!stopping_) {
      stats_timer_.expires_after(interval);
      auto [ec] = co_await stats_timer_.async_wait(as_result);
      if (ec || stopping_)
        break;
      auto now = clock_type::now();
      double secs = seconds(now - last);
      last = now;
      // Rates since the last line; a connection opened since then counts from its start.
      auto since_last = [&](byte_count& b) {
        auto text = rate_text(static_cast<double>(b.bytes - b.at_last_stats), secs);
        b.at_last_stats = b.bytes;
        return text;
      };
      std::string line = "stats: " + std::to_string(connections_.size()) + " connection" +
                         (connections_.size() == 1 ? "" : "s");
      for (auto& [id, c] : connections_)
        line += " | #" + std::to_string(id) + " down " + since_last(c->down) + " up " +
                since_last(c->up);
      line += " | total down " + since_last(down_) + " up " + since_last(up_);
      if (opts_.total)
        line += " (limit " + format_bytes(static_cast<double>(*opts_.total)) + "/s)";
      std::printf("%s\n", line.c_str());
    }
  }

  net::io_context& ctx_;
  proxy_options opts_;
  tcp::resolver::results_type upstream_;
  tcp::acceptor acceptor_;
  net::steady_timer stats_timer_;
  std::optional<sluice::rate_limit_group> group_;    // --total
  std::map<std::uint64_t, connection*> connections_; // open ones, by id, for stats and stop
  std::uint64_t last_id_ = 0;
  byte_count up_, down_; // all connections, closed ones too
  bool stopping_ = false;
};

std::string limit_text(const std::optional<std::uint64_t>& rate) {
  return rate ? format_bytes(static_cast<double>(*rate)) + "/s" : "unlimited";
}

} // namespace

int main(int argc, char** argv) {
  // Line-buffered even into a pipe or a file: the lines are a log that others watch.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  net::io_context ctx(1);
  proxy_options opts;
  tcp::endpoint listen;
  tcp::resolver::results_type upstream;
  try {
    opts = parse_options(std::vector<std::string>(argv + 1, argv + argc));
    if (opts.help) {
      std::printf("%s", usage().c_str());
      return 0;
    }
    listen = resolve(ctx, "--listen", opts.listen).begin()->endpoint();
    upstream = resolve(ctx, "--upstream", opts.upstream);
  } catch (const option_error& e) {
    std::fprintf(stderr, "sluice-proxy: %s\n\n%s", e.what(), usage().c_str());
    return 2;
  }

  std::optional<proxy> server;
  try {
    server.emplace(ctx, opts, listen, upstream);
  } catch (const boost::system::system_error& e) { // the address is taken, say
    std::fprintf(stderr, "sluice-proxy: cannot listen on %s: %s\n", endpoint_text(listen).c_str(),
                 e.code().message().c_str());
    return 1;
  }

  // The first SIGINT or SIGTERM stops cleanly; clear() then gives the signals their default
  // action back, so that a second one ends a proxy that would not stop.
  net::signal_set signals(ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec)
      return;
    std::printf("stopping (signal %d)\n", signal);
    boost::system::error_code ignored;
    signals.clear(ignored);
    server->stop();
  });

  std::printf("listening on %s, upstream %s, rate %s per connection, total %s, tick %g ms\n",
              endpoint_text(server->local_endpoint()).c_str(),
              upstream_text(opts.upstream, upstream).c_str(), limit_text(opts.rate).c_str(),
              limit_text(opts.total).c_str(),
              std::chrono::duration<double, std::milli>(opts.tick).count());
  server->start();
  ctx.run();
  return 0;
}
