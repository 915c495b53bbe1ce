// Rate limiting: sluice::rate_limited_stream against libevent's rate-limited bufferevents, in
// one run, side by side; then two micro-benchmarks of the limiter's own cost over sluice pipes.
//
//   TCP scenarios    The scenario of libevent's test-ratelim, written anew. Loopback TCP: a
//                    server writes to each of N connections as fast as its limits allow (per
//                    connection, and/or a group shared by all); the clients read and count
//                    the bytes of each connection. After a warm-up, the bytes counted over a
//                    duration D give total B/s, the mean per connection, its standard
//                    deviation and coefficient of variation, and Jain's fairness index;
//                    getrusage gives the CPU time of the process over the same span.
//                    Rates and bursts are per tick, as ev_token_bucket_cfg_new takes them;
//                    burst = rate (one tick's worth) unless --burst-ticks says otherwise
//                    (libevent's test-ratelim itself uses 4). Only the server's writes are
//                    limited.
//
//                    The server is one thread running one io_context (sluice) or one
//                    event_base (libevent). The clients are in the same process, on a thread
//                    of their own: one plain epoll loop, the same code for both, reading
//                    64 KiB at a time. sluice and libevent run one after the other, each on
//                    fresh connections, each measuring its own CPU delta (process, and the
//                    server and client threads apart).
//
//                    Bursty delivery (a tick's worth at once) makes a count taken at one
//                    instant depend on where it falls between two refills: up to one tick's
//                    worth of error. So each end of the measured span is the average of 20
//                    samples spread over one tick, which cancels the sawtooth.
//
//   pipe throughput  rate_limited_stream<pipe> at both ends of a pipe, limits that never bind
//                    (own, and own + a group), against a bare pipe: 64 KiB writes, one write
//                    and one read in flight, one thread.
//
//   group members    M pipes whose writing ends are rate_limited_stream<pipe> members of one
//                    group (M = 10, 1000, 10000), all writing 64-byte chunks at once, one
//                    thread: CPU ns per write+read, with a group that does not bind, and with
//                    one that binds (6.4 MB/s, 10 ms ticks); against the same streams in no
//                    group. The bytes per write show how finely the binding group grants.
#include "bench_util.hpp"

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::tcp;
using namespace sluice::bench;
using namespace std::chrono_literals;

namespace {

// ---- Options -----------------------------------------------------------------------------

struct options {
  bool quick = false;
  double duration = 8;        // measured seconds per TCP scenario and implementation
  double warm_up = 1.5;       // seconds before measuring
  int tick_ms = 0;            // 0: each scenario's own
  int burst_ticks = 1;        // burst = rate x this
  std::set<std::string> only; // scenario keys; empty: all
};

// ---- Time and CPU ------------------------------------------------------------------------

double seconds_since(bench_clock::time_point t) {
  return std::chrono::duration<double>(bench_clock::now() - t).count();
}

double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

double clock_seconds(clockid_t id) {
  timespec ts{};
  if (clock_gettime(id, &ts) != 0)
    return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// CPU time of another (running) thread of this process.
double thread_cpu_seconds(pthread_t thread) {
  clockid_t id{};
  if (pthread_getcpuclockid(thread, &id) != 0)
    return 0;
  return clock_seconds(id);
}

double this_thread_cpu_seconds() {
  return clock_seconds(CLOCK_THREAD_CPUTIME_ID);
}

/// The 1-minute load average, to tell a busy machine when reading the figures.
std::string load_average() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? format("%.2f", load[0]) : std::string("?");
}

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

/// Raises the soft limit on open files to the hard one: 1000 connections take 2000.
void raise_file_limit(std::size_t wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < wanted)
    std::fprintf(stderr, "ratelim_bench: warning: only %llu files may be open, %zu wanted\n",
                 static_cast<unsigned long long>(rl.rlim_cur), wanted);
}

// ---- Loopback connections ----------------------------------------------------------------

struct connection_fds {
  int server = -1;
  int client = -1;
};

void close_all(std::vector<connection_fds>& conns) {
  for (auto& c : conns) {
    if (c.server >= 0)
      ::close(c.server);
    if (c.client >= 0)
      ::close(c.client);
    c = {};
  }
}

/// `n` connected loopback TCP pairs, both ends non-blocking. Neither implementation is
/// measured setting them up.
std::vector<connection_fds> connect_loopback(std::size_t n) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0)
    throw_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  std::vector<connection_fds> conns;
  try {
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw_errno("bind");
    if (::listen(listener, 128) != 0)
      throw_errno("listen");
    if (::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw_errno("getsockname");
    for (std::size_t i = 0; i < n; ++i) {
      connection_fds c;
      c.client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c.client < 0)
        throw_errno("socket");
      conns.push_back(c);
      if (::connect(c.client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw_errno("connect");
      conns.back().server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (conns.back().server < 0)
        throw_errno("accept");
      if (::fcntl(c.client, F_SETFL, ::fcntl(c.client, F_GETFL) | O_NONBLOCK) != 0)
        throw_errno("fcntl");
    }
  } catch (...) {
    ::close(listener);
    close_all(conns);
    throw;
  }
  ::close(listener);
  return conns;
}

// ---- Clients: one epoll thread that reads and counts -------------------------------------

/// Reads every client socket as data comes, counting the bytes of each connection. The same
/// code serves both implementations.
class client_reader {
public:
  explicit client_reader(const std::vector<connection_fds>& conns) : received_(conns.size()) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epoll_ < 0 || wake_ < 0)
      throw_errno("epoll/eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = stop_key;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev) != 0)
      throw_errno("epoll_ctl");
    fds_.reserve(conns.size());
    for (std::size_t i = 0; i < conns.size(); ++i) {
      fds_.push_back(conns[i].client);
      ev.data.u64 = i;
      if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, conns[i].client, &ev) != 0)
        throw_errno("epoll_ctl");
    }
    thread_ = std::thread([this] { loop(); });
  }
  client_reader(const client_reader&) = delete;
  client_reader& operator=(const client_reader&) = delete;
  ~client_reader() {
    stop();
    ::close(epoll_);
    ::close(wake_);
  }

  void stop() {
    if (!thread_.joinable())
      return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_, &one, sizeof one);
    thread_.join();
  }

  std::size_t size() const { return received_.size(); }
  std::uint64_t received(std::size_t i) const {
    return received_[i].load(std::memory_order_relaxed);
  }
  pthread_t native_thread() { return thread_.native_handle(); }
  /// Connections that ended early (EOF or an error) while reading.
  int closed() const { return closed_.load(); }

