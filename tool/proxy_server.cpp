#include "proxy_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <tuple>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifndef SLUICE_PROXY_VERSION
#define SLUICE_PROXY_VERSION "unknown"
#endif

namespace sluice::proxy {

namespace net = boost::asio;
using net::awaitable;

namespace {

constexpr auto as_result = net::as_tuple(net::use_awaitable);

double seconds(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}

double per_second(double bytes, double secs) {
  return secs > 0 ? bytes / secs : 0;
}

std::string rate_text(double bytes_per_second) {
  return format_bytes(bytes_per_second) + "/s";
}

// A limit for the JSON log: bytes (per second), or null for none.
log_field number_or_null(std::string_view key, const std::optional<std::uint64_t>& value) {
  return value ? log_field(key, *value) : log_field::raw(key, "null");
}

} // namespace

proxy::proxy(net::io_context& ctx, const proxy_options& opts, logger& log,
             std::vector<std::vector<stream_endpoint>> listen,
             std::vector<std::vector<stream_endpoint>> upstream)
    : ctx_(ctx), opts_(opts), log_(log), stats_timer_(ctx), trim_timer_(ctx), slot_free_(ctx),
      fleet_timer_(ctx), clients_(ctx.get_executor()) {
  relay_.delay = opts.delay;
  relay_.jitter = opts.jitter;
  relay_.all = &all_;
  for (std::size_t i = 0; i < opts.routes.size(); ++i) {
    auto r = std::make_unique<route>();
    r->spec = opts.routes[i];
    r->upstream = std::move(upstream[i]);
    r->listen = std::make_unique<listener>(ctx, listen[i].front());
    routes_.push_back(std::move(r));
  }
  set_limits(opts.limits);
}

void proxy::start(std::uint64_t max_open, const std::string& at_most) {
  max_open_ = max_open;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const route& r = *routes_[i];
    std::string listen = r.listen->local_text();
    std::string upstream = resolved_text(r.spec.upstream, r.upstream);
    const limit_set& l = limits_;
    log_.write(
        "listening",
        "listening on " + listen + ", upstream " + upstream + ", rate " + limit_text(l.rate) +
            " per connection" +
            (l.per_ip.any() ? ", " + limit_text(l.per_ip) + " per client address" : "") +
            (l.per_ip_max_connections
                 ? ", " + std::to_string(*l.per_ip_max_connections) + " connections per address"
                 : "") +
            ", total " + limit_text(l.total) +
            (opts_.fleet ? " shared by fleet " + opts_.fleet->group + " at " + opts_.fleet->store
                         : "") +
            ", tick " + format_duration(l.tick) +
            (l.burst ? ", burst " + format_bytes(static_cast<double>(*l.burst)) : "") +
            (opts_.delay.count() > 0 ? ", delay " + format_duration(opts_.delay) : "") +
            (opts_.jitter.count() > 0 ? " +- " + format_duration(opts_.jitter) : "") +
            ", at most " + at_most,
        {{"listen", listen},
         {"upstream", upstream},
         {"route", static_cast<std::uint64_t>(i + 1)},
         number_or_null("rate_down", l.rate.down),
         number_or_null("rate_up", l.rate.up),
         number_or_null("per_ip_down", l.per_ip.down),
         number_or_null("per_ip_up", l.per_ip.up),
         number_or_null("per_ip_max_connections", l.per_ip_max_connections),
         number_or_null("total_down", l.total.down),
         number_or_null("total_up", l.total.up),
         opts_.fleet ? log_field("total_store", opts_.fleet->store)
                     : log_field::raw("total_store", "null"),
         opts_.fleet ? log_field("total_group", opts_.fleet->group)
                     : log_field::raw("total_group", "null"),
         number_or_null("burst", l.burst),
         {"tick_ns", static_cast<std::uint64_t>(l.tick.count())},
         {"delay_ns", static_cast<std::uint64_t>(opts_.delay.count())},
         {"jitter_ns", static_cast<std::uint64_t>(opts_.jitter.count())},
         {"max_connections", max_open},
         {"version", SLUICE_PROXY_VERSION}});
  }
  for (auto& r : routes_)
    net::co_spawn(ctx_, accept_loop(*r), report_failure("accept loop"));
  if (opts_.stats)
    net::co_spawn(ctx_, stats_loop(*opts_.stats), report_failure("stats"));
  if (opts_.fleet)
    net::co_spawn(ctx_, fleet_watch(), report_failure("fleet"));
}

