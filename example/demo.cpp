// The sluice demo: one upstream, six clients downloading from it at once over loopback TCP
// and in-process pipes, each shaped by sluice in its own way, drawn live on the terminal.
//
//   shared-1, shared-2 (TCP) and shared-3 (pipe) are members of a rate_limit_group with
//     1 MiB/s in all, which they share fairly: about a third each;
//   solo-1 (TCP) and solo-2 (pipe) have limits of their own: 256 and 512 KiB/s;
//   zlib (TCP) is sent deflated and inflated by the client, with 128 KiB/s allowed on the
//     wire: the compressed bytes are shaped, so its text arrives several times faster.
//
// The shaping is the upstream's: it wraps each connection it serves in a
// rate_limited_stream, whatever the transport, and serves all of them with the same
// coroutine. Every client checks every byte it receives. The summary at the end compares
// configured and achieved rates and measures how evenly the group was shared.
// One process, one thread, one io_context, coroutines; no network beyond loopback.
//
//   sluice_demo           the scene, about 12 s
//   sluice_demo --quick   the same scene with a fifth of the bytes, about 2.5 s (CTest runs it)
#include <sluice/filtered_stream.hpp>
#include <sluice/filters/zlib.hpp>
#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;

// ---- The scene ------------------------------------------------------------------------

enum class transport { tcp, pipe, tcp_zlib };

struct client_spec {
  const char* name;
  transport via;
  bool in_group;           // shares the group's limit with the other members
  std::uint64_t own_limit; // bytes per second the upstream sends it at most; 0: none
  double mib;              // size of the download (of text, before compression)
};

constexpr std::uint64_t group_limit = 1 * MiB; // per second, all members together

// Sizes chosen so that every download takes about 12 s at its rate (zlib shrinks the text
// about 3.5 times, so its 5.25 MiB are about 1.5 MiB on the wire).
constexpr client_spec cast[] = {
    {"shared-1", transport::tcp, true, 0, 4.0},
    {"shared-2", transport::tcp, true, 0, 4.0},
    {"shared-3", transport::pipe, true, 0, 4.0},
    {"solo-1", transport::tcp, false, 256 * KiB, 3.0},
    {"solo-2", transport::pipe, false, 512 * KiB, 6.0},
    {"zlib", transport::tcp_zlib, false, 128 * KiB, 5.25},
};

/// A write limit of `bytes_per_second`: per_second refills every 10 ms or so and starts
/// with one refill, so a download never gets ahead of its rate by more than that.
sluice::token_bucket_config write_limit(std::uint64_t bytes_per_second) {
  return sluice::token_bucket_config::per_second(sluice::unlimited, bytes_per_second);
}

/// `size` bytes of text made of common words, different for each seed: it compresses like
/// prose (zlib makes it about 3.5 times smaller), and the client can check it byte by byte.
std::string make_text(std::size_t size, unsigned seed) {
  static constexpr std::string_view words[] = {
      "the",   "of",   "and",   "to",   "in",   "is",    "that",  "for",  "it",   "as",    "with",
      "was",   "on",   "be",    "by",   "at",   "this",  "from",  "or",   "an",   "are",   "not",
      "but",   "have", "which", "one",  "all",  "were",  "we",    "when", "your", "can",   "said",
      "there", "use",  "each",  "she",  "do",   "how",   "their", "if",   "will", "up",    "other",
      "about", "out",  "many",  "then", "them", "these", "so",    "some", "her",  "would", "make",
      "like",  "him",  "into",  "time", "has",  "look",  "two",   "more", "water"};
  std::minstd_rand random(seed);
  std::string text;
  text.reserve(size + 80);
  std::size_t line_start = 0;
  while (text.size() < size) {
    text += words[random() % std::size(words)];
    if (text.size() - line_start > 70) {
      text += '\n';
      line_start = text.size();
    } else {
      text += ' ';
    }
  }
  text.resize(size);
  return text;
}

/// One client's download, as the client sees it.
struct download {
  client_spec spec;
  std::string content;      // what the upstream sends; the client checks each byte against it
  std::size_t received = 0; // bytes received and checked
  const sluice::rate_limit_group* wire = nullptr; // counts compressed bytes (zlib only)
  std::optional<clock_type::duration> took;       // set once it has ended
  std::string failure;                            // why it is not byte-exact, if it is not