private:
  static constexpr std::uint64_t stop_key = ~std::uint64_t(0);

  void loop() {
    std::vector<char> buf(64 * 1024);
    std::array<epoll_event, 256> events{};
    for (;;) {
      int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return;
      for (int e = 0; e < n; ++e) {
        std::uint64_t i = events[e].data.u64;
        if (i == stop_key)
          return;
        ssize_t k = ::read(fds_[i], buf.data(), buf.size());
        if (k > 0) {
          received_[i].store(received_[i].load(std::memory_order_relaxed) +
                                 static_cast<std::uint64_t>(k),
                             std::memory_order_relaxed);
        } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
          ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fds_[i], nullptr);
          ++closed_;
        }
      }
    }
  }

  std::vector<std::atomic<std::uint64_t>> received_;
  std::vector<int> fds_;
  std::atomic<int> closed_{0};
  int epoll_ = -1;
  int wake_ = -1;
  std::thread thread_;
};

// ---- Servers -----------------------------------------------------------------------------

/// Limits of one TCP scenario, in bytes per second (0: none) and the tick.
struct limits {
  std::uint64_t conn_rate = 0;
  std::uint64_t group_rate = 0;
  int tick_ms = 100;
  int burst_ticks = 1; // burst = rate per tick x this

  std::uint64_t per_tick(std::uint64_t per_second) const {
    return std::max<std::uint64_t>(1, per_second * static_cast<std::uint64_t>(tick_ms) / 1000);
  }
};

/// What a server writes: any bytes will do, the clients only count them.
constexpr std::size_t write_chunk = 16 * 1024; // as libevent's default max single write
const std::array<char, write_chunk>& payload() {
  static const auto bytes = [] {
    std::array<char, write_chunk> a{};
    for (std::size_t i = 0; i < a.size(); ++i)
      a[i] = static_cast<char>('a' + i % 26);
    return a;
  }();
  return bytes;
}

