// A proxied connection and the relay of its bytes, each direction shaped where it is
// written: the client's socket writes the download, the upstream's the upload.
#ifndef SLUICE_TOOL_PROXY_RELAY_HPP
#define SLUICE_TOOL_PROXY_RELAY_HPP

#include "proxy_routes.hpp"

#include <sluice/rate_limited_stream.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace sluice::proxy {

using clock_type = std::chrono::steady_clock;

/// Two adapters, because a stream is in one group at most and a connection may be in two:
/// the outer one has the connection's own bucket (--rate) and its client address's group
/// (--per-ip), the inner one the proxy's group (--total). An operation waits for the outer
/// limits with nothing taken from the inner, so a connection held back by its own address
/// holds none of the tokens that all share. A bucket pair has one tick, fitted to keep one
/// rate exact, so two rates need two buckets: each socket shapes its writes only, and each
/// byte is counted once, by its own bucket and groups.
using shaped_stream = rate_limited_stream<rate_limited_stream<stream_socket>>;

inline stream_socket& socket_of(shaped_stream& s) {
  return s.next_layer().next_layer();
}

/// Bytes relayed one way: in all, and as of the last stats line (for the rate since then).
struct byte_count {
  std::uint64_t bytes = 0;
  std::uint64_t at_last_stats = 0;
};

/// What is counted of a route, and of the whole proxy: bytes each way, time writes spent
/// waiting for tokens each way, connections.
struct traffic {
  byte_count up, down;                         // client -> upstream, upstream -> client
  clock_type::duration wait_up{}, wait_down{}; // writes that found no tokens, to completion
  std::uint64_t accepted = 0;
  std::uint64_t open = 0;
  std::uint64_t refused = 0; // --per-ip-max-connections
};

enum class side { client, upstream };
const char* side_name(side s);

/// With --delay: one direction's chunks between their read and their write. Each is due
/// half the delay (give or take half the jitter) after it was read, and never before the
/// one before it, so bytes keep their order. The reader goes on while chunks wait, up to
/// max_bytes: the delay adds latency, not a limit of one chunk per delay.
struct delay_line {
  static constexpr std::size_t max_bytes = 1024 * 1024;

  explicit delay_line(const boost::asio::any_io_executor& ex) : wake_writer(ex), wake_reader(ex) {}

  /// The connection is being reset: what waits is dropped, and both sides wake to see it.
  void break_off();

  struct chunk {
    std::vector<char> data;
    clock_type::time_point due;
  };
  std::deque<chunk> chunks;
  std::size_t bytes = 0;
  clock_type::time_point last_due{};
  bool read_all = false; // the reader is done: eof, or it broke off
  bool broken = false;
  boost::asio::steady_timer wake_writer; // a chunk came, its time came, or the end
  boost::asio::steady_timer wake_reader; // room in the line, or the end
};

struct client_entry; // proxy_clients.hpp

struct connection {
  connection(std::uint64_t id, stream_socket socket, traffic& route);

  /// Ends both directions at once. `abortive`: with a reset (RST), so that each peer sees
  /// the connection broken, as it is, and not a clean end of stream (a client without its
  /// own framing could not tell a cut download from a whole one). Cancelling first also
  /// ends waits for tokens, which closing the socket would not.
  void close(bool abortive);
  /// The first thing that broke the connection ends it, with a reset both ways. What comes
  /// after (the other direction's operations, aborted) is a consequence, not news.
  void fail(std::string why);
  void fail(side from, const boost::system::error_code& ec);

  std::uint64_t id;
  stream_endpoint peer;
  std::string peer_text;        // "127.0.0.1:5000", "unix"
  shaped_stream client;         // writes: the download
  shaped_stream upstream;       // writes: the upload
  traffic& route;               // its route's counters
  client_entry* from = nullptr; // its client address (--per-ip)
  clock_type::time_point start = clock_type::now();
  byte_count up, down;
  std::string end;                    // why it ended, if not by both sides' eof
  std::array<delay_line*, 2> lines{}; // with --delay, while they relay
};

/// How much a relay reads at a time. A round of the event loop runs the next step of every
/// connection that is ready; with a thousand busy connections each moving 64 KiB a step, a
/// round takes so long that a new connection, which needs several rounds for its first
/// byte (accept, connect, request, response), waits for seconds. So while many connections
/// are open, a timer measures how late it runs (about a round), and the read size halves
/// while rounds are too long and grows back while they are short: the throughput that the
/// rounds' length allows, no more.
class read_pace {
public:
  static constexpr std::size_t max_read = 64 * 1024;
  static constexpr std::size_t min_read = 4 * 1024;
  static constexpr std::uint64_t few = 64; // below this many connections, rounds are short
  static constexpr std::chrono::milliseconds period{10};
  static constexpr std::chrono::milliseconds too_late{100};
  static constexpr std::chrono::milliseconds on_time{40};

  std::size_t read_size() const { return size_; }
  void measured(clock_type::duration lateness);
  void reset() { size_ = max_read; }

private:
  std::size_t size_ = max_read;
};

/// What every relay shares.
struct relay_settings {
  read_pace pace;
  std::chrono::nanoseconds delay{};  // --delay
  std::chrono::nanoseconds jitter{}; // --jitter
  bool shaping = false;              // some limit is set: time the writes that wait for tokens
  traffic* all = nullptr;            // the whole proxy's counters
  std::minstd_rand random{std::random_device{}()};

  /// Half of --delay, give or take half of --jitter, at random.
  clock_type::duration one_way_delay();
};

/// Relays both directions of `c` until both have ended (each by eof, or the connection by
/// an error or a reset, which resets both).
boost::asio::awaitable<void> relay_both(connection& c, relay_settings& settings);

} // namespace sluice::proxy

#endif