void proxy::stop() {
  stopping_ = true;
  for (auto& r : routes_) {
    boost::system::error_code ec;
    r->listen->acceptor().close(ec);
  }
  stats_timer_.cancel();
  trim_timer_.cancel();
  slot_free_.cancel();
  fleet_timer_.cancel();
  for (auto& [id, c] : connections_)
    c->fail("stopped");
  // Their shares go back to the fleet at once; and their renewals would keep the io_context
  // running.
  fleet_down_.reset();
  fleet_up_.reset();
}

void proxy::set_limits(const limit_set& next) {
  limits_ = next;
  relay_.shaping = next.any_rate();
  for (auto& [id, c] : connections_)
    shape(*c);
  auto join_down = [&](rate_limit_group& g) {
    for (auto& [id, c] : connections_)
      c->client.next_layer().join(g);
  };
  auto join_up = [&](rate_limit_group& g) {
    for (auto& [id, c] : connections_)
      c->upstream.next_layer().join(g);
  };
  if (opts_.fleet) {
    reshape_fleet(fleet_down_, next.total.down, "down", join_down);
    reshape_fleet(fleet_up_, next.total.up, "up", join_up);
  } else {
    auto ex = ctx_.get_executor();
    reshape(total_down_, write_bucket(next.total.down, next), ex, join_down);
    reshape(total_up_, write_bucket(next.total.up, next), ex, join_up);
  }
  clients_.apply(next);
}

// A fleet's total is made anew for a new rate, with a newer version, so that it wins in the
// store; the connections move to its group before the old one releases its share. (The
// admin endpoint refuses to change a shared total; this serves the start.) The tick and
// burst of its local group are the library's (the grants change its rate every lease).
template <class Join>
void proxy::reshape_fleet(std::unique_ptr<fleet_total>& total,
                          const std::optional<std::uint64_t>& rate, const char* direction,
                          Join&& join) {
  if (rate && total && total->rate() == *rate)
    return;
  std::unique_ptr<fleet_total> old = std::move(total);
  if (rate) {
    total = std::make_unique<fleet_total>(ctx_.get_executor(), *opts_.fleet, direction, *rate,
                                          fleet_version());
    join(total->group());
  }
}

rate_limit_group* proxy::total_down() {
  return fleet_down_ ? &fleet_down_->group() : total_down_ ? &*total_down_ : nullptr;
}

rate_limit_group* proxy::total_up() {
  return fleet_up_ ? &fleet_up_->group() : total_up_ ? &*total_up_ : nullptr;
}

// A connection's own buckets, and its membership of the --total groups (the --per-ip ones
// are the client table's).
void proxy::shape(connection& c) {
  auto own = [&](shaped_stream& s, const std::optional<std::uint64_t>& rate) {
    if (auto cfg = write_bucket(rate, limits_))
      s.set_rate_limit(*cfg);
    else if (s.rate_limit())
      s.clear_rate_limit();
  };
  own(c.client, limits_.rate.down);
  own(c.upstream, limits_.rate.up);
  if (auto* g = total_down(); g && c.client.next_layer().group() != g)
    c.client.next_layer().join(*g);
  if (auto* g = total_up(); g && c.upstream.next_layer().group() != g)
    c.upstream.next_layer().join(*g);
}