/// A server on its own thread, writing to each connection as fast as the limits allow.
class rate_limited_server {
public:
  virtual ~rate_limited_server() = default;
  virtual void start() = 0;
  virtual void stop() = 0; // and joins its thread
  virtual pthread_t native_thread() = 0;
  /// The first error seen, if any (read after stop()).
  virtual std::string failure() const = 0;
  /// Write operations (system calls) done so far, all connections together; any thread.
  std::uint64_t writes() const { return writes_.load(std::memory_order_relaxed); }

protected:
  void count_write() {
    writes_.store(writes_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

private:
  std::atomic<std::uint64_t> writes_{0}; // only the server's thread adds
};

/// sluice: each accepted socket wrapped as rate_limited_stream<tcp::socket>, one write of
/// 16 KiB always pending on each, one io_context run by one thread.
class sluice_server final : public rate_limited_server {
public:
  sluice_server(const std::vector<connection_fds>& conns, const limits& lim) {
    sluice::token_bucket_config cfg;
    cfg.tick = std::chrono::milliseconds(lim.tick_ms);
    if (lim.group_rate) {
      sluice::token_bucket_config g = cfg;
      g.write_rate = lim.per_tick(lim.group_rate);
      g.write_burst = g.write_rate * static_cast<std::uint64_t>(lim.burst_ticks);
      group_.emplace(ctx_.get_executor(), g);
    }
    cfg.write_rate = lim.per_tick(lim.conn_rate);
    cfg.write_burst = cfg.write_rate * static_cast<std::uint64_t>(lim.burst_ticks);
    for (const auto& c : conns) {
      auto& s = conns_.emplace_back(std::make_unique<stream>(ctx_));
      s->next_layer().assign(tcp::v4(), c.server);
      if (lim.conn_rate)
        s->set_rate_limit(cfg);
      if (group_)
        s->join(*group_);
    }
  }
  ~sluice_server() override { stop(); }

  void start() override {
    for (auto& s : conns_)
      write(*s);
    thread_ = std::thread([this] { ctx_.run(); });
  }

  void stop() override {
    if (!thread_.joinable())
      return;
    ctx_.stop();
    thread_.join();
  }

  pthread_t native_thread() override { return thread_.native_handle(); }
  std::string failure() const override { return failure_; }

private:
  using stream = sluice::rate_limited_stream<tcp::socket>;

  void write(stream& s) {
    s.async_write_some(net::buffer(payload()), [this, &s](const error_code& ec, std::size_t n) {
      if (ec || n == 0) {
        if (failure_.empty())
          failure_ = "sluice write: " + (ec ? ec.message() : std::string("0 bytes"));
        return;
      }
      count_write();
      write(s);
    });
  }

  // Destroyed in reverse: the streams leave the group, then the group goes, then the context.
  net::io_context ctx_{1};
  std::optional<sluice::rate_limit_group> group_;
  std::vector<std::unique_ptr<stream>> conns_;
  std::string failure_;
  std::thread thread_;
};

/// libevent: bufferevent_socket_new on each accepted socket, bufferevent_set_rate_limit and
/// a bufferevent_rate_limit_group; the output buffer is topped up to 32 KiB whenever it
/// drains below 16 KiB. One event_base run by one thread.
class libevent_server final : public rate_limited_server {
public:
  libevent_server(const std::vector<connection_fds>& conns, const limits& lim) {
    base_ = event_base_new();
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!base_ || stop_fd_ < 0)
      throw check_failed("libevent: event_base_new / eventfd failed");
    stop_event_ = event_new(base_, stop_fd_, EV_READ | EV_PERSIST, &on_stop, base_);
    event_add(stop_event_, nullptr);
    timeval tick{lim.tick_ms / 1000, (lim.tick_ms % 1000) * 1000};
    if (lim.conn_rate) {
      auto r = static_cast<std::size_t>(lim.per_tick(lim.conn_rate));
      conn_cfg_ = ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, r,
                                          r * static_cast<std::size_t>(lim.burst_ticks), &tick);
    }
    if (lim.group_rate) {
      auto r = static_cast<std::size_t>(lim.per_tick(lim.group_rate));
      group_cfg_ = ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, r,
                                           r * static_cast<std::size_t>(lim.burst_ticks), &tick);
      if (group_cfg_)
        group_ = bufferevent_rate_limit_group_new(base_, group_cfg_);
    }
    if ((lim.conn_rate && !conn_cfg_) || (lim.group_rate && !group_))
      throw check_failed("libevent: rate limit configuration refused");
    for (const auto& c : conns) {
      bufferevent* bev = bufferevent_socket_new(base_, c.server, BEV_OPT_CLOSE_ON_FREE);
      if (!bev)
        throw check_failed("libevent: bufferevent_socket_new failed");
      bevs_.push_back(bev);
      bufferevent_setcb(bev, nullptr, &on_write, &on_event, this);
      // Counts the drains of the output buffer: one per write to the socket.
      evbuffer_add_cb(bufferevent_get_output(bev), &on_output_change, this);
      bufferevent_setwatermark(bev, EV_WRITE, low_water, 0);
      if (conn_cfg_ && bufferevent_set_rate_limit(bev, conn_cfg_) != 0)
        throw check_failed("libevent: bufferevent_set_rate_limit failed");
      if (group_ && bufferevent_add_to_rate_limit_group(bev, group_) != 0)
        throw check_failed("libevent: bufferevent_add_to_rate_limit_group failed");
    }
  }

  ~libevent_server() override {
    stop();
    for (bufferevent* bev : bevs_) {
      // libevent 2.1 finalizes a freed bufferevent later, from the event_base: leave the
      // group first, or freeing the group asserts that it still has members.
      if (group_)
        bufferevent_remove_from_rate_limit_group(bev);
      bufferevent_free(bev); // closes the server socket, by event_base_free at the latest
    }
    if (group_)
      bufferevent_rate_limit_group_free(group_);
    if (conn_cfg_)
      ev_token_bucket_cfg_free(conn_cfg_);
    if (group_cfg_)
      ev_token_bucket_cfg_free(group_cfg_);
    if (stop_event_)
      event_free(stop_event_);
    if (base_)
      event_base_free(base_);
    if (stop_fd_ >= 0)
      ::close(stop_fd_);
  }

  void start() override {
    for (bufferevent* bev : bevs_) {
      top_up(bev);
      bufferevent_enable(bev, EV_WRITE);
    }
    thread_ = std::thread([this] { event_base_dispatch(base_); });
  }

  void stop() override {
    if (!thread_.joinable())
      return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }

  pthread_t native_thread() override { return thread_.native_handle(); }
  std::string failure() const override { return failure_; }

private:
  static constexpr std::size_t low_water = 16 * 1024;
  static constexpr std::size_t high_fill = 32 * 1024;

  static void top_up(bufferevent* bev) {
    evbuffer* out = bufferevent_get_output(bev);
    while (evbuffer_get_length(out) < high_fill)
      evbuffer_add(out, payload().data(), 4096);
  }

  static void on_write(bufferevent* bev, void*) { top_up(bev); }

  static void on_output_change(evbuffer*, const evbuffer_cb_info* info, void* self) {
    if (info->n_deleted > 0)
      static_cast<libevent_server*>(self)->count_write();
  }

  static void on_event(bufferevent* bev, short what, void* self) {
    auto* s = static_cast<libevent_server*>(self);
    if (s->failure_.empty())
      s->failure_ = format("libevent event 0x%x: %s", what, std::strerror(EVUTIL_SOCKET_ERROR()));
    bufferevent_disable(bev, EV_READ | EV_WRITE);
  }

  static void on_stop(evutil_socket_t, short, void* base) {
    event_base_loopbreak(static_cast<event_base*>(base));
  }

  event_base* base_ = nullptr;
  int stop_fd_ = -1;
  event* stop_event_ = nullptr;
  ev_token_bucket_cfg* conn_cfg_ = nullptr;
  ev_token_bucket_cfg* group_cfg_ = nullptr;
  bufferevent_rate_limit_group* group_ = nullptr;
  std::vector<bufferevent*> bevs_;
  std::string failure_;
  std::thread thread_;
};

// ---- One measured run --------------------------------------------------------------------

struct run_result {
  std::vector<double> rates; // B/s per connection
  double total = 0, mean = 0, sd = 0, cv = 0, jain = 0, min = 0, max = 0;
  double cpu = 0, cpu_server = 0, cpu_client = 0; // seconds, scaled to the nominal duration
  double writes_per_s = 0;                        // the server's, all connections
  double seconds = 0;                             // the measured span
  std::string failure;