  struct sample {
    clock_type::time_point when;
    std::uint64_t received, wire;
  };
  std::deque<sample> recent; // the last second or so, for the current rate

  download(const client_spec& c, std::string text) : spec(c), content(std::move(text)) {}

  std::uint64_t wire_bytes() const { return wire ? wire->totals().written : received; }
  bool exact() const { return took && failure.empty() && received == content.size(); }
};

// The scene is made just before the downloads start: an idle bucket fills up to its burst,
// and a group made earlier would start ahead of its rate.
struct scene {
  scene(net::io_context& io, std::vector<download> all) : ctx(io), downloads(std::move(all)) {}

  net::io_context& ctx;
  std::vector<download> downloads;
  sluice::rate_limit_group shared{ctx, write_limit(group_limit)};
  sluice::rate_limit_group wire{ctx, {}}; // no limit: it only counts what its member sends
  clock_type::time_point start = clock_type::now();
  std::size_t running = 0;
  std::vector<double> group_bytes_at_first_end; // the members' bytes when the first ends

  double seconds() const {
    return std::chrono::duration<double>(clock_type::now() - start).count();
  }

  void ended(download& d) {
    d.took = clock_type::now() - start;
    --running;
    // The group's fairness is measured while all its members were downloading: from the
    // start until the first of them ends.
    if (d.spec.in_group && group_bytes_at_first_end.empty())
      for (const download& m : downloads)
        if (m.spec.in_group)
          group_bytes_at_first_end.push_back(static_cast<double>(m.received));
  }
};

// ---- The upstream and the clients -----------------------------------------------------

/// The upstream: sends `text` and ends the stream. Written once for any stream: a shaped
/// TCP socket, a shaped pipe end, or a zlib-compressing stream over a shaped socket.
/// An error (the client gone, say) ends this connection only; the client reports it.
template <class Stream>
awaitable<void> serve(Stream stream, const std::string& text) {
  co_await net::async_write(stream, net::buffer(text), use_awaitable);
  if constexpr (requires { stream.async_flush(sluice::flush_mode::finished, use_awaitable); })
    co_await stream.async_flush(sluice::flush_mode::finished, use_awaitable); // zlib's trailer
  stream.lowest_layer().shutdown(net::socket_base::shutdown_send); // the client reads eof
}

/// A client: reads until the upstream ends the stream, checking each byte on arrival.
template <class Stream>
awaitable<void> fetch(Stream stream, download& d, scene& s) {
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    auto [ec, n] =
        co_await stream.async_read_some(net::buffer(buffer), net::as_tuple(use_awaitable));
    if (n > d.content.size() - d.received ||
        std::memcmp(buffer.data(), d.content.data() + d.received, n) != 0) {
      d.failure = "wrong bytes after offset " + std::to_string(d.received);
      break;
    }
    d.received += n;
    if (ec == net::error::eof) {
      if (d.received != d.content.size())
        d.failure = "the stream ended early";
      break;
    }
    if (ec) {
      d.failure = ec.message();
      break;
    }
  }
  s.ended(d);
}

/// A TCP connection on loopback: the client's socket and the upstream's.
std::pair<tcp::socket, tcp::socket> connect(tcp::acceptor& upstream) {
  tcp::socket client(upstream.get_executor());
  client.connect(upstream.local_endpoint());
  return {std::move(client), upstream.accept()};
}

/// The upstream's shaping of one connection: its own limit, its place in the group.
template <class Stream>
void shape(sluice::rate_limited_stream<Stream>& connection, const download& d, scene& s) {
  if (d.spec.own_limit != 0)
    connection.set_rate_limit(write_limit(d.spec.own_limit));
  if (d.spec.in_group)
    connection.join(s.shared);
}