std::function<void(std::exception_ptr)> proxy::report_failure(const char* what) {
  // The completion of a detached coroutine: logs why it failed, if it did (Asio's own
  // `detached` would drop the exception unseen).
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
awaitable<void> proxy::accept_loop(route& r) {
  net::steady_timer backoff(ctx_);
  auto& acceptor = r.listen->acceptor();
  while (!stopping_) {
    if (open_ >= max_open_) { // wait in the backlog until a connection closes
      slot_free_.expires_at(clock_type::time_point::max());
      co_await slot_free_.async_wait(as_result);
      continue;
    }
    auto [ec] = co_await acceptor.async_wait(stream_acceptor::wait_read, as_result);
    if (stopping_)
      break;
    for (int i = 0; i < accept_batch && open_ < max_open_ && !ec; ++i) {
      stream_socket socket(ctx_);
      acceptor.accept(socket, ec);
      if (!ec) {
        ++open_;
        open_peak_ = std::max(open_peak_, open_);
        ++r.counts.accepted;
        ++r.counts.open;
        ++all_.accepted;
        ++all_.open;
        net::co_spawn(ctx_, serve(++last_id_, std::move(socket), r), report_failure("connection"));
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
                 "accept: " + ec.message() + " (" + std::to_string(accept_failures_) + " failure" +
                     (accept_failures_ == 1 ? "" : "s") + "; retrying every 100ms)",
                 {{"error", ec.message()}, {"failures", accept_failures_}});
      accept_failures_ = 0;
    }
    backoff.expires_after(std::chrono::milliseconds(100));
    co_await backoff.async_wait(as_result);
  }
}

// Measures the rounds while many connections are open (see read_pace).
awaitable<void> proxy::pace_loop() {
  net::steady_timer timer(ctx_);
  while (!stopping_ && open_ > read_pace::few) {
    auto due = clock_type::now() + read_pace::period;
    timer.expires_at(due);
    co_await timer.async_wait(as_result);
    relay_.pace.measured(clock_type::now() - due);
  }
  relay_.pace.reset();
  pacing_ = false;
}

// Connects to the first of the upstream's addresses that accepts. A socket that cannot be
// opened (out of descriptors) is that error, not the next address's.
awaitable<boost::system::error_code> proxy::connect_upstream(connection& c, route& r) {
  boost::system::error_code ec = net::error::host_not_found;
  auto& socket = socket_of(c.upstream);
  for (const auto& endpoint : r.upstream) {
    boost::system::error_code ignored;
    socket.close(ignored);
    socket.open(endpoint.protocol(), ec);
    if (ec)
      break;
    std::tie(ec) = co_await socket.async_connect(endpoint, as_result);
    if (!ec || !c.end.empty())
      break;
  }
  co_return ec;
}

// Freed connections' memory stays in the allocator's heap, which many connections leave
// fragmented: without this, a proxy that once held a thousand connections would keep their
// memory for good. It goes back to the system once most of a burst has gone, and a second
// after the last connection closes (not at every close: short connections come by thousands).
void proxy::return_memory_after_burst() {
  constexpr std::uint64_t burst = 64;
  if (open_peak_ >= burst && open_ * 2 <= open_peak_) {
    return_memory();
  } else if (open_ == 0 && !stopping_ && !trim_pending_) {
    trim_pending_ = true;
    trim_timer_.expires_after(std::chrono::seconds(1));
    trim_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) // cancelled: the proxy is stopping, and may be gone
        return;
      trim_pending_ = false;
      if (open_ == 0)
        return_memory();
    });
  }
}

void proxy::return_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  open_peak_ = open_;
}

awaitable<void> proxy::serve(std::uint64_t id, stream_socket socket, route& r) {
  struct unregister { // however this frame ends, the table must not keep its address
    proxy& p;
    route& r;
    std::uint64_t id;
    ~unregister() {
      p.connections_.erase(id);
      --p.open_;
      p.return_memory_after_burst();
      --r.counts.open;
      --p.all_.open;
      p.slot_free_.cancel();
    }
  } registration{*this, r, id};
  connection c(id, std::move(socket), r.counts); // lives in this frame: its address is stable
  struct leave {                                 // ...and its client address keeps it no longer
    client_table& clients;
    connection& c;
    ~leave() { clients.release(c); }
  } in_clients{clients_, c};
  if (stopping_) // accepted just before the stop: stop() could not see it
    co_return;
  if (!clients_.admit(c, limits_)) {
    ++r.counts.refused;
    ++all_.refused;
    std::string address = client_address(c.peer);
    std::uint64_t open = clients_.open_from(address);
    log_.write(
        "refused",
        "#" + std::to_string(id) + " " + c.peer_text + ": refused: " + std::to_string(open) +
            " connection" + (open == 1 ? "" : "s") + " open from " + address +
            " (--per-ip-max-connections " +
            std::to_string(limits_.per_ip_max_connections.value_or(0)) + ")",
        {{"id", id}, {"peer", c.peer_text}, {"route", r.spec.listen.text()}, {"open", open}});
    c.close(true);
    co_return;
  }
  shape(c);
  connections_[id] = &c;

  if (auto ec = co_await connect_upstream(c, r)) {
    if (c.end.empty()) {
      log_.write("upstream_failed",
                 "#" + std::to_string(id) + " " + c.peer_text + ": upstream " +
                     r.spec.upstream.text() + ": " + ec.message(),
                 {{"id", id},
                  {"peer", c.peer_text},
                  {"upstream", r.spec.upstream.text()},
                  {"error", ec.message()}});
      c.fail("upstream unreachable"); // the client sees what it would have without us
    }
  } else {
    co_await relay_both(c, relay_);
  }
  c.close(false); // both ends said eof, or it is closed already
  log_closed(c);
}