  void summarize() {
    std::size_t n = rates.size();
    if (n == 0)
      return;
    double sum = 0, sum_sq = 0;
    min = max = rates[0];
    for (double r : rates) {
      sum += r;
      sum_sq += r * r;
      min = std::min(min, r);
      max = std::max(max, r);
    }
    total = sum;
    mean = sum / static_cast<double>(n);
    double var = 0;
    for (double r : rates)
      var += (r - mean) * (r - mean);
    sd = std::sqrt(var / static_cast<double>(n)); // population, as test-ratelim
    cv = mean > 0 ? sd / mean : 0;
    jain = sum_sq > 0 ? sum * sum / (static_cast<double>(n) * sum_sq) : 0;
  }
};

/// The average of `samples` counts of every connection, spread evenly over `span`.
struct window {
  std::vector<double> counts;
  double time = 0; // seconds since `origin`, averaged likewise
};

window sample_window(const client_reader& reader, bench_clock::time_point origin,
                     bench_clock::duration span, int samples) {
  window w;
  w.counts.assign(reader.size(), 0.0);
  auto start = bench_clock::now();
  for (int k = 0; k < samples; ++k) {
    std::this_thread::sleep_until(start + span * k / samples);
    w.time += std::chrono::duration<double>(bench_clock::now() - origin).count();
    for (std::size_t i = 0; i < reader.size(); ++i)
      w.counts[i] += static_cast<double>(reader.received(i));
  }
  w.time /= samples;
  for (double& c : w.counts)
    c /= samples;
  return w;
}

enum class impl { sluice, libevent };

run_result run_tcp(impl which, std::size_t n, const limits& lim, const options& opt) {
  run_result res;
  std::vector<connection_fds> conns = connect_loopback(n);
  std::unique_ptr<rate_limited_server> server;
  try {
    if (which == impl::sluice)
      server = std::make_unique<sluice_server>(conns, lim);
    else
      server = std::make_unique<libevent_server>(conns, lim);
  } catch (...) {
    close_all(conns);
    throw;
  }
  for (auto& c : conns)
    c.server = -1; // the server owns them now
  std::optional<client_reader> started;
  try {
    started.emplace(conns);
  } catch (...) {
    close_all(conns);
    throw;
  }
  client_reader& reader = *started;
  server->start();

  auto origin = bench_clock::now();
  std::this_thread::sleep_until(origin + std::chrono::duration<double>(opt.warm_up));
  // Each end of the span averages over one tick (at least 10 ms): see the top of the file.
  auto span = std::chrono::duration_cast<bench_clock::duration>(
      std::chrono::milliseconds(std::max(lim.tick_ms, 10)));
  constexpr int samples = 20;

  auto cpu_at = [&] {
    return std::array<double, 3>{process_cpu_seconds(), thread_cpu_seconds(server->native_thread()),
                                 thread_cpu_seconds(reader.native_thread())};
  };
  auto t0 = bench_clock::now();
  auto cpu0 = cpu_at();
  std::uint64_t writes0 = server->writes();
  window a = sample_window(reader, origin, span, samples);
  std::this_thread::sleep_until(t0 + std::chrono::duration_cast<bench_clock::duration>(
                                         std::chrono::duration<double>(opt.duration)));
  window b = sample_window(reader, origin, span, samples);
  auto cpu1 = cpu_at();
  std::uint64_t writes1 = server->writes();
  double cpu_span = seconds_since(t0);

  server->stop();
  int closed = reader.closed();
  reader.stop();
  res.failure = server->failure();
  if (res.failure.empty() && closed > 0)
    res.failure = format("%d client connections ended early", closed);
  server.reset();
  for (auto& c : conns)
    if (c.client >= 0)
      ::close(c.client);

  res.seconds = b.time - a.time;
  for (std::size_t i = 0; i < n; ++i)
    res.rates.push_back((b.counts[i] - a.counts[i]) / res.seconds);
  res.summarize();
  double scale = opt.duration / cpu_span; // CPU seconds per nominal duration
  res.cpu = (cpu1[0] - cpu0[0]) * scale;
  res.cpu_server = (cpu1[1] - cpu0[1]) * scale;
  res.cpu_client = (cpu1[2] - cpu0[2]) * scale;
  res.writes_per_s = static_cast<double>(writes1 - writes0) / cpu_span;
  return res;
}

// ---- TCP scenarios -----------------------------------------------------------------------

struct scenario {
  const char* key;
  std::size_t conns;
  std::size_t quick_conns;
  limits lim;
  const char* peers_md;   // what PEERS.md reports for libevent's test-ratelim
  double total_tolerance; // fraction of the expected total; 0: no target
  double cv_max;          // 0: no target
  bool cpu_target;        // sluice's CPU <= libevent's
};

const std::vector<scenario> scenarios = {
    {"1", 30, 10, {1000, 0, 100}, "total 30000, sd 0", 0.01, 0.02, false},
    {"2", 30, 10, {0, 30000, 100}, "total 30004, sd 23", 0.01, 0.03, false},
    {"3", 500, 50, {0, 5'000'000, 10}, "total 4,995,573, sd 10,782 (cv 108 %)", 0.01, 0.05, false},
    {"4", 1000, 100, {0, 10'000'000, 100}, "total 9,988,075, cv 111 %", 0, 0.05, true},
};

std::string describe(std::size_t n, const limits& lim) {
  std::string d = format("%zu conns", n);
  if (lim.conn_rate)
    d += format(", %llu B/s each", static_cast<unsigned long long>(lim.conn_rate));
  if (lim.group_rate)
    d += format(", group %llu B/s", static_cast<unsigned long long>(lim.group_rate));
  d += format(", %d ms ticks", lim.tick_ms);
  if (lim.burst_ticks != 1)
    d += format(", burst %d ticks' worth", lim.burst_ticks);
  return d;
}