/// Connects the client `d` to the upstream and starts both sides.
void start(download& d, scene& s, tcp::acceptor& upstream) {
  auto rethrow = [](std::exception_ptr e) {
    if (e)
      std::rethrow_exception(e);
  };
  auto ignore = [](std::exception_ptr) {}; // see serve()
  switch (d.spec.via) {
  case transport::tcp: {
    auto [client, server] = connect(upstream);
    sluice::rate_limited_stream<tcp::socket> shaped(std::move(server));
    shape(shaped, d, s);
    net::co_spawn(s.ctx, serve(std::move(shaped), d.content), ignore);
    net::co_spawn(s.ctx, fetch(std::move(client), d, s), rethrow);
    break;
  }
  case transport::pipe: {
    auto [client, server] = sluice::make_pipe(s.ctx); // no socket: both ends in this process
    sluice::rate_limited_stream<sluice::pipe> shaped(std::move(server));
    shape(shaped, d, s);
    net::co_spawn(s.ctx, serve(std::move(shaped), d.content), ignore);
    net::co_spawn(s.ctx, fetch(std::move(client), d, s), rethrow);
    break;
  }
  case transport::tcp_zlib: {
    // The limit sits under the deflate filter, so it counts compressed bytes; the counting
    // group beside it shows how many went out.
    auto [client, server] = connect(upstream);
    sluice::filtered_stream<sluice::rate_limited_stream<tcp::socket>, sluice::pass_through_filter,
                            sluice::zlib::deflate_filter>
        deflating(std::move(server));
    shape(deflating.next_layer(), d, s);
    deflating.next_layer().join(s.wire);
    d.wire = &s.wire;
    sluice::filtered_stream<tcp::socket, sluice::zlib::inflate_filter, sluice::pass_through_filter>
        inflating(std::move(client));
    net::co_spawn(s.ctx, serve(std::move(deflating), d.content), ignore);
    net::co_spawn(s.ctx, fetch(std::move(inflating), d, s), rethrow);
    break;
  }
  }
}

// ---- What the terminal shows ----------------------------------------------------------

[[gnu::format(printf, 1, 2)]] std::string format(const char* fmt, ...) {
  char text[256];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(text, sizeof text, fmt, args);
  va_end(args);
  return text;
}

std::string rate_text(double bytes_per_second) {
  if (bytes_per_second >= 1000.0 * KiB)
    return format("%.2f MiB/s", bytes_per_second / MiB);
  return format("%.0f KiB/s", bytes_per_second / KiB);
}

std::string mib_text(double bytes) {
  return format("%.2f", bytes / MiB);
}

const char* transport_name(transport t) {
  switch (t) {
  case transport::tcp:
    return "tcp";
  case transport::pipe:
    return "pipe";
  case transport::tcp_zlib:
    return "tcp+zlib";
  }
  return "";
}

std::string limit_text(const client_spec& c) {
  if (c.in_group)
    return "shared " + rate_text(group_limit);
  return (c.via == transport::tcp_zlib ? "wire " : "own ") + rate_text(c.own_limit);
}

/// Remembers the counts now, and forgets those older than a second.
void take_sample(download& d) {
  const auto now = clock_type::now();
  d.recent.push_back({now, d.received, d.wire_bytes()});
  while (d.recent.size() > 2 && now - d.recent[1].when >= 1s)
    d.recent.pop_front();
}

/// Bytes per second over the last second or so, of text or of wire bytes.
double current_rate(const download& d, bool wire = false) {
  if (d.recent.size() < 2)
    return 0;
  const auto& [t0, text0, wire0] = d.recent.front();
  const auto& [t1, text1, wire1] = d.recent.back();
  const double bytes = static_cast<double>(wire ? wire1 - wire0 : text1 - text0);
  return bytes / std::chrono::duration<double>(t1 - t0).count();
}

double seconds_taken(const download& d) {
  return std::chrono::duration<double>(*d.took).count();
}

