#include "proxy_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace sluice::proxy {

namespace net = boost::asio;
using net::awaitable;
using namespace net::experimental::awaitable_operators;

namespace {

// Errors come back as values: a peer going away is the normal end of a connection, not an
// exception.
constexpr auto as_result = net::as_tuple(net::use_awaitable);

// The direction that `to` writes: the client's socket writes the download.
struct counters {
  byte_count& mine;
  byte_count& route;
  byte_count& all;
  clock_type::duration& route_wait;
  clock_type::duration& all_wait;
};

counters counters_of(connection& c, side to_side, relay_settings& s) {
  if (to_side == side::client)
    return {c.down, c.route.down, s.all->down, c.route.wait_down, s.all->wait_down};
  return {c.up, c.route.up, s.all->up, c.route.wait_up, s.all->wait_up};
}

shaped_stream& stream_of(connection& c, side s) {
  return s == side::client ? c.client : c.upstream;
}

// Writes all of data to `to`, counting each piece as it goes (so that the stats see a
// steady rate and not one 64 KiB step every 64 KiB's worth of time), and the time of the
// writes that found no tokens. Stops early when `*stop` is set.
awaitable<boost::system::error_code> write_counted(connection& c, side to_side, const char* data,
                                                   std::size_t n, relay_settings& s,
                                                   const bool* stop = nullptr) {
  shaped_stream& to = stream_of(c, to_side);
  counters count = counters_of(c, to_side, s);
  for (std::size_t done = 0; done < n;) {
    bool waits = s.shaping && (to.max_to_write() == 0 || to.next_layer().max_to_write() == 0);
    auto began = waits ? clock_type::now() : clock_type::time_point{};
    auto [ec, written] =
        co_await to.async_write_some(net::buffer(data + done, n - done), as_result);
    if (waits) {
      auto waited = clock_type::now() - began;
      count.route_wait += waited;
      count.all_wait += waited;
    }
    done += written;
    count.mine.bytes += written;
    count.route.bytes += written;
    count.all.bytes += written;
    if (ec || (stop && *stop))
      co_return ec;
  }
  co_return boost::system::error_code{};
}

side other(side s) {
  return s == side::client ? side::upstream : side::client;
}

// Copies `from` to the other side until `from` ends. At its eof only the other side's
// sending is shut: the other direction goes on (a client may half-close after its request
// and still read the response), and that peer sees the end exactly where `from`'s peer put
// it. A reset or an error on either side resets both.
awaitable<void> relay(connection& c, side from_side, relay_settings& s) {
  shaped_stream& from = stream_of(c, from_side);
  std::vector<char> buffer(read_pace::max_read); // reads wait while it drains: backpressure
  for (;;) {
    auto [ec, n] =
        co_await from.async_read_some(net::buffer(buffer.data(), s.pace.read_size()), as_result);
    if (ec == net::error::eof) {
      boost::system::error_code ignored; // fails only if the connection is already gone
      socket_of(stream_of(c, other(from_side))).shutdown(stream_socket::shutdown_send, ignored);
      co_return;
    }
    if (ec)
      co_return c.fail(from_side, ec);
    if (auto wec = co_await write_counted(c, other(from_side), buffer.data(), n, s))
      co_return c.fail(other(from_side), wec);
  }
}

awaitable<void> read_into(connection& c, side from_side, delay_line& line, relay_settings& s) {
  shaped_stream& from = stream_of(c, from_side);
  std::vector<char> buffer(read_pace::max_read);
  while (!line.broken) {
    if (line.bytes >= delay_line::max_bytes) {
      line.wake_reader.expires_at(clock_type::time_point::max());
      co_await line.wake_reader.async_wait(as_result);
      continue;
    }
    auto [ec, n] =
        co_await from.async_read_some(net::buffer(buffer.data(), s.pace.read_size()), as_result);
    if (ec) {
      if (ec != net::error::eof)
        c.fail(from_side, ec);
      break;
    }
    auto due = std::max(line.last_due, clock_type::now() + s.one_way_delay());
    line.last_due = due;
    line.chunks.push_back({std::vector<char>(buffer.begin(), buffer.begin() + n), due});
    line.bytes += n;
    line.wake_writer.cancel();
  }
  line.read_all = true;
  line.wake_writer.cancel();
}

awaitable<void> write_from(connection& c, side to_side, delay_line& line, relay_settings& s) {
  while (!line.broken) {
    if (line.chunks.empty() && line.read_all) { // the reader's eof: pass it on
      boost::system::error_code ignored;
      socket_of(stream_of(c, to_side)).shutdown(stream_socket::shutdown_send, ignored);
      co_return;
    }
    if (line.chunks.empty() || clock_type::now() < line.chunks.front().due) {
      line.wake_writer.expires_at(line.chunks.empty() ? clock_type::time_point::max()
                                                      : line.chunks.front().due);
      co_await line.wake_writer.async_wait(as_result);
      continue;
    }
    auto& chunk = line.chunks.front().data;
    if (auto wec = co_await write_counted(c, to_side, chunk.data(), chunk.size(), s, &line.broken))
      co_return c.fail(to_side, wec);
    if (line.broken)
      co_return;
    line.bytes -= chunk.size();
    line.chunks.pop_front();
    line.wake_reader.cancel();
  }
}

// relay() with --delay: a reader that puts what it reads on a delay line, and a writer that
// writes each chunk when it is due.
awaitable<void> relay_delayed(connection& c, side from_side, relay_settings& s) {
  delay_line line(socket_of(c.client).get_executor());
  struct registration { // close() reaches the line while it lives, and not after
    delay_line*& slot;
    ~registration() { slot = nullptr; }
  } in_connection{c.lines[from_side == side::client ? 0 : 1] = &line};
  co_await (read_into(c, from_side, line, s) && write_from(c, other(from_side), line, s));
}

} // namespace