double expected_total(std::size_t n, const limits& lim) {
  double own = lim.conn_rate ? static_cast<double>(lim.conn_rate) * static_cast<double>(n) : 0;
  double group = static_cast<double>(lim.group_rate);
  if (own > 0 && group > 0)
    return std::min(own, group);
  return own > 0 ? own : group;
}

void print_verdict(const std::string& what, const std::string& measured, bool measured_ok,
                   bool pass) {
  std::printf("  %-58s %12s  %s\n", what.c_str(), measured.c_str(),
              !measured_ok ? "n/a"
              : pass       ? "PASS"
                           : "MISS");
}

void run_scenario(const scenario& s, const options& opt) {
  limits lim = s.lim;
  if (opt.tick_ms > 0)
    lim.tick_ms = opt.tick_ms;
  lim.burst_ticks = opt.burst_ticks;
  std::size_t n = opt.quick ? s.quick_conns : s.conns;
  double expected = expected_total(n, lim);
  std::printf("[%s] %s: expected total %.0f B/s, %.1f B/s per connection\n", s.key,
              describe(n, lim).c_str(), expected, expected / static_cast<double>(n));
  if (!opt.quick && opt.tick_ms <= 0 && opt.burst_ticks == 1)
    std::printf("    PEERS.md, libevent's own test-ratelim: %s\n", s.peers_md);
  std::fflush(stdout);

  std::array<run_result, 2> results;
  std::array<const char*, 2> names = {"sluice", "libevent"};
  for (int k = 0; k < 2; ++k) {
    std::fprintf(stderr, "ratelim_bench: scenario %s, %s...\n", s.key, names[k]);
    try {
      results[k] = run_tcp(k == 0 ? impl::sluice : impl::libevent, n, lim, opt);
    } catch (const std::exception& e) {
      results[k].failure = std::string("set-up: ") + e.what();
    }
  }

  table t({10, 11, 9, 10, 9, 7, 8, 9, 9, 7, 7, 7, 9, 8});
  t.row({"    impl", "total B/s", "vs exp", "avg B/s", "sd B/s", "cv %", "Jain", "min B/s",
         "max B/s", "CPU s", "server", "client", "writes/s", "B/write"});
  for (int k = 0; k < 2; ++k) {
    const run_result& r = results[k];
    if (r.rates.empty()) {
      std::printf("    %-8s FAILED: %s\n", names[k], r.failure.c_str());
      continue;
    }
    t.row({std::string("    ") + names[k], format("%.0f", r.total),
           format("%+.2f%%", (r.total / expected - 1) * 100), format("%.1f", r.mean),
           format("%.1f", r.sd), format("%.2f", r.cv * 100), format("%.4f", r.jain),
           format("%.0f", r.min), format("%.0f", r.max), format("%.3f", r.cpu),
           format("%.3f", r.cpu_server), format("%.3f", r.cpu_client),
           format("%.0f", r.writes_per_s),
           r.writes_per_s > 0 ? format("%.0f", r.total / r.writes_per_s) : std::string("-")});
    if (!r.failure.empty())
      std::printf("    %-8s WARNING: %s\n", names[k], r.failure.c_str());
  }
  const run_result& sl = results[0];
  const run_result& le = results[1];
  bool ok = !sl.rates.empty() && sl.total > 0;
  std::printf("  targets (sluice; measured over %.2f s; load average now %s):\n", sl.seconds,
              load_average().c_str());
  if (s.total_tolerance > 0) {
    double off = ok ? sl.total / expected - 1 : 0;
    print_verdict(format("total within %.0f %% of %.0f B/s", s.total_tolerance * 100, expected),
                  format("%+.2f%%", off * 100), ok, std::fabs(off) <= s.total_tolerance);
  }
  if (s.cv_max > 0)
    print_verdict(format("sd <= %.0f %% of the mean (cv)", s.cv_max * 100),
                  format("%.2f%%", sl.cv * 100), ok, sl.cv <= s.cv_max);
  if (s.cpu_target) {
    bool both = ok && !le.rates.empty() && le.cpu > 0;
    print_verdict("CPU <= libevent's (process, same span)",
                  both ? format("%.3f / %.3f s", sl.cpu, le.cpu) : std::string("-"), both,
                  sl.cpu <= le.cpu);
  }
  std::printf("\n");
  std::fflush(stdout);
}

// ---- Micro-benchmark (a): pipe throughput with limits that never bind --------------------

using limited_pipe = sluice::rate_limited_stream<sluice::pipe>;

/// Limits far above anything a pipe can move: they are checked and charged, never bind.
sluice::token_bucket_config loose_limits() {
  constexpr std::uint64_t huge = 1ull << 50; // 1 PiB per second
  sluice::token_bucket_config cfg;
  cfg.read_rate = cfg.read_burst = cfg.write_rate = cfg.write_burst = huge;
  cfg.tick = 1s;
  return cfg;
}

/// Moves bytes from `writer` to `reader`, one 64 KiB write and one read in flight.
template <class Writer, class Reader>
class bulk_pump {
public:
  bulk_pump(net::io_context& ctx, Writer& w, Reader& r, std::span<const std::byte> src,
            std::span<std::byte> dst)
      : ctx_(ctx), writer_(w), reader_(r), src_(src), dst_(dst) {}

  std::uint64_t run(std::uint64_t total) {
    total_ = total;
    written_ = read_ = 0;
    failure_.clear();
    ctx_.restart();
    read();
    write();
    ctx_.run();
    check(failure_.empty(), failure_);
    check(written_ == total_ && read_ == total_,
          format("moved %llu, read %llu of %llu bytes", static_cast<unsigned long long>(written_),
                 static_cast<unsigned long long>(read_), static_cast<unsigned long long>(total_)));
    return read_;
  }

private:
  void write() {
    std::size_t off = written_ % src_.size();
    std::size_t n = std::min<std::uint64_t>(src_.size() - off, total_ - written_);
    writer_.async_write_some(net::buffer(src_.data() + off, n),
                             [this](const error_code& ec, std::size_t k) {
                               if (ec || k == 0)
                                 return fail("write: " + (ec ? ec.message() : "0 bytes"));
                               written_ += k;
                               if (written_ < total_)
                                 write();
                             });
  }

