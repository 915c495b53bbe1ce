// The TCP scenarios' sluice server (see server.hpp).
#include "rate_limit/server.hpp"

#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench::ratelim_bench {
namespace {

namespace net = boost::asio;
using boost::system::error_code;
using net::ip::tcp;

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

} // namespace

std::unique_ptr<rate_limited_server> make_sluice_server(const std::vector<connection_fds>& conns,
                                                        const limits& lim) {
  return std::make_unique<sluice_server>(conns, lim);
}

} // namespace sluice::bench::ratelim_bench