/// The table: a row per client, then the group's total and the zlib client's wire bytes.
std::vector<std::string> table(const scene& s) {
  std::vector<std::string> lines;
  lines.push_back(format("sluice demo: one upstream, %zu clients downloading at once  %5.1f s",
                         s.downloads.size(), s.seconds()));
  lines.push_back(format("%-8s %-8s %-16s %-13s %10s  %s", "client", "via", "progress", "received",
                         "rate now", "limit"));
  for (const download& d : s.downloads) {
    constexpr int width = 14;
    const double done = static_cast<double>(d.received) / static_cast<double>(d.content.size());
    const int filled = static_cast<int>(done * width);
    const std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
    const std::string rate = !d.failure.empty()    ? "FAILED"
                             : d.took              ? "done"
                             : d.recent.size() < 2 ? "-"
                                                   : rate_text(current_rate(d));
    lines.push_back(format("%-8s %-8s %s %4s/%s MiB %10s  %s", d.spec.name,
                           transport_name(d.spec.via), bar.c_str(),
                           mib_text(static_cast<double>(d.received)).c_str(),
                           mib_text(static_cast<double>(d.content.size())).c_str(), rate.c_str(),
                           limit_text(d.spec).c_str()));
  }

  // Once every member has ended, the group's average over its whole run; until then, its
  // rate over the last second.
  double group_now = 0, group_seconds = 0;
  bool group_done = true;
  for (const download& d : s.downloads)
    if (d.spec.in_group) {
      group_now += current_rate(d);
      group_done = group_done && d.took;
      if (d.took)
        group_seconds = std::max(group_seconds, seconds_taken(d));
    }
  if (group_done)
    lines.push_back(
        format("group \"shared\": done, %s on average, limit %s",
               rate_text(static_cast<double>(s.shared.totals().written) / group_seconds).c_str(),
               rate_text(group_limit).c_str()));
  else
    lines.push_back(format("group \"shared\": %s now, limit %s", rate_text(group_now).c_str(),
                           rate_text(group_limit).c_str()));

  for (const download& d : s.downloads)
    if (d.wire && d.wire_bytes() > 0) {
      const double wire = static_cast<double>(d.wire_bytes());
      const double ratio = wire > 0 ? static_cast<double>(d.received) / wire : 0;
      if (d.took)
        lines.push_back(format(
            "%s: done, %s MiB on the wire, %s on average; the text is %.1fx that", d.spec.name,
            mib_text(wire).c_str(), rate_text(wire / seconds_taken(d)).c_str(), ratio));
      else
        lines.push_back(format("%s: %s MiB on the wire so far, %s now; the text is %.1fx that",
                               d.spec.name, mib_text(wire).c_str(),
                               rate_text(current_rate(d, true)).c_str(), ratio));
    }
  return lines;
}

/// Prints the table. On a terminal, each line ends by clearing what is left of the line
/// before (`\x1b[K`), and `over_previous` first moves the cursor back up to the top of the
/// table drawn last (`\x1b[<n>A`), so that the table is redrawn in place.
void draw(const std::vector<std::string>& lines, bool live, bool over_previous) {
  if (live && over_previous)
    std::printf("\x1b[%zuA", lines.size());
  for (const std::string& line : lines)
    std::printf("%s%s\n", line.c_str(), live ? "\x1b[K" : "");
  std::fflush(stdout);
}