  void read() {
    reader_.async_read_some(
        net::buffer(dst_.data(), dst_.size()), [this](const error_code& ec, std::size_t k) {
          if (ec || k == 0)
            return fail("read: " + (ec ? ec.message() : "0 bytes"));
          std::size_t c = src_.size();
          if (dst_[0] != src_[read_ % c] || dst_[k - 1] != src_[(read_ + k - 1) % c])
            return fail(format("wrong bytes read at %llu", static_cast<unsigned long long>(read_)));
          read_ += k;
          if (read_ < total_)
            read();
        });
  }

  void fail(std::string what) {
    if (failure_.empty())
      failure_ = std::move(what);
    ctx_.stop();
  }

  net::io_context& ctx_;
  Writer& writer_;
  Reader& reader_;
  std::span<const std::byte> src_;
  std::span<std::byte> dst_;
  std::uint64_t total_ = 0, written_ = 0, read_ = 0;
  std::string failure_;
};

page_buffer make_pattern(std::size_t n) {
  page_buffer b(n);
  std::mt19937 gen(4321);
  for (auto& x : b.span())
    x = static_cast<std::byte>(gen() & 0xff);
  return b;
}

enum class wrap { bare, no_limits, own, own_group };

/// One contender of (a): its own io_context, pipe pair, limits and buffers.
contender make_pipe_contender(const char* name, wrap how, const page_buffer& src,
                              std::uint64_t bytes) {
  struct state {
    net::io_context ctx{1};
    page_buffer dst{64 * 1024};
    std::optional<sluice::rate_limit_group> group;
    std::optional<std::pair<sluice::pipe, sluice::pipe>> bare;
    std::optional<limited_pipe> w, r;
    std::function<std::uint64_t(std::uint64_t)> run;
  };
  auto st = std::make_shared<state>();
  auto ends = sluice::make_pipe(st->ctx);
  if (how == wrap::bare) {
    st->bare.emplace(std::move(ends));
    auto pump = std::make_shared<bulk_pump<sluice::pipe, sluice::pipe>>(
        st->ctx, st->bare->first, st->bare->second, src.span(), st->dst.span());
    st->run = [pump](std::uint64_t n) { return pump->run(n); };
  } else {
    st->w.emplace(std::move(ends.first));
    st->r.emplace(std::move(ends.second));
    if (how == wrap::own || how == wrap::own_group) {
      st->w->set_rate_limit(loose_limits());
      st->r->set_rate_limit(loose_limits());
    }
    if (how == wrap::own_group) {
      st->group.emplace(st->ctx.get_executor(), loose_limits());
      st->w->join(*st->group);
      st->r->join(*st->group);
    }
    auto pump = std::make_shared<bulk_pump<limited_pipe, limited_pipe>>(st->ctx, *st->w, *st->r,
                                                                        src.span(), st->dst.span());
    st->run = [pump](std::uint64_t n) { return pump->run(n); };
  }
  // The pump refers to the state, and the state must end streams before the group: members
  // leave in their destructors (optional members go in reverse order: r, w, bare, group).
  return {name, [st, bytes] { return st->run(std::max<std::uint64_t>(bytes / 8, 1 << 20)); },
          [st, bytes] { return st->run(bytes); }};
}

void run_pipe_throughput(const options& opt) {
  std::uint64_t bytes = opt.quick ? 64ull << 20 : 1ull << 30;
  int reps = opt.quick ? 2 : 5;
  std::printf("[a] pipe throughput, 64 KiB writes, one thread, %s per run, best of %d:\n",
              format_size(bytes).c_str(), reps);
  std::fflush(stdout);
  std::fprintf(stderr, "ratelim_bench: pipe throughput...\n");
  page_buffer src = make_pattern(64 * 1024);
  std::vector<contender> cs;
  cs.push_back(make_pipe_contender("bare sluice::pipe", wrap::bare, src, bytes));
  cs.push_back(make_pipe_contender("rate_limited_stream, no limits", wrap::no_limits, src, bytes));
  cs.push_back(make_pipe_contender("own limits (never bind)", wrap::own, src, bytes));
  cs.push_back(make_pipe_contender("own + group limits (never bind)", wrap::own_group, src, bytes));
  measure_round_robin(cs, reps);

  const double gib = 1024.0 * 1024.0 * 1024.0;
  double base = cs[0].result.best();
  table t({36, 10, 12});
  t.row({"    stream at both ends", "GiB/s", "vs bare"});
  for (const auto& c : cs) {
    if (!c.failure.empty()) {
      std::printf("    %-32s FAILED: %s\n", c.name.c_str(), c.failure.c_str());
      continue;
    }
    t.row({"    " + c.name, format("%.2f", c.result.best() / gib), ratio(c.result.best(), base)});
  }
  std::printf("  targets:\n");
  for (std::size_t i : {2u, 3u}) {
    double r = base > 0 ? cs[i].result.best() / base : 0;
    print_verdict(cs[i].name + " >= 0.9x bare pipe", r > 0 ? format("%.2fx", r) : "-", r > 0,
                  r >= 0.9);
  }
  std::printf("\n");
  std::fflush(stdout);
}

// ---- Micro-benchmark (b): cost per operation against the group's size -------------------

enum class membership { none, loose_group, binding_group };

