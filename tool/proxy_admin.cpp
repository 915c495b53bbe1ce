#include "proxy_admin.hpp"

#include "proxy_limits.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <cstdio>
#include <limits>
#include <utility>
#include <vector>

namespace sluice::proxy {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::awaitable;
using net::ip::tcp;

namespace {

constexpr auto as_result = net::as_tuple(net::use_awaitable);
constexpr std::size_t max_header = 8 * 1024;

double seconds(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}

// A label value of the text format: backslash, double quote and newline escaped.
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

std::string number(std::uint64_t v) {
  return std::to_string(v);
}

// A limit: its value, or +Inf for none.
std::string limit_value(const std::optional<std::uint64_t>& v) {
  return v ? number(*v) : std::string("+Inf");
}

// One metric family of the text format: its HELP and TYPE lines, then its samples.
class family {
public:
  family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    out_ += "# HELP " + name_ + " " + std::string(help) + "\n# TYPE " + name_ + " " +
            std::string(type) + "\n";
  }
  // labels: `key="value"` pairs, already joined by commas.
  void sample(const std::string& labels, const std::string& value) {
    out_ += name_ + (labels.empty() ? "" : "{" + labels + "}") + " " + value + "\n";
  }

private:
  std::string& out_;
  std::string name_;
};

std::string route_label(const route& r) {
  return "route=\"" + label(r.listen->local_text()) + "\"";
}

// The metrics that are counted per route and in total: a family for each.
template <class Value>
void per_route(std::string& out, const proxy& p, std::string_view name, std::string_view type,
               std::string_view help, Value value) {
  family total(out, "sluice_proxy_" + std::string(name), type, help);
  value(total, "", p.all());
  family each(out, "sluice_proxy_route_" + std::string(name), type,
              std::string(help) + ", by route (its listen address)");
  for (const auto& r : p.routes())
    value(each, route_label(*r), r->counts);
}

std::string with(const std::string& labels, const std::string& more) {
  return labels.empty() ? more : labels + "," + more;
}

boost::json::object traffic_json(const traffic& t) {
  return {{"bytes", {{"down", t.down.bytes}, {"up", t.up.bytes}}},
          {"token_wait_seconds", {{"down", seconds(t.wait_down)}, {"up", seconds(t.wait_up)}}},
          {"connections_accepted", t.accepted},
          {"connections_open", t.open},
          {"connections_refused", t.refused}};
}

admin_reply error_reply(unsigned status, const std::string& message) {
  return {status,
          "application/json",
          boost::json::serialize(boost::json::object{{"error", message}}) + "\n",
          {}};
}

// The host of an Origin ("http://localhost:8080") or a Host ("[::1]:9100") header.
std::string_view host_of(std::string_view value, bool is_origin) {
  if (is_origin) {
    auto scheme = value.find("://");
    if (scheme == std::string_view::npos)
      return {};
    value.remove_prefix(scheme + 3);
  }
  if (value.starts_with('[')) {
    auto close = value.find(']');
    return close == std::string_view::npos ? std::string_view{} : value.substr(1, close - 1);
  }
  return value.substr(0, value.find(':'));
}

// --total-store: each shared direction's share, members and store.
void fleet_metrics(std::string& out, const proxy& p) {
  std::vector<std::pair<std::string, fleet_status>> dirs;
  for (const fleet_total* f : {p.fleet_down(), p.fleet_up()})
    if (f)
      dirs.emplace_back("direction=\"" + f->direction() + "\"", f->status());
  family share(out, "sluice_proxy_fleet_share_bytes_per_second", "gauge",
               "This proxy's share of the fleet's --total now, by direction; +Inf for none");
  for (const auto& [l, s] : dirs)
    share.sample(l, limit_value(s.share));
  family members(out, "sluice_proxy_fleet_members", "gauge",
                 "Proxies sharing the fleet's --total, as the store last said, by direction");
  for (const auto& [l, s] : dirs)
    members.sample(l, number(s.members));
  family connected(out, "sluice_proxy_fleet_store_connected", "gauge",
                   "1 while the last renewal reached the store, else 0, by direction");
  for (const auto& [l, s] : dirs)
    connected.sample(l, s.connected ? "1" : "0");
  family mode(out, "sluice_proxy_fleet_mode", "gauge",
              "1 for the mode the share is in (starting, leased, learning, holding, fallback), "
              "by direction");
  for (const auto& [l, s] : dirs)
    for (const char* m : {"starting", "leased", "learning", "holding", "fallback"})
      mode.sample(with(l, "mode=\"" + std::string(m) + "\""), s.mode == m ? "1" : "0");
  family renewals(out, "sluice_proxy_fleet_renewals_total", "counter",
                  "Renewals of the share that the store answered, by direction");
  for (const auto& [l, s] : dirs)
    renewals.sample(l, number(s.renewals));
  family failures(out, "sluice_proxy_fleet_failures_total", "counter",
                  "Renewals of the share that failed or timed out, by direction");
  for (const auto& [l, s] : dirs)
    failures.sample(l, number(s.failures));
}

} // namespace