const char* side_name(side s) {
  return s == side::client ? "client" : "upstream";
}

void delay_line::break_off() {
  broken = true;
  wake_writer.cancel();
  wake_reader.cancel();
}

connection::connection(std::uint64_t id, stream_socket socket, traffic& route)
    : id(id), client(std::move(socket)), upstream(client.get_executor()), route(route) {
  boost::system::error_code ec;
  peer = socket_of(client).remote_endpoint(ec);
  peer_text = ec ? std::string("?") : endpoint_text(peer);
}

void connection::close(bool abortive) {
  for (delay_line* line : lines)
    if (line)
      line->break_off();
  for (shaped_stream* s : {&client, &upstream}) {
    boost::system::error_code ec;
    stream_socket& socket = socket_of(*s);
    if (!socket.is_open())
      continue;
    s->cancel();
    if (abortive)
      socket.set_option(net::socket_base::linger(true, 0), ec);
    socket.close(ec);
  }
}

void connection::fail(std::string why) {
  if (!end.empty())
    return;
  end = std::move(why);
  close(true);
}

void connection::fail(side from, const boost::system::error_code& ec) {
  if (ec == net::error::operation_aborted || ec == net::error::bad_descriptor)
    return fail("closed"); // closed here; whoever closed it says why
  fail(std::string(side_name(from)) +
       (ec == net::error::connection_reset ? " reset" : " error: " + ec.message()));
}

void read_pace::measured(clock_type::duration lateness) {
  if (lateness > too_late)
    size_ = std::max(min_read, size_ / 2);
  else if (lateness < on_time)
    size_ = std::min(max_read, size_ + size_ / 8);
}

clock_type::duration relay_settings::one_way_delay() {
  auto half_jitter = jitter.count() / 2;
  std::uniform_int_distribution<std::int64_t> spread(-half_jitter, half_jitter);
  return std::chrono::nanoseconds(delay.count() / 2 + (half_jitter ? spread(random) : 0));
}

awaitable<void> relay_both(connection& c, relay_settings& s) {
  // Both directions at once, each to its own end; a connection is over when both are.
  if (s.delay.count() > 0)
    co_await (relay_delayed(c, side::client, s) && relay_delayed(c, side::upstream, s));
  else
    co_await (relay(c, side::client, s) && relay(c, side::upstream, s));
}

} // namespace sluice::proxy