struct member_result {
  double cpu_ns = 0, wall_ns = 0, ops_per_s = 0, bytes_per_s = 0;
  std::string failure;
};

constexpr std::size_t small_write = 64;
constexpr std::uint64_t binding_rate_per_tick = 64'000; // 6.4 MB/s with 10 ms ticks

/// M pipes, each writing end a rate_limited_stream<pipe> (in the group or not) with one
/// 64-byte write always pending, each reading end a bare pipe with one read always pending.
member_result run_members(std::size_t m, membership how, double warm_s, double measure_s) {
  struct member {
    limited_pipe w;
    sluice::pipe r;
    std::array<std::byte, small_write> buf{};
    member(sluice::pipe&& a, sluice::pipe&& b) : w(std::move(a)), r(std::move(b)) {}
  };
  static const std::array<std::byte, small_write> out{};

  member_result res;
  net::io_context ctx{1};
  std::unique_ptr<sluice::rate_limit_group> group;
  if (how == membership::loose_group) {
    group = std::make_unique<sluice::rate_limit_group>(ctx.get_executor(), loose_limits());
  } else if (how == membership::binding_group) {
    sluice::token_bucket_config cfg;
    cfg.write_rate = cfg.write_burst = binding_rate_per_tick;
    cfg.tick = 10ms;
    group = std::make_unique<sluice::rate_limit_group>(ctx.get_executor(), cfg);
  }
  std::vector<std::unique_ptr<member>> members;
  members.reserve(m);
  for (std::size_t i = 0; i < m; ++i) {
    auto ends = sluice::make_pipe(ctx, sluice::pipe_options{256});
    members.push_back(std::make_unique<member>(std::move(ends.first), std::move(ends.second)));
    if (group)
      members.back()->w.join(*group);
  }

  bool stopping = false;
  std::uint64_t writes = 0, reads = 0;
  std::function<void(member&)> write = [&](member& x) {
    x.w.async_write_some(net::buffer(out), [&, p = &x](const error_code& ec, std::size_t n) {
      if (stopping)
        return;
      if (ec || n == 0) {
        res.failure = "write: " + (ec ? ec.message() : std::string("0 bytes"));
        return;
      }
      ++writes;
      write(*p);
    });
  };
  std::function<void(member&)> read = [&](member& x) {
    x.r.async_read_some(net::buffer(x.buf), [&, p = &x](const error_code& ec, std::size_t n) {
      if (stopping)
        return;
      if (ec || n == 0) {
        res.failure = "read: " + (ec ? ec.message() : std::string("0 bytes"));
        return;
      }
      reads += n;
      read(*p);
    });
  };
  for (auto& x : members) {
    read(*x);
    write(*x);
  }

  struct mark {
    bench_clock::time_point t;
    double cpu = 0;
    std::uint64_t writes = 0, bytes = 0;
  } start, end;
  auto take = [&](mark& k) {
    k.t = bench_clock::now();
    k.cpu = this_thread_cpu_seconds();
    k.writes = writes;
    k.bytes = reads;
  };
  net::steady_timer warm(ctx), done(ctx);
  warm.expires_after(
      std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(warm_s)));
  warm.async_wait([&](const error_code&) {
    take(start);
    done.expires_after(std::chrono::duration_cast<bench_clock::duration>(
        std::chrono::duration<double>(measure_s)));
    done.async_wait([&](const error_code&) {
      take(end);
      stopping = true;
      ctx.stop();
    });
  });
  ctx.run();

  // Wind down: every pending operation completes (aborted) and issues nothing more.
  stopping = true;
  ctx.restart();
  for (auto& x : members) {
    x->w.cancel();
    x->w.next_layer().close();
    x->r.close();
  }
  ctx.run_for(5s);
  if (!ctx.stopped() && res.failure.empty())
    res.failure = "operations still pending 5 s after cancel() and close()";
  members.clear();
  group.reset();

  std::uint64_t ops = end.writes - start.writes;
  double wall = std::chrono::duration<double>(end.t - start.t).count();
  if (ops > 0) {
    res.cpu_ns = (end.cpu - start.cpu) * 1e9 / static_cast<double>(ops);
    res.wall_ns = wall * 1e9 / static_cast<double>(ops);
  }
  res.ops_per_s = wall > 0 ? static_cast<double>(ops) / wall : 0;
  res.bytes_per_s = wall > 0 ? static_cast<double>(end.bytes - start.bytes) / wall : 0;
  return res;
}