void proxy::log_closed(const connection& c) {
  double secs = seconds(clock_type::now() - c.start);
  auto up = static_cast<double>(c.up.bytes), down = static_cast<double>(c.down.bytes);
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.2f s", secs);
  std::string message = "closed #" + std::to_string(c.id) + " " + c.peer_text + ": up " +
                        format_bytes(up) + ", down " + format_bytes(down) + " in " + duration +
                        " (up " + rate_text(per_second(up, secs)) + ", down " +
                        rate_text(per_second(down, secs)) + ")";
  if (!c.end.empty())
    message += ": " + c.end;
  log_.write("closed", message,
             {{"id", c.id},
              {"peer", c.peer_text},
              {"up_bytes", c.up.bytes},
              {"down_bytes", c.down.bytes},
              {"seconds", secs},
              {"end", c.end.empty() ? "eof" : c.end}});
}

awaitable<void> proxy::stats_loop(std::chrono::nanoseconds interval) {
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
    double down = since_last(all_.down), up = since_last(all_.up);
    line += " | total down " + rate_text(down) + " up " + rate_text(up);
    if (limits_.total.any())
      line += " (limit " + limit_text(limits_.total) + ")";
    for (const fleet_total* f : {fleet_down_.get(), fleet_up_.get()})
      if (f)
        line += " | fleet " + opts_.fleet->group + " " + f->direction() + ": " +
                fleet_text(f->status());
    log_.write("stats", line,
               {{"connections", static_cast<std::uint64_t>(connections_.size())},
                {"down", down},
                {"up", up},
                log_field::raw("each", each),
                log_field::raw("fleet", opts_.fleet ? fleet_json(*opts_.fleet, fleet_down_.get(),
                                                                 fleet_up_.get())
                                                    : "null")});
  }
}

// Logs what happens to the fleet's store: reached, lost, back, its state lost. The shared
// groups have no callbacks; their status is read a few times a second.
awaitable<void> proxy::fleet_watch() {
  struct seen {
    std::string mode = "starting";
    bool failed_at_start = false;
  };
  seen was_down, was_up;
  while (!stopping_) {
    fleet_timer_.expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await fleet_timer_.async_wait(as_result);
    if (ec || stopping_)
      break;
    for (auto [f, was] : {std::pair{fleet_down_.get(), &was_down}, {fleet_up_.get(), &was_up}}) {
      if (!f)
        continue;
      fleet_status s = f->status();
      std::string share =
          s.share ? rate_text(static_cast<double>(*s.share)) : std::string("unlimited");
      std::string message;
      if (s.mode == "starting" && s.failures > 0 && !was->failed_at_start) {
        was->failed_at_start = true;
        message =
            "store unreachable at start (" + s.last_error + "): " + share + " until it answers";
      } else if (s.mode != was->mode) {
        if (s.mode == "leased")
          message = (was->mode == "starting" && !was->failed_at_start ? "leased" : "store back") +
                    std::string(": share ") + share + ", " + std::to_string(s.members) + " member" +
                    (s.members == 1 ? "" : "s");
        else if (s.mode == "learning")
          message = "the store lost its state (restarted or flushed): share " + share +
                    " at most, for a TTL";
        else if (s.mode == "holding")
          message = "store unreachable (" + s.last_error + "): holding the last share, " + share;
        else if (s.mode == "fallback")
          message = "store unreachable for too long (" + s.last_error +
                    "): " + store_failure_name(opts_.fleet->on_failure) + ", share " + share;
      }
      was->mode = s.mode;
      if (message.empty())
        continue;
      log_.write("fleet", "fleet " + opts_.fleet->group + " " + f->direction() + ": " + message,
                 {{"group", opts_.fleet->group},
                  {"direction", f->direction()},
                  {"mode", s.mode},
                  log_field::raw("connected", s.connected ? "true" : "false"),
                  s.share ? log_field("share", *s.share) : log_field::raw("share", "null"),
                  {"members", s.members},
                  {"error", s.last_error}});
    }
  }
}

std::string proxy::limit_text(const direction_rates& r) {
  auto one = [](const std::optional<std::uint64_t>& rate) {
    return rate ? rate_text(static_cast<double>(*rate)) : std::string("unlimited");
  };
  if (r.down == r.up)
    return one(r.down);
  return "down " + one(r.down) + ", up " + one(r.up);
}

} // namespace sluice::proxy
