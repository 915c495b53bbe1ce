// sluice-proxy: a TCP proxy that shapes every connection, alone (--rate) and all together
// (--total, a fairly shared rate_limit_group), each direction on its own. See doc/proxy.md.
//
// One io_context on one thread: the proxy moves little data per second by design, and a
// single thread keeps the connection table and the counters free of locks.
#include "proxy_log.hpp"
#include "proxy_options.hpp"

#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#ifndef SLUICE_PROXY_VERSION
#define SLUICE_PROXY_VERSION "unknown"
#endif

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

// Each direction is shaped where it is written: the client's socket writes the download,
// the upstream's the upload. A bucket pair has one tick, fitted to keep one rate exact, so
// two rates need two buckets; and each byte is counted once, by its own bucket and group.
using shaped_socket = sluice::rate_limited_stream<tcp::socket>;

// ---- Logging ---------------------------------------------------------------------------

// One write to `fd` that never waits: poll() says whether the output takes bytes now, and
// at most PIPE_BUF are written, which a pipe that polls writable takes at once. The file
// descriptor stays as it is (stdout may be shared with a shell; O_NONBLOCK would be too).
std::ptrdiff_t write_now(int fd, const char* data, std::size_t size) {
  pollfd p{fd, POLLOUT, 0};
  int ready = ::poll(&p, 1, 0);
  if (ready < 0)
    return errno == EINTR ? log_queue::would_block : log_queue::gone;
  if (ready == 0)
    return log_queue::would_block;
  if (!(p.revents & POLLOUT))
    return log_queue::gone; // POLLERR, POLLHUP, POLLNVAL: no reader, or no file
  ssize_t n = ::write(fd, data, std::min<std::size_t>(size, PIPE_BUF));
  if (n > 0)
    return n;
  // A full disk may be freed; a pipe without a reader (EPIPE: SIGPIPE is ignored) is gone.
  if (n < 0 && (errno == EAGAIN || errno == EINTR || errno == ENOSPC))
    return log_queue::would_block;
  return log_queue::gone;
}

// The log: each line to stdout at once when it takes it, else queued (up to a bound) and
// retried; never a wait. A line that finds the queue full is dropped and counted; a line
// says how many when the output takes lines again.
class logger {
public:
  static constexpr std::size_t capacity = 256 * 1024;
  static constexpr std::chrono::milliseconds retry{10};

  logger(net::io_context& ctx, log_format format)
      : format_(format), queue_(capacity), retry_timer_(ctx) {}

  void write(std::string_view event, std::string_view message,
             std::initializer_list<log_field> fields = {}) {
    queue_.push(format_line(format_, std::chrono::system_clock::now(), event, message, fields));
    flush();
  }

  log_format format() const { return format_; }

  // No more retries on the io_context (they would keep it running): finish() takes over.
  void stop() {
    stopped_ = true;
    retry_timer_.cancel();
  }

  // At exit: waits up to `patience` for the output to take what is queued. What could not be
  // written is counted on stderr, if stderr takes it.
  void finish(std::chrono::milliseconds patience) {
    stop();
    auto deadline = clock_type::now() + patience;
    for (;;) {
      flush();
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
      if (queue_.empty() || queue_.output_gone() || left.count() <= 0)
        break;
      pollfd p{STDOUT_FILENO, POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(left.count()));
    }
    std::uint64_t lost = queue_.dropped() - reported_ + queue_.lines();
    if (lost > 0) {
      std::string line = "sluice-proxy: " + std::to_string(lost) + " log lines dropped: stdout " +
                         (queue_.output_gone() ? "was closed" : "was not read") + "\n";
      write_now(STDERR_FILENO, line.data(), line.size());
    }
  }

private:
  void flush() {
    queue_.flush(
        [](const char* data, std::size_t size) { return write_now(STDOUT_FILENO, data, size); });
    if (queue_.empty() && !queue_.output_gone() && queue_.dropped() > reported_) {
      std::uint64_t n = queue_.dropped() - reported_;
      reported_ = queue_.dropped();
      queue_.push(
          format_line(format_, std::chrono::system_clock::now(), "log_dropped",
                      std::to_string(n) + " log lines dropped: stdout was not read fast enough",
                      {{"dropped", n}}));
      return flush();
    }
    if (!queue_.empty() && !queue_.output_gone() && !stopped_ && !retry_armed_) {
      retry_armed_ = true;
      retry_timer_.expires_after(retry);
      retry_timer_.async_wait([this](const boost::system::error_code& ec) {
        retry_armed_ = false;
        if (!ec)
          flush();
      });
    }
  }