void run_group_members(const options& opt) {
  double warm = opt.quick ? 0.05 : 0.3, measure = opt.quick ? 0.2 : 1.5;
  const std::array<std::size_t, 3> sizes = {10, 1000, 10000};
  std::printf("[b] cost per write+read (64-byte writes asked) against the number of members, one\n"
              "    thread, all members writing at once; %.1f s measured after %.2f s (CPU ns per\n"
              "    write; a write moves what the limits grant, up to 64 bytes):\n",
              measure, warm);
  std::fflush(stdout);
  struct variant {
    const char* name;
    membership how;
  };
  const std::array<variant, 3> variants = {{
      {"no group (reference)", membership::none},
      {"group, not binding", membership::loose_group},
      {"group binding 6.4 MB/s, 10 ms", membership::binding_group},
  }};
  table t({34, 14, 14, 14, 10});
  t.row({"    members:", "10", "1000", "10000", "10000/10"});
  std::array<std::array<member_result, 3>, 3> results;
  for (std::size_t v = 0; v < variants.size(); ++v) {
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      std::fprintf(stderr, "ratelim_bench: %zu members, %s...\n", sizes[k], variants[v].name);
      try {
        results[v][k] = run_members(sizes[k], variants[v].how, warm, measure);
      } catch (const std::exception& e) {
        results[v][k].failure = e.what();
      }
    }
    std::vector<std::string> cells = {std::string("    ") + variants[v].name};
    for (const auto& r : results[v])
      cells.push_back(r.cpu_ns > 0 ? format("%.0f", r.cpu_ns) : "-");
    cells.push_back(ratio(results[v][2].cpu_ns, results[v][0].cpu_ns));
    t.row(cells);
  }
  std::printf("    throughput (k writes/s, wall):\n");
  for (std::size_t v = 0; v < variants.size(); ++v) {
    std::vector<std::string> cells = {std::string("    ") + variants[v].name};
    for (const auto& r : results[v])
      cells.push_back(format("%.0f", r.ops_per_s / 1e3));
    cells.push_back("");
    t.row(cells);
  }
  std::printf("    bytes per write:\n");
  for (std::size_t v = 0; v < variants.size(); ++v) {
    std::vector<std::string> cells = {std::string("    ") + variants[v].name};
    for (const auto& r : results[v])
      cells.push_back(r.ops_per_s > 0 ? format("%.1f", r.bytes_per_s / r.ops_per_s) : "-");
    cells.push_back("");
    t.row(cells);
  }
  for (std::size_t v = 0; v < variants.size(); ++v)
    for (std::size_t k = 0; k < sizes.size(); ++k)
      if (!results[v][k].failure.empty())
        std::printf("    %s, %zu members: FAILED: %s\n", variants[v].name, sizes[k],
                    results[v][k].failure.c_str());
  const double limit_bps = static_cast<double>(binding_rate_per_tick) * 100;
  std::printf("    binding group's rate, measured: %.0f / %.0f / %.0f B/s (limit %.0f)\n",
              results[2][0].bytes_per_s, results[2][1].bytes_per_s, results[2][2].bytes_per_s,
              limit_bps);
  std::printf("  targets (CPU ns per op, 10000 members / 10 members):\n");
  for (std::size_t v : {1u, 2u}) {
    double r = results[v][0].cpu_ns > 0 ? results[v][2].cpu_ns / results[v][0].cpu_ns : 0;
    print_verdict(format("%s: flat within 1.5x", variants[v].name),
                  r > 0 ? format("%.2fx", r) : "-", r > 0, r <= 1.5);
  }
  std::printf("\n");
  std::fflush(stdout);
}

// ---- Command line ------------------------------------------------------------------------

void print_usage(const char* argv0) {
  std::printf(
      "usage: %s [--quick] [--duration S] [--warmup S] [--tick-ms T] [--burst-ticks K]\n"
      "          [--scenario K]...\n"
      "  --quick          smoke run: a tenth of the connections, 1 s measured, small micro runs\n"
      "  --duration S     seconds measured per TCP scenario and implementation (default 8)\n"
      "  --warmup S       seconds before measuring (default 1.5)\n"
      "  --tick-ms T      tick length for every TCP scenario (default: each its own)\n"
      "  --burst-ticks K  burst = K ticks' worth (default 1; libevent's test-ratelim uses 4)\n"
      "  --scenario K     run only K (repeatable, or comma-separated): 1, 2, 3, 4 (TCP),\n"
      "                   a (pipe throughput), b (group members); default: all\n",
      argv0);
}

bool parse_args(int argc, char** argv, options& opt) {
  std::optional<double> duration, warm;
  command_line args(argc, argv);
  while (args.next()) {
    std::string_view arg = args.option();
    if (arg == "--quick") {
      opt.quick = true;
    } else if (arg == "--duration") {
      duration = args.number(0.1, 3600);
    } else if (arg == "--warmup") {
      warm = args.number(0, 600);
    } else if (arg == "--tick-ms") {
      if (auto t = args.number(1, 60000))
        opt.tick_ms = static_cast<int>(*t);
    } else if (arg == "--burst-ticks") {
      if (auto b = args.number(1, 1000))
        opt.burst_ticks = static_cast<int>(*b);
    } else if (arg == "--scenario") {
      args.list("scenario", opt.only, [](auto& k) {
        return k == "a" || k == "b" || std::ranges::count(scenarios, k, &scenario::key) > 0;
      });
    } else {
      args.help_or_unknown(print_usage);
    }
  }
  if (opt.quick) {
    opt.duration = 1;
    opt.warm_up = 0.3;
  }
  if (duration)
    opt.duration = *duration;
  if (warm)
    opt.warm_up = *warm;
  return args.ok();
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  if (!parse_args(argc, argv, opt))
    return 2;
  raise_file_limit(2 * 1000 + 64);
  auto wanted = [&](const char* key) { return opt.only.empty() || opt.only.contains(key); };

  std::printf(
      "Rate limiting: sluice::rate_limited_stream<tcp::socket> vs libevent %s bufferevents.\n"
      "Loopback TCP; the server (one thread: one io_context / one event_base) writes to every\n"
      "connection as fast as its write limits allow: rate per tick, burst = %d tick's worth. The\n"
      "clients, in this process on a thread of their own (one epoll loop, same code for both),\n"
      "read and count. Warm-up %.1f s, then %.1f s measured; each end of the span is averaged\n"
      "over one tick. sd is the population sd of the per-connection rates; Jain = (sum x)^2 /\n"
      "(n sum x^2). CPU s: process CPU (getrusage) over the span; server, client: those\n"
      "threads' CPU; writes/s: the server's write system calls. %u CPUs, shared.\n\n",
      event_get_version(), opt.burst_ticks, opt.warm_up, opt.duration,
      std::thread::hardware_concurrency());
  std::fflush(stdout);

  for (const auto& s : scenarios)
    if (wanted(s.key))
      run_scenario(s, opt);
  if (wanted("a"))
    run_pipe_throughput(opt);
  if (wanted("b"))
    run_group_members(opt);
  return 0;
}