std::string metrics_text(const proxy& p) {
  std::string out;
  per_route(out, p, "bytes_total", "counter",
            "Bytes relayed, by direction (down: upstream to client; up: client to upstream)",
            [](family& f, const std::string& l, const traffic& t) {
              f.sample(with(l, "direction=\"down\""), number(t.down.bytes));
              f.sample(with(l, "direction=\"up\""), number(t.up.bytes));
            });
  per_route(out, p, "token_wait_seconds_total", "counter",
            "Time that writes which found no tokens took to complete, by direction",
            [](family& f, const std::string& l, const traffic& t) {
              f.sample(with(l, "direction=\"down\""), number(seconds(t.wait_down)));
              f.sample(with(l, "direction=\"up\""), number(seconds(t.wait_up)));
            });
  per_route(
      out, p, "connections_accepted_total", "counter", "Connections accepted",
      [](family& f, const std::string& l, const traffic& t) { f.sample(l, number(t.accepted)); });
  per_route(
      out, p, "connections_refused_total", "counter",
      "Connections refused for --per-ip-max-connections",
      [](family& f, const std::string& l, const traffic& t) { f.sample(l, number(t.refused)); });
  per_route(out, p, "connections_open", "gauge", "Connections open",
            [](family& f, const std::string& l, const traffic& t) { f.sample(l, number(t.open)); });
  family clients(out, "sluice_proxy_client_addresses", "gauge",
                 "Client addresses with connections open (unix-socket clients are one)");
  clients.sample("", number(static_cast<std::uint64_t>(p.client_addresses())));
  family limits(out, "sluice_proxy_limit_bytes_per_second", "gauge",
                "The limits now, by kind (rate: each connection; per_ip: each client address; "
                "total: all) and direction; +Inf for none");
  const limit_set& l = p.limits();
  for (auto [kind, rates] : {std::pair<const char*, const direction_rates*>{"rate", &l.rate},
                             {"per_ip", &l.per_ip},
                             {"total", &l.total}}) {
    limits.sample("limit=\"" + std::string(kind) + "\",direction=\"down\"",
                  limit_value(rates->down));
    limits.sample("limit=\"" + std::string(kind) + "\",direction=\"up\"", limit_value(rates->up));
  }
  family per_ip_max(out, "sluice_proxy_limit_per_ip_connections", "gauge",
                    "--per-ip-max-connections now; +Inf for none");
  per_ip_max.sample("", limit_value(l.per_ip_max_connections));
  family max_open(out, "sluice_proxy_max_connections", "gauge",
                  "Connections that may be open at once");
  max_open.sample("", number(p.max_open()));
  family uptime(out, "sluice_proxy_uptime_seconds", "gauge", "Seconds since the proxy started");
  uptime.sample("", number(seconds(clock_type::now() - p.started())));
  if (p.fleet())
    fleet_metrics(out, p);
  return out;
}

std::string stats_json(const proxy& p) {
  boost::json::object o = traffic_json(p.all());
  o["client_addresses"] = p.client_addresses();
  o["max_connections"] = p.max_open();
  o["uptime_seconds"] = seconds(clock_type::now() - p.started());
  boost::json::array routes;
  for (const auto& r : p.routes()) {
    boost::json::object each = traffic_json(r->counts);
    each["listen"] = r->listen->local_text();
    each["upstream"] = r->spec.upstream.text();
    routes.push_back(std::move(each));
  }
  o["routes"] = std::move(routes);
  o["limits"] = boost::json::parse(limits_json(p.limits()));
  if (p.fleet())
    o["fleet"] = boost::json::parse(fleet_json(*p.fleet(), p.fleet_down(), p.fleet_up()));
  return boost::json::serialize(o) + "\n";
}