  log_format format_;
  log_queue queue_;
  net::steady_timer retry_timer_;
  bool retry_armed_ = false;
  bool stopped_ = false;
  std::uint64_t reported_ = 0; // drops already reported
};

// ---- Connections -----------------------------------------------------------------------

// Bytes relayed one way: in all, and as of the last stats line (for the rate since then).
struct byte_count {
  std::uint64_t bytes = 0;
  std::uint64_t at_last_stats = 0;
};

double seconds(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}

double per_second(double bytes, double secs) {
  return secs > 0 ? bytes / secs : 0;
}

std::string rate_text(double bytes_per_second) {
  return format_bytes(bytes_per_second) + "/s";
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

enum class side { client, upstream };

const char* side_name(side s) {
  return s == side::client ? "client" : "upstream";
}

// With --delay: one direction's chunks between their read and their write. Each is due
// half the delay (give or take half the jitter) after it was read, and never before the
// one before it, so bytes keep their order. The reader goes on while chunks wait, up to
// max_bytes: the delay adds latency, not a limit of one chunk per delay.
struct delay_line {
  static constexpr std::size_t max_bytes = 1024 * 1024;

  explicit delay_line(const net::any_io_executor& ex) : wake_writer(ex), wake_reader(ex) {}

  // The connection is being reset: what waits is dropped, and both sides wake to see it.
  void break_off() {
    broken = true;
    wake_writer.cancel();
    wake_reader.cancel();
  }

  struct chunk {
    std::vector<char> data;
    clock_type::time_point due;
  };
  std::deque<chunk> chunks;
  std::size_t bytes = 0;
  clock_type::time_point last_due{};
  bool read_all = false; // the reader is done: eof, or it broke off
  bool broken = false;
  net::steady_timer wake_writer; // a chunk came, its time came, or the end
  net::steady_timer wake_reader; // room in the line, or the end
};

struct connection {
  connection(std::uint64_t id, tcp::socket socket)
      : id(id), client(std::move(socket)), upstream(client.get_executor()) {
    boost::system::error_code ec;
    peer = client.next_layer().remote_endpoint(ec);
  }

  // Ends both directions at once. `abortive`: with a reset (RST), so that each peer sees
  // the connection broken, as it is, and not a clean end of stream (a client without its own
  // framing could not tell a cut download from a whole one). Cancelling first also ends
  // waits for tokens, which closing the socket would not.
  void close(bool abortive) {
    for (delay_line* line : lines)
      if (line)
        line->break_off();
    for (shaped_socket* s : {&client, &upstream}) {
      boost::system::error_code ec;
      if (!s->next_layer().is_open())
        continue;
      s->cancel();
      if (abortive)
        s->next_layer().set_option(net::socket_base::linger(true, 0), ec);
      s->next_layer().close(ec);
    }
  }

  // The first thing that broke the connection ends it, with a reset both ways. What comes
  // after (the other direction's operations, aborted) is a consequence, not news.
  void fail(std::string why) {
    if (!end.empty())
      return;
    end = std::move(why);
    close(true);
  }

  void fail(side from, const boost::system::error_code& ec) {
    if (ec == net::error::operation_aborted || ec == net::error::bad_descriptor)
      return fail("closed"); // closed here; whoever closed it says why
    fail(std::string(side_name(from)) +
         (ec == net::error::connection_reset ? " reset" : " error: " + ec.message()));
  }

  std::uint64_t id;
  tcp::endpoint peer;
  shaped_socket client;   // writes: the download
  shaped_socket upstream; // writes: the upload
  clock_type::time_point start = clock_type::now();
  byte_count up, down;                // client -> upstream, upstream -> client
  std::string end;                    // why it ended, if not by both sides' eof
  std::array<delay_line*, 2> lines{}; // with --delay, while they relay
};

// The limits of the command line as the buckets and groups take them.
struct limits {
  explicit limits(const proxy_options& o) {
    auto make = [&](const std::optional<std::uint64_t>& rate) {
      return rate ? std::optional(write_limit(shape_bucket(*rate, o.tick, o.burst))) : std::nullopt;
    };
    rate_down = make(o.rate.down);
    rate_up = make(o.rate.up);
    total_down = make(o.total.down);
    total_up = make(o.total.up);
  }
  std::optional<sluice::token_bucket_config> rate_down, rate_up, total_down, total_up;
};

// How much a relay reads at a time. A round of the event loop runs the next step of every
// connection that is ready; with a thousand busy connections each moving 64 KiB a step, a
// round takes so long that a new connection, which needs several rounds for its first byte
// (accept, connect, request, response), waits for seconds. So while many connections are
// open, a timer measures how late it runs (about a round), and the read size halves while
// rounds are too long and grows back while they are short: the throughput that the rounds'
// length allows, no more.
class read_pace {
public:
  static constexpr std::size_t max_read = 64 * 1024;
  static constexpr std::size_t min_read = 4 * 1024;
  static constexpr std::uint64_t few = 64; // below this many connections, rounds are short
  static constexpr std::chrono::milliseconds period{10};
  static constexpr std::chrono::milliseconds too_late{100};
  static constexpr std::chrono::milliseconds on_time{40};

  std::size_t read_size() const { return size_; }

  void measured(clock_type::duration lateness) {
    if (lateness > too_late)
      size_ = std::max(min_read, size_ / 2);
    else if (lateness < on_time)
      size_ = std::min(max_read, size_ + size_ / 8);
  }
  void reset() { size_ = max_read; }

private:
  std::size_t size_ = max_read;
};

class proxy {
public:
  // How many connections one wake-up of the listener accepts at most: enough to empty a
  // backlog in a few rounds even when each round waits behind every busy connection's I/O,
  // few enough that a flood of connections does not hold up those.
  static constexpr int accept_batch = 64;

  // `upstream`: every address of --upstream, tried in turn for each connection.
  // `max_open`: connections open at once; beyond, new ones wait in the listen backlog.
  proxy(net::io_context& ctx, const proxy_options& opts, logger& log, const tcp::endpoint& listen,
        tcp::resolver::results_type upstream)
      : ctx_(ctx), opts_(opts), limits_(opts), log_(log), upstream_(std::move(upstream)),
        acceptor_(ctx, listen), stats_timer_(ctx), slot_free_(ctx) {
    if (limits_.total_down)
      group_down_.emplace(ctx_, *limits_.total_down);
    if (limits_.total_up)
      group_up_.emplace(ctx_, *limits_.total_up);
    acceptor_.non_blocking(true);
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void start(std::uint64_t max_open) {
    max_open_ = max_open;
    net::co_spawn(ctx_, accept_loop(), report_failure("accept loop"));
    if (opts_.stats)
      net::co_spawn(ctx_, stats_loop(*opts_.stats), report_failure("stats"));
  }

  // Stops accepting and resets every connection (a transfer cut short must not look whole);
  // once their coroutines have unwound, the io_context runs out of work and run() returns.
  void stop() {
    stopping_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    stats_timer_.cancel();
    slot_free_.cancel();
    for (auto& [id, c] : connections_)
      c->fail("stopped");
  }

private:
  // The completion of a detached coroutine: logs why it failed, if it did (Asio's own
  // `detached` would drop the exception unseen).
  std::function<void(std::exception_ptr)> report_failure(const char* what) {
    return [this, what](std::exception_ptr e) {
      if (!e)
        return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log_.write("error", std::string(what) + " failed: " + ex.what(),
                   {{"what", what}, {"error", ex.what()}});
      }
    };
  }

  // Waits until the listener has connections, then takes as many as it has (up to a batch,
  // and up to max_open_ open at once): one accept per wake-up would take one per round of
  // the event loop, and with a thousand busy connections a round is long.
  awaitable<void> accept_loop() {
    net::steady_timer backoff(ctx_);
    while (!stopping_) {
      if (open_ >= max_open_) { // wait in the backlog until a connection closes
        slot_free_.expires_at(clock_type::time_point::max());
        co_await slot_free_.async_wait(as_result);
        continue;
      }
      auto [ec] = co_await acceptor_.async_wait(tcp::acceptor::wait_read, as_result);
      if (stopping_)
        break;
      for (int i = 0; i < accept_batch && open_ < max_open_ && !ec; ++i) {
        tcp::socket socket(ctx_);
        acceptor_.accept(socket, ec);
        if (!ec) {
          ++open_;
          net::co_spawn(ctx_, serve(++last_id_, std::move(socket)), report_failure("connection"));
          if (open_ > read_pace::few && !pacing_) {
            pacing_ = true;
            net::co_spawn(ctx_, pace_loop(), report_failure("pace"));
          }
        }
      }
      if (!ec || ec == net::error::would_block || ec == net::error::try_again)
        continue;
      if (ec == net::error::operation_aborted || ec == net::error::bad_descriptor)
        break;
      // Out of descriptors (EMFILE, ENFILE), say: accepting again at once would spin. Said
      // once a second at most, with the failures since.
      ++accept_failures_;
      auto now = clock_type::now();
      if (now - last_accept_report_ >= std::chrono::seconds(1)) {
        last_accept_report_ = now;
        log_.write("accept_failed",
                   "accept: " + ec.message() + " (" + std::to_string(accept_failures_) +
                       " failure" + (accept_failures_ == 1 ? "" : "s") + "; retrying every 100ms)",
                   {{"error", ec.message()}, {"failures", accept_failures_}});
        accept_failures_ = 0;
      }
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(as_result);
    }
  }

  // Measures the rounds while many connections are open (see read_pace).
  awaitable<void> pace_loop() {
    net::steady_timer timer(ctx_);
    while (!stopping_ && open_ > read_pace::few) {
      auto due = clock_type::now() + read_pace::period;
      timer.expires_at(due);
      co_await timer.async_wait(as_result);
      pace_.measured(clock_type::now() - due);
    }
    pace_.reset();
    pacing_ = false;
  }

  // Connects to the first of the upstream's addresses that accepts. A socket that cannot be
  // opened (out of descriptors) is that error, not the next address's.
  awaitable<boost::system::error_code> connect_upstream(connection& c) {
    boost::system::error_code ec = net::error::host_not_found;
    auto& socket = c.upstream.next_layer();
    for (const auto& entry : upstream_) {
      boost::system::error_code ignored;
      socket.close(ignored);
      socket.open(entry.endpoint().protocol(), ec);
      if (ec)
        break;
      std::tie(ec) = co_await socket.async_connect(entry.endpoint(), as_result);
      if (!ec || !c.end.empty())
        break;
    }
    co_return ec;
  }

  awaitable<void> serve(std::uint64_t id, tcp::socket socket) {
    struct unregister { // however this frame ends, the table must not keep its address
      proxy& p;
      std::uint64_t id;
      ~unregister() {
        p.connections_.erase(id);
        --p.open_;
        p.slot_free_.cancel();
      }
    } registration{*this, id};
    connection c(id, std::move(socket)); // lives in this frame: its address is stable
    if (stopping_)                       // accepted just before the stop: stop() could not see it
      co_return;
    if (limits_.rate_down)
      c.client.set_rate_limit(*limits_.rate_down);
    if (limits_.rate_up)
      c.upstream.set_rate_limit(*limits_.rate_up);
    if (group_down_)
      c.client.join(*group_down_);
    if (group_up_)
      c.upstream.join(*group_up_);
    connections_[id] = &c;

    if (auto ec = co_await connect_upstream(c)) {
      if (c.end.empty()) {
        log_.write("upstream_failed",
                   "#" + std::to_string(id) + " " + endpoint_text(c.peer) + ": upstream " +
                       opts_.upstream.text() + ": " + ec.message(),
                   {{"id", id},
                    {"peer", endpoint_text(c.peer)},
                    {"upstream", opts_.upstream.text()},
                    {"error", ec.message()}});
        c.fail("upstream unreachable"); // the client sees what it would have without us
      }
    } else {
      // Both directions at once, each to its own end; a connection is over when both are.
      if (opts_.delay.count() > 0)
        co_await (relay_delayed(c, c.client, c.upstream, side::client, c.up, up_) &&
                  relay_delayed(c, c.upstream, c.client, side::upstream, c.down, down_));
      else
        co_await (relay(c, c.client, c.upstream, side::client, c.up, up_) &&
                  relay(c, c.upstream, c.client, side::upstream, c.down, down_));
    }
    c.close(false); // both ends said eof, or it is closed already

    double secs = seconds(clock_type::now() - c.start);
    auto up = static_cast<double>(c.up.bytes), down = static_cast<double>(c.down.bytes);
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.2f s", secs);
    std::string message = "closed #" + std::to_string(id) + " " + endpoint_text(c.peer) + ": up " +
                          format_bytes(up) + ", down " + format_bytes(down) + " in " + duration +
                          " (up " + rate_text(per_second(up, secs)) + ", down " +
                          rate_text(per_second(down, secs)) + ")";
    if (!c.end.empty())
      message += ": " + c.end;
    log_.write("closed", message,
               {{"id", id},
                {"peer", endpoint_text(c.peer)},
                {"up_bytes", c.up.bytes},
                {"down_bytes", c.down.bytes},
                {"seconds", secs},
                {"end", c.end.empty() ? "eof" : c.end}});
  }

  // Copies `from` to `to` until `from` ends. At its eof only `to`'s sending side is shut:
  // the other direction goes on (a client may half-close after its request and still read
  // the response), and `to`'s peer sees the end exactly where `from`'s peer put it. A reset
  // or an error on either side resets both.
  awaitable<void> relay(connection& c, shaped_socket& from, shaped_socket& to, side from_side,
                        byte_count& mine, byte_count& all) {
    const side to_side = from_side == side::client ? side::upstream : side::client;
    std::vector<char> buffer(read_pace::max_read); // reads wait while it drains: backpressure
    for (;;) {
      auto [ec, n] =
          co_await from.async_read_some(net::buffer(buffer.data(), pace_.read_size()), as_result);
      if (ec == net::error::eof) {
        boost::system::error_code ignored; // fails only if the connection is already gone
        to.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
      if (ec)
        co_return c.fail(from_side, ec);
      // write_some, not async_write: each piece is counted as it goes, so that the stats
      // see a steady rate and not one 64 KiB step every 64 KiB's worth of time.
      for (std::size_t done = 0; done < n;) {
        auto [wec, written] =
            co_await to.async_write_some(net::buffer(buffer.data() + done, n - done), as_result);
        done += written;
        mine.bytes += written;
        all.bytes += written;
        if (wec)
          co_return c.fail(to_side, wec);
      }
    }
  }

  // relay() with --delay: a reader that puts what it reads on a delay line, and a writer
  // that writes each chunk when it is due.
  awaitable<void> relay_delayed(connection& c, shaped_socket& from, shaped_socket& to,
                                side from_side, byte_count& mine, byte_count& all) {
    delay_line line(ctx_.get_executor());
    struct registration { // close() reaches the line while it lives, and not after
      delay_line*& slot;
      ~registration() { slot = nullptr; }
    } in_connection{c.lines[from_side == side::client ? 0 : 1] = &line};
    co_await (read_into(c, from, from_side, line) &&
              write_from(c, to, from_side == side::client ? side::upstream : side::client, line,
                         mine, all));
  }

  awaitable<void> read_into(connection& c, shaped_socket& from, side from_side, delay_line& line) {
    std::vector<char> buffer(read_pace::max_read);
    while (!line.broken) {
      if (line.bytes >= delay_line::max_bytes) {
        line.wake_reader.expires_at(clock_type::time_point::max());
        co_await line.wake_reader.async_wait(as_result);
        continue;
      }
      auto [ec, n] =
          co_await from.async_read_some(net::buffer(buffer.data(), pace_.read_size()), as_result);
      if (ec) {
        if (ec != net::error::eof)
          c.fail(from_side, ec);
        break;
      }
      auto due = std::max(line.last_due, clock_type::now() + one_way_delay());
      line.last_due = due;
      line.chunks.push_back({std::vector<char>(buffer.begin(), buffer.begin() + n), due});
      line.bytes += n;
      line.wake_writer.cancel();
    }
    line.read_all = true;
    line.wake_writer.cancel();
  }

  awaitable<void> write_from(connection& c, shaped_socket& to, side to_side, delay_line& line,
                             byte_count& mine, byte_count& all) {
    while (!line.broken) {
      if (line.chunks.empty() && line.read_all) { // the reader's eof: pass it on
        boost::system::error_code ignored;
        to.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
      if (line.chunks.empty() || clock_type::now() < line.chunks.front().due) {
        line.wake_writer.expires_at(line.chunks.empty() ? clock_type::time_point::max()
                                                        : line.chunks.front().due);
        co_await line.wake_writer.async_wait(as_result);
        continue;
      }
      auto& chunk = line.chunks.front().data;
      for (std::size_t done = 0; done < chunk.size();) {
        auto [wec, written] = co_await to.async_write_some(
            net::buffer(chunk.data() + done, chunk.size() - done), as_result);
        done += written;
        mine.bytes += written;
        all.bytes += written;
        if (wec)
          co_return c.fail(to_side, wec);
        if (line.broken)
          co_return;
      }
      line.bytes -= chunk.size();
      line.chunks.pop_front();
      line.wake_reader.cancel();
    }
  }

  // Half of --delay, give or take half of --jitter, at random.
  clock_type::duration one_way_delay() {
    auto half_jitter = opts_.jitter.count() / 2;
    std::uniform_int_distribution<std::int64_t> spread(-half_jitter, half_jitter);
    return std::chrono::nanoseconds(opts_.delay.count() / 2 + (half_jitter ? spread(random_) : 0));
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
        double rate = per_second(static_cast<double>(b.bytes - b.at_last_stats), secs);
        b.at_last_stats = b.bytes;
        return rate;
      };
      std::string line = "stats: " + std::to_string(connections_.size()) + " connection" +
                         (connections_.size() == 1 ? "" : "s");
      std::string each = "[";
      for (auto& [id, c] : connections_) {
        double down = since_last(c->down), up = since_last(c->up);
        line += " | #" + std::to_string(id) + " down " + rate_text(down) + " up " + rate_text(up);
        if (each.size() > 1)
          each += ',';
        each += "{\"id\":" + std::to_string(id) + ",\"down\":" + log_field("", down).json +
                ",\"up\":" + log_field("", up).json + "}";
      }
      each += ']';
      double down = since_last(down_), up = since_last(up_);
      line += " | total down " + rate_text(down) + " up " + rate_text(up);
      if (opts_.total.any())
        line += " (limit " + limit_text(opts_.total) + ")";
      log_.write("stats", line,
                 {{"connections", static_cast<std::uint64_t>(connections_.size())},
                  {"down", down},
                  {"up", up},
                  log_field::raw("each", each)});
    }
  }

public:
  // "100.0 KiB/s", or "down 1.0 MiB/s, up unlimited" when the directions differ.
  static std::string limit_text(const direction_rates& r) {
    auto one = [](const std::optional<std::uint64_t>& rate) {
      return rate ? rate_text(static_cast<double>(*rate)) : std::string("unlimited");
    };
    if (r.down == r.up)
      return one(r.down);
    return "down " + one(r.down) + ", up " + one(r.up);
  }

private:
  net::io_context& ctx_;
  proxy_options opts_;
  limits limits_;
  logger& log_;
  tcp::resolver::results_type upstream_;
  tcp::acceptor acceptor_;
  net::steady_timer stats_timer_;
  net::steady_timer slot_free_; // the accept loop waits on it while max_open_ are open
  std::optional<sluice::rate_limit_group> group_down_, group_up_; // --total
  std::map<std::uint64_t, connection*> connections_; // open ones, by id, for stats and stop
  read_pace pace_;
  std::minstd_rand random_{std::random_device{}()}; // --jitter
  bool pacing_ = false;                             // pace_loop() runs
  std::uint64_t open_ = 0; // accepted and not yet ended (some not in the table yet)
  std::uint64_t max_open_ = 0;
  std::uint64_t last_id_ = 0;
  std::uint64_t accept_failures_ = 0;
  clock_type::time_point last_accept_report_{};
  byte_count up_, down_; // all connections, closed ones too
  bool stopping_ = false;
};

// A limit for the JSON log: bytes (per second), or null for none.
log_field number_or_null(std::string_view key, const std::optional<std::uint64_t>& value) {
  return value ? log_field(key, *value) : log_field::raw(key, "null");
}

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

} // namespace

