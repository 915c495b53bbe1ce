// sluice-proxy: a TCP proxy that shapes every connection, alone (--rate), by client address
// (--per-ip) and all together (--total), each direction on its own, on one route or more,
// with an HTTP endpoint for metrics and live limits (--admin). See doc/proxy.md.
//
// One io_context on one thread: the proxy moves little data per second by design, and a
// single thread keeps the connection table, the groups and the counters free of locks.
//
// The parts: proxy_options (the command line), proxy_limits (the limits as JSON),
// proxy_logger (stdout that never blocks), proxy_routes (addresses and listeners),
// proxy_relay (a connection and its bytes), proxy_clients (--per-ip), proxy_fleet
// (--total-store), proxy_server (the routes, their connections and the limits over them),
// proxy_admin (--admin).
#include "proxy_admin.hpp"
#include "proxy_logger.hpp"
#include "proxy_options.hpp"
#include "proxy_routes.hpp"
#include "proxy_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#ifdef SLUICE_PROXY_HAVE_REDIS
#include <sluice/redis/address.hpp>
#endif

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#ifndef SLUICE_PROXY_VERSION
#define SLUICE_PROXY_VERSION "unknown"
#endif

namespace net = boost::asio;
using namespace sluice::proxy;

namespace {

// ---- File descriptors ------------------------------------------------------------------

// Kept free at all times: for what the proxy opens besides its connections, and so that
// the process never runs out (sanitizers, for one, need descriptors to check their reports).
constexpr std::uint64_t spare_descriptors = 16;

// Raises the soft limit on descriptors to the hard one (a proxy is what the hard limit is
// for), and says how many connections fit in what remains: two descriptors each.
std::uint64_t connections_that_fit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return 1000;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
      limit = raised;
  }
  std::uint64_t in_use = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++in_use; // this count includes the directory's own descriptor: one more spare
  if (ec)
    in_use = 64;
  std::uint64_t total = limit.rlim_cur == RLIM_INFINITY ? 1u << 20 : limit.rlim_cur;
  return total > in_use + spare_descriptors ? (total - in_use - spare_descriptors) / 2 : 0;
}

// --admin's address: its name resolved, and refused unless every address it has is
// loopback (or --admin-allow-remote says otherwise).
net::ip::tcp::endpoint admin_endpoint(net::io_context& ctx, const proxy_options& opts) {
  auto resolved = resolve(ctx, "--admin", endpoint_spec{*opts.admin, {}});
  if (!opts.admin_allow_remote)
    for (const auto& e : resolved)
      if (!is_loopback_host(client_address(e)))
        throw option_error("--admin", "'" + opts.admin->text() + "': " + endpoint_text(e) +
                                          " is not a loopback address (add "
                                          "--admin-allow-remote to mean it)");
  net::ip::tcp::endpoint first;
  std::memcpy(first.data(), resolved.front().data(), resolved.front().size());
  first.resize(resolved.front().size());
  return first;
}

// --total-store's name is resolved once at start, as the routes' are, so that a typo is an
// error now rather than a store that is never reached. (The store's client resolves it again
// at each connection: a store that moves is followed.) Whether the store answers is not
// checked: a proxy starts while its store is down (doc/proxy.md).
void check_store(net::io_context& ctx, const proxy_options& opts) {
#ifdef SLUICE_PROXY_HAVE_REDIS
  if (!opts.fleet)
    return;
  auto a = sluice::redis::address::parse(opts.fleet->store);
  if (a.type != sluice::redis::address::kind::tcp)
    return;
  net::ip::tcp::resolver resolver(ctx);
  boost::system::error_code ec;
  auto results = resolver.resolve(a.host, a.port, net::ip::tcp::resolver::numeric_service, ec);
  if (!ec && results.empty())
    ec = net::error::host_not_found;
  if (ec)
    throw option_error("--total-store", "'" + opts.fleet->store + "': cannot resolve '" + a.host +
                                            "': " + ec.message());
#else
  (void)ctx;
  (void)opts;
#endif
}