admin_reply handle_admin(proxy& p, logger& log, bool allow_remote, std::string_view method,
                         std::string_view target, std::string_view origin, std::string_view host,
                         std::string_view body) {
  if (!allow_remote) {
    // A browser sends its page's Origin with a cross-site request: only the admin's own
    // loopback origins may change limits. A Host that is not loopback is a name some page
    // rebound to 127.0.0.1.
    if (!origin.empty() && !is_loopback_host(host_of(origin, true)))
      return error_reply(403, "Origin " + std::string(origin) +
                                  " is not loopback (sluice-proxy --admin-allow-remote allows "
                                  "any)");
    if (!host.empty() && !is_loopback_host(host_of(host, false)))
      return error_reply(403, "Host " + std::string(host) + " is not loopback");
  }
  std::string_view path = target.substr(0, target.find('?'));
  auto only = [&](std::string_view allowed) {
    admin_reply r = error_reply(405, std::string(method) + " " + std::string(path) +
                                         ": method not allowed (" + std::string(allowed) + ")");
    r.allow = allowed;
    return r;
  };
  if (path == "/metrics") {
    if (method != "GET")
      return only("GET");
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(p), {}};
  }
  if (path == "/stats") {
    if (method != "GET")
      return only("GET");
    return {200, "application/json", stats_json(p), {}};
  }
  if (path == "/limits") {
    if (method == "GET")
      return {200, "application/json", limits_json(p.limits()) + "\n", {}};
    if (method != "PUT")
      return only("GET, PUT");
    limit_set next;
    try {
      next = update_limits(p.limits(), body, p.fleet().has_value());
    } catch (const limits_conflict& e) {
      return error_reply(409, e.what());
    } catch (const limits_error& e) {
      return error_reply(400, e.what());
    }
    p.set_limits(next);
    std::string json = limits_json(next);
    log.write("limits",
              "limits set: rate " + proxy::limit_text(next.rate) + " per connection, " +
                  proxy::limit_text(next.per_ip) + " per client address, total " +
                  proxy::limit_text(next.total),
              {log_field::raw("limits", json)});
    return {200, "application/json", json + "\n", {}};
  }
  return error_reply(404, std::string(path) + ": not found (/metrics, /stats, /limits)");
}

admin_server::admin_server(net::io_context& ctx, const tcp::endpoint& at, bool allow_remote,
                           proxy& p, logger& log)
    : ctx_(ctx), acceptor_(ctx, at), allow_remote_(allow_remote), proxy_(p), log_(log) {}

std::string admin_server::local_text() const {
  boost::system::error_code ec;
  auto e = acceptor_.local_endpoint(ec);
  return ec ? std::string("?") : endpoint_text(stream_endpoint(e));
}

void admin_server::start() {
  net::co_spawn(ctx_, accept_loop(), [this](std::exception_ptr e) {
    if (!e)
      return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log_.write("error", std::string("admin failed: ") + ex.what(), {{"error", ex.what()}});
    }
  });
}

void admin_server::stop() {
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto& [s, state] : sessions_)
    s->close(ec);
}

awaitable<void> admin_server::accept_loop() {
  net::steady_timer backoff(ctx_);
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(as_result);
    if (stopping_ || ec == net::error::operation_aborted)
      break;
    if (ec) { // out of descriptors, say: try again later, without spinning
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(as_result);
      continue;
    }
    if (sessions_.size() >= max_sessions) {
      auto oldest = sessions_.end();
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
        if (it->second.reading &&
            (oldest == sessions_.end() || it->second.since < oldest->second.since))
          oldest = it;
      if (oldest == sessions_.end()) { // all are being answered
        socket.close(ec);
        continue;
      }
      oldest->first->close(ec); // its read ends, and its session with it
      sessions_.erase(oldest);
    }
    net::co_spawn(ctx_, session(std::move(socket)), net::detached);
  }
}

awaitable<void> admin_server::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  struct registration {
    admin_server& a;
    tcp::socket* s;
    ~registration() { a.sessions_.erase(s); }
  } in_sessions{*this, &stream.socket()};
  sessions_[&stream.socket()] = {};
  beast::flat_buffer buffer(max_header + max_limits_body);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(max_header);
    parser.body_limit(max_limits_body);
    stream.expires_after(request_timeout);
    sessions_[&stream.socket()] = {};
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, as_result);
    if (auto it = sessions_.find(&stream.socket()); it != sessions_.end())
      it->second.reading = false;
    else // closed for a newer connection
      co_return;
    admin_reply reply;
    bool keep_alive = false;
    unsigned version = 11;
    if (ec == http::error::body_limit) {
      reply =
          error_reply(413, "the body is larger than " + std::to_string(max_limits_body) + " bytes");
    } else if (ec == http::error::header_limit) {
      reply =
          error_reply(431, "the header is larger than " + std::to_string(max_header) + " bytes");
    } else if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
               ec == net::error::operation_aborted || ec == net::error::eof ||
               ec == net::error::connection_reset || ec == net::error::bad_descriptor ||
               stopping_) {
      co_return;
    } else if (ec) {
      reply = error_reply(400, "not an HTTP request: " + ec.message());
    } else {
      auto& req = parser.get();
      keep_alive = req.keep_alive();
      version = req.version();
      reply = handle_admin(proxy_, log_, allow_remote_, req.method_string(), req.target(),
                           req[http::field::origin], req[http::field::host], req.body());
    }
    http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
    res.set(http::field::server, "sluice-proxy");
    res.set(http::field::content_type, reply.content_type);
    res.set(http::field::cache_control, "no-store");
    if (!reply.allow.empty())
      res.set(http::field::allow, reply.allow);
    res.keep_alive(keep_alive);
    res.body() = std::move(reply.body);
    res.prepare_payload();
    stream.expires_after(request_timeout); // a client that does not read is closed too
    auto [wec, written] = co_await http::async_write(stream, res, as_result);
    if (wec || !keep_alive || stopping_)
      break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

} // namespace sluice::proxy