int main(int argc, char** argv) {
  // A reader of stdout that goes away (`sluice-proxy ... | head`, a log shipper restarting)
  // must cost log lines, not the proxy and its connections: writes fail with EPIPE instead.
  std::signal(SIGPIPE, SIG_IGN);

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
    if (opts.version) {
      std::printf("sluice-proxy %s\n", SLUICE_PROXY_VERSION);
      return 0;
    }
    listen = resolve(ctx, "--listen", opts.listen).begin()->endpoint();
    upstream = resolve(ctx, "--upstream", opts.upstream);
  } catch (const option_error& e) {
    std::fprintf(stderr, "sluice-proxy: %s\n\n%s", e.what(), usage().c_str());
    return 2;
  }

  logger log(ctx, opts.log);
  std::optional<proxy> server;
  try {
    server.emplace(ctx, opts, log, listen, upstream);
  } catch (const boost::system::system_error& e) { // the address is taken, say
    std::fprintf(stderr, "sluice-proxy: cannot listen on %s: %s\n", endpoint_text(listen).c_str(),
                 e.code().message().c_str());
    return 1;
  }

  // The first SIGINT or SIGTERM stops cleanly; removing them then gives the signals their
  // default action back, so that a second one ends a proxy that would not stop. SIGHUP
  // (a closed terminal, or a habit of asking daemons to reload) is logged and ignored: there
  // is nothing to reload, and dying of it silently was worse.
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
  std::string upstream_given = upstream_text(opts.upstream, upstream);
  std::string at_most = std::to_string(max_open) + " connection" + (max_open == 1 ? "" : "s");
  if (!opts.max_connections || *opts.max_connections > fit)
    at_most += " (file descriptors)";
  log.write("listening",
            "listening on " + endpoint_text(server->local_endpoint()) + ", upstream " +
                upstream_given + ", rate " + proxy::limit_text(opts.rate) +
                " per connection, total " + proxy::limit_text(opts.total) + ", tick " +
                format_duration(opts.tick) +
                (opts.burst ? ", burst " + format_bytes(static_cast<double>(*opts.burst)) : "") +
                (opts.delay.count() > 0 ? ", delay " + format_duration(opts.delay) : "") +
                (opts.jitter.count() > 0 ? " +- " + format_duration(opts.jitter) : "") +
                ", at most " + at_most,
            {{"listen", endpoint_text(server->local_endpoint())},
             {"upstream", upstream_given},
             number_or_null("rate_down", opts.rate.down),
             number_or_null("rate_up", opts.rate.up),
             number_or_null("total_down", opts.total.down),
             number_or_null("total_up", opts.total.up),
             number_or_null("burst", opts.burst),
             {"tick_ns", static_cast<std::uint64_t>(opts.tick.count())},
             {"delay_ns", static_cast<std::uint64_t>(opts.delay.count())},
             {"jitter_ns", static_cast<std::uint64_t>(opts.jitter.count())},
             {"max_connections", max_open},
             {"version", SLUICE_PROXY_VERSION}});
  server->start(max_open);
  ctx.run();
  log.finish(std::chrono::seconds(1));
  return 0;
}