// A proxy started with stdin, stdout or stderr closed (`sluice-proxy ... >&-`) would hand
// the free descriptor to the first file it opens: the io_context's eventfd, a socket, the
// store's connection, which would then receive the log lines. Each closed one gets
// /dev/null, stdout read-only: its writes fail (EBADF), and the logger counts the lines as
// it does for a stdout whose reader went away ("stdout was closed").
void hold_standard_descriptors() {
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF)
      continue;
    int opened = ::open("/dev/null", fd == STDERR_FILENO ? O_WRONLY : O_RDONLY);
    if (opened >= 0 && opened != fd) { // not the lowest free one: cannot happen, but be sure
      ::dup2(opened, fd);
      ::close(opened);
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  hold_standard_descriptors();
  // A reader of stdout that goes away (`sluice-proxy ... | head`, a log shipper restarting)
  // must cost log lines, not the proxy and its connections: writes fail with EPIPE instead.
  std::signal(SIGPIPE, SIG_IGN);

  net::io_context ctx(1);
  proxy_options opts;
  std::vector<std::vector<stream_endpoint>> listen, upstream;
  std::optional<net::ip::tcp::endpoint> admin_at;
  try {
    opts = parse_options(std::vector<std::string>(argv + 1, argv + argc));
    if (opts.help) {
      std::printf("%s", usage().c_str());
      return 0;
    }
    if (opts.version) {
      std::printf("sluice-proxy %s\n", SLUICE_PROXY_VERSION);
      return 0;
    }
    // --listen and --upstream are the one route's, when it is given so.
    bool shorthand = std::none_of(argv + 1, argv + argc, [](const char* a) {
      return std::string_view(a).starts_with("--route");
    });
    for (const route_spec& r : opts.routes) {
      listen.push_back(resolve(ctx, shorthand ? "--listen" : "--route", r.listen));
      upstream.push_back(resolve(ctx, shorthand ? "--upstream" : "--route", r.upstream));
    }
    if (opts.admin)
      admin_at = admin_endpoint(ctx, opts);
    check_store(ctx, opts);
  } catch (const option_error& e) {
    std::fprintf(stderr, "sluice-proxy: %s\n\n%s", e.what(), usage().c_str());
    return 2;
  }

  logger log(ctx, opts.log);
  std::optional<proxy> server;
  try {
    server.emplace(ctx, opts, log, listen, upstream);
  } catch (const std::exception& e) { // the address is taken, say
    std::fprintf(stderr, "sluice-proxy: %s\n", e.what());
    return 1;
  }

  std::optional<admin_server> admin;
  if (admin_at) {
    try {
      admin.emplace(ctx, *admin_at, opts.admin_allow_remote, *server, log);
    } catch (const boost::system::system_error& e) {
      std::fprintf(stderr, "sluice-proxy: --admin: cannot listen on %s: %s\n",
                   opts.admin->text().c_str(), e.code().message().c_str());
      return 1;
    }
  }

  // The first SIGINT or SIGTERM stops cleanly; removing them then gives the signals their
  // default action back, so that a second one ends a proxy that would not stop. SIGHUP
  // (a closed terminal, or a habit of asking daemons to reload) is logged and ignored:
  // limits change through --admin, and dying of it silently was worse.
  net::signal_set stop_signals(ctx, SIGINT, SIGTERM);
  net::signal_set hangup(ctx, SIGHUP);
  stop_signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec)
      return;
    log.write("stopping", "stopping (signal " + std::to_string(signal) + ")",
              {{"signal", static_cast<std::uint64_t>(signal)}});
    boost::system::error_code ignored;
    stop_signals.clear(ignored);
    hangup.cancel(ignored);
    server->stop();
    if (admin)
      admin->stop();
    log.stop();
  });
  std::function<void(const boost::system::error_code&, int)> on_hangup =
      [&](const boost::system::error_code& ec, int) {
        if (ec)
          return;
        log.write("sighup", "SIGHUP ignored: sluice-proxy reloads nothing (restart it to "
                            "change its options)");
        hangup.async_wait(on_hangup);
      };
  hangup.async_wait(on_hangup);

  std::uint64_t fit = connections_that_fit();
  std::uint64_t max_open = std::min(opts.max_connections.value_or(fit), fit);
  if (max_open == 0) {
    std::fprintf(stderr, "sluice-proxy: no file descriptors left for connections "
                         "(raise ulimit -n)\n");
    return 1;
  }
  std::string at_most = std::to_string(max_open) + " connection" + (max_open == 1 ? "" : "s");
  if (!opts.max_connections || *opts.max_connections > fit)
    at_most += " (file descriptors)";
  server->start(max_open, at_most);
  if (admin) {
    log.write("admin", "admin on http://" + admin->local_text() + "/ (/metrics, /stats, /limits)",
              {{"admin", admin->local_text()}});
    admin->start();
  }
  ctx.run();
  admin.reset();
  server.reset(); // its unix socket files go
  log.finish(std::chrono::seconds(1));
  return 0;
}