/// Without a terminal (CTest, CI, a pipe): one plain line per second, readable in a log.
void print_progress(const scene& s) {
  std::string line = format("%5.1f s ", s.seconds());
  for (const download& d : s.downloads)
    line += format(" %s %3.0f%% %s", d.spec.name,
                   100.0 * static_cast<double>(d.received) / static_cast<double>(d.content.size()),
                   d.took ? "done" : rate_text(current_rate(d)).c_str());
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

/// Samples the downloads five times a second and shows them, until all have ended (or the
/// deadline passes: then the scene stops and the unfinished downloads count as failed).
/// On a terminal the table is redrawn each time; elsewhere it is printed at the start and
/// the end, with a progress line every second in between.
awaitable<void> show(scene& s, bool live, clock_type::duration deadline) {
  for (download& d : s.downloads)
    take_sample(d);
  draw(table(s), live, false);
  net::steady_timer timer(s.ctx);
  for (int frame = 1; s.running > 0; ++frame) {
    timer.expires_at(s.start + frame * 200ms);
    co_await timer.async_wait(use_awaitable);
    for (download& d : s.downloads)
      take_sample(d);
    if (live)
      draw(table(s), live, true);
    else if (frame % 5 == 0)
      print_progress(s);
    if (clock_type::now() - s.start > deadline) {
      s.ctx.stop();
      co_return;
    }
  }
  draw(table(s), live, live);
}

/// Jain's fairness index of the amounts x: (sum x)^2 / (n * sum x^2), 1 when all are equal,
/// 1/n when one has everything.
double jain_index(const std::vector<double>& x) {
  double sum = 0, squares = 0;
  for (double v : x) {
    sum += v;
    squares += v * v;
  }
  return squares > 0 ? sum * sum / (static_cast<double>(x.size()) * squares) : 1.0;
}

/// Configured against achieved rates; returns whether every download is byte-exact.
bool print_summary(scene& s) {
  auto seconds = [](const download& d) { return std::chrono::duration<double>(*d.took).count(); };
  auto row = [](const std::string& what, double configured, double achieved) {
    std::printf("%-36s %11s %11s %7.2f\n", what.c_str(), rate_text(configured).c_str(),
                rate_text(achieved).c_str(), achieved / configured);
  };

  bool all_exact = true;
  std::uint64_t total = 0;
  for (download& d : s.downloads) {
    if (!d.took)
      d.failure = "not finished in time";
    all_exact = all_exact && d.exact();
    total += d.received;
  }
  std::printf("\nSummary after %.1f s, configured against achieved rates:\n", s.seconds());
  std::printf("%-36s %11s %11s %7s\n", "", "configured", "achieved", "ratio");

  // The group: its total over the time until its last member ended, then each member
  // against its fair share.
  std::vector<const download*> members;
  double group_seconds = 0;
  for (const download& d : s.downloads)
    if (d.spec.in_group && d.took) {
      members.push_back(&d);
      group_seconds = std::max(group_seconds, seconds(d));
    }
  if (!members.empty()) {
    const double fair_share =
        static_cast<double>(group_limit) / static_cast<double>(members.size());
    row(format("group \"shared\" (%zu members)", members.size()), group_limit,
        static_cast<double>(s.shared.totals().written) / group_seconds);
    for (const download* d : members)
      row(format("  %-9s %-8s fair share", d->spec.name, transport_name(d->spec.via)), fair_share,
          static_cast<double>(d->received) / seconds(*d));
    std::printf("  fairness while all %zu downloaded: Jain's index %.4f (1 = equal shares)\n",
                members.size(), jain_index(s.group_bytes_at_first_end));
  }

  for (const download& d : s.downloads) {
    if (d.spec.in_group || !d.took)
      continue;
    const double text_rate = static_cast<double>(d.received) / seconds(d);
    if (!d.wire) {
      row(format("%-11s %-8s own limit", d.spec.name, transport_name(d.spec.via)),
          static_cast<double>(d.spec.own_limit), text_rate);
      continue;
    }
    const double wire_bytes = static_cast<double>(d.wire_bytes());
    row(format("%-11s %-8s wire limit", d.spec.name, transport_name(d.spec.via)),
        static_cast<double>(d.spec.own_limit), wire_bytes / seconds(d));
    std::printf("%-36s %11s %11s  text, %.1fx the wire\n", "", "", rate_text(text_rate).c_str(),
                static_cast<double>(d.received) / wire_bytes);
  }

  std::printf("\n");
  for (const download& d : s.downloads)
    if (!d.exact())
      std::printf("%s FAILED: %s\n", d.spec.name, d.failure.c_str());
  if (all_exact)
    std::printf("All %zu downloads byte-exact: %s MiB, every byte checked by its client.\n",
                s.downloads.size(), mib_text(static_cast<double>(total)).c_str());
  return all_exact;
}

/// Live redrawing needs a terminal at least as wide as the table.
bool on_a_wide_terminal() {
  const char* term = std::getenv("TERM");
  winsize size{};
  return isatty(STDOUT_FILENO) && term && std::string_view(term) != "dumb" &&
         ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col >= 80;
}

int main(int argc, char** argv) {
  const bool quick = argc == 2 && std::string_view(argv[1]) == "--quick";
  if (argc > 2 || (argc == 2 && !quick)) {
    std::fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
    return 2;
  }
  const double scale = quick ? 0.2 : 1.0; // --quick: a fifth of the bytes at the same rates

  std::vector<download> downloads;
  unsigned seed = 1;
  for (const client_spec& c : cast)
    downloads.emplace_back(c, make_text(static_cast<std::size_t>(c.mib * scale * MiB), seed++));

  net::io_context ctx;
  tcp::acceptor upstream(ctx, {net::ip::address_v4::loopback(), 0});
  scene s(ctx, std::move(downloads));
  s.running = s.downloads.size();
  for (download& d : s.downloads)
    start(d, s, upstream);
  net::co_spawn(ctx, show(s, on_a_wide_terminal(), quick ? 30s : 60s), [](std::exception_ptr e) {
    if (e)
      std::rethrow_exception(e);
  });
  ctx.run();

  return print_summary(s) ? 0 : 1;
}
