// The TCP scenarios' libevent server (see server.hpp).
#include "rate_limit/server.hpp"
#include "support/measure.hpp"
#include "support/report.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench::ratelim_bench {
namespace {

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

} // namespace

std::unique_ptr<rate_limited_server> make_libevent_server(const std::vector<connection_fds>& conns,
                                                          const limits& lim) {
  return std::make_unique<libevent_server>(conns, lim);
}

} // namespace sluice::bench::ratelim_bench
